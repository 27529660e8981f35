//! Architecture rules for `src/`, checked by reading its source text (the crate is not used).
//!
//! Every `.rs` file under `src/` is a module: `src/lib.rs` is `lib` (the crate root),
//! `src/main.rs` is `main`, `src/a.rs` and `src/a/mod.rs` are `a`, `src/a/b.rs` is `a::b`. A
//! module refers to another when its code names it by a path: `crate::…` (in `use` lines or
//! inline), `super::…`, `self::…`, `outreach::…` in main.rs, or a bare path through a child
//! module (`mod x;` then `x::…`) or through a module imported by `use`. Comments, string
//! literals, `mod x;` itself and `#[cfg(test)]` items do not count. Two rules follow.
//! `no_import_cycles`: modules in a cycle can only be understood, tested and changed together.
//! `layers_point_down`: each module sits on a layer (`LAYERS`) and uses only its own layer and
//! those below, so low-level code never depends on the policy decided above it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// Module path prefix -> layer, as ARCHITECTURE.md draws them; the longest prefix wins, and a
/// module may use only modules on its own layer or below. A new module goes here and there.
#[rustfmt::skip]
const LAYERS: &[(&str, u32)] = &[
    // Values: what every layer shares, importing nothing above.
    ("model", 0), ("address", 0), ("paths", 0), ("private", 0), ("nanp_table", 0),
    ("terminal", 0), ("language", 0), ("chart", 0),
    // The campaign file, and what needs nothing but it; provider webhooks and returned mail read
    // as values.
    ("config", 1), ("sms", 1), ("dkim", 1), ("token", 1), ("webhook", 1), ("bounce", 1),
    ("audience", 1),
    // The campaign's inputs: contacts, templates.
    ("contacts", 2), ("templates", 2), ("fold", 2), ("reads", 2),
    ("template_sets", 2),
    // Pure functions over them: the MIME message, who gets what, campaign-tagged links.
    ("message", 3), ("plan", 3), ("utm", 3),
    // Side effects: the store (ledger) and the ways out.
    ("store", 4), ("transport", 4), ("mailbox", 4),
    // A campaign loaded with everything it needs; its approval; its per-recipient CSV.
    ("load", 5), ("render", 5), ("approval", 5), ("recipients", 5),
    // The send run.
    ("send", 6),
    // The commands.
    ("commands", 7),
    // The command line, the program, the binary; the manual pages and completions made from the
    // command line's definitions.
    ("cli", 8), ("manual", 8),
    ("lib", 9),
    ("main", 10),
];

/// Whether `#[cfg(test)]` items count. They do not: a unit test may build its fixtures with
/// modules above its own (fold's tests load the shipped campaign). `true` checks them too.
const CHECK_TEST_CODE: bool = false;

/// The modules a module refers to, each with the first line where it does.
type Refs = BTreeMap<String, usize>;
/// For each module, its `Refs`.
type Graph = BTreeMap<String, Refs>;

/// `src` with comments and string and char literals turned into spaces (newlines kept).
fn blank_comments_and_literals(src: &str) -> String {
    let mut c: Vec<char> = src.chars().collect();
    let at = |c: &[char], i: usize| c.get(i).copied().unwrap_or(' ');
    // The index just after the first `pat` at or after `from` (the end of the text if none).
    let after = |c: &[char], from: usize, pat: &[char]| {
        let found = (from..c.len()).find(|&k| c[k..].starts_with(pat));
        found.map_or(c.len(), |k| k + pat.len())
    };
    let word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let (prev, next) = (if i > 0 { c[i - 1] } else { ' ' }, at(&c, i + 1));
        let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
        let end = match c[i] {
            '/' if next == '/' => (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len()),
            '/' if next == '*' => {
                let (mut depth, mut k) = (1, i + 2); // block comments nest
                while depth > 0 && k < c.len() {
                    let two = [c[k], at(&c, k + 1)];
                    depth += (two == ['/', '*']) as i32 - (two == ['*', '/']) as i32;
                    k += 1 + (two == ['/', '*'] || two == ['*', '/']) as usize;
                }
                k
            }
            '"' => {
                let mut k = i + 1;
                while k < c.len() && c[k] != '"' {
                    k += if c[k] == '\\' { 2 } else { 1 };
                }
                k + 1
            }
            // r"…", r#"…"#, br"…", cr"…"; not the raw identifier r#ident.
            'r' if at(&c, i + 1 + hashes) == '"'
                && (!word(prev) || matches!(prev, 'b' | 'c') && (i < 2 || !word(c[i - 2]))) =>
            {
                let close: Vec<char> = std::iter::once('"').chain(vec!['#'; hashes]).collect();
                after(&c, i + hashes + 2, &close)
            }
            '\'' if next == '\\' => after(&c, i + 3, &['\'']), // '\'' '\\' '\u{22}'
            '\'' if at(&c, i + 2) == '\'' => i + 3,            // 'x' (a lifetime 'a has no end)
            _ => {
                i += 1;
                continue;
            }
        };
        let end = end.min(c.len());
        for ch in c[i..end].iter_mut().filter(|ch| **ch != '\n') {
            *ch = ' ';
        }
        i = end;
    }
    c.into_iter().collect()
}

/// A token of blanked source: an identifier, `::`, or one other character.
struct Tok<'a> {
    text: &'a str,
    line: usize,
}

fn tokenize(clean: &str) -> Vec<Tok<'_>> {
    let (mut toks, mut line) = (Vec::new(), 1);
    let mut chars = clean.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        let mut end = i + ch.len_utf8();
        if ch.is_alphanumeric() || ch == '_' {
            while let Some((j, d)) = chars.next_if(|(_, d)| d.is_alphanumeric() || *d == '_') {
                end = j + d.len_utf8();
            }
        } else if ch == ':' && chars.next_if(|&(_, d)| d == ':').is_some() {
            end += 1;
        }
        line += (ch == '\n') as usize;
        if !ch.is_whitespace() {
            let text = &clean[i..end];
            toks.push(Tok { text, line });
        }
    }
    toks
}

fn is_ident(t: &str) -> bool {
    t.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
}

/// One leaf of a path (`a::{b, c::d}` has two): its segments, the name it brings into scope
/// if it is in a `use`, and the line of its last segment.
struct Leaf {
    segs: Vec<String>,
    name: Option<String>,
    line: usize,
}

/// Reads the path at `toks[i]`, after `segs`, into `leaves`; returns the index after it.
fn parse_path(toks: &[Tok], mut i: usize, mut segs: Vec<String>, leaves: &mut Vec<Leaf>) -> usize {
    let text = |i: usize| toks.get(i).map_or("", |t| t.text);
    loop {
        let t = text(i);
        if t == "{" {
            while !matches!(text(i), "}" | "") {
                i = parse_path(toks, i + 1, segs.clone(), leaves); // after `{` or `,`
            }
            return i + 1;
        } else if t != "*" && !is_ident(t) {
            return i;
        }
        segs.push(t.to_string());
        i += 1;
        let more = is_ident(text(i + 1)) || matches!(text(i + 1), "{" | "*");
        if t != "*" && text(i) == "::" && more {
            i += 1;
            continue;
        }
        let line = toks[i - 1].line;
        if segs.len() > 1 && (t == "self" || t == "*") {
            segs.pop();
        }
        let mut name = segs.last().cloned().filter(|_| t != "*");
        if text(i) == "as" {
            name = Some(text(i + 1).to_string()).filter(|n| n != "_");
            i += 2;
        }
        leaves.push(Leaf { segs, name, line });
        return i;
    }
}

/// The index after the item at `toks[i]`: after its `;` or its body's `}`, or at the bracket
/// that closes what holds it.
fn skip_item(toks: &[Tok], mut i: usize) -> usize {
    let mut depth = 0;
    while let Some(t) = toks.get(i) {
        match t.text {
            ")" | "]" | "}" if depth == 0 => return i,
            "}" if depth == 1 => return i + 1,
            ";" if depth == 0 => return i + 1,
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The modules the source of `module` refers to, each with its first line. `modules` holds every
/// module of the tree. References to `module` itself are left out, and so are those in
/// `#[cfg(test)]` items unless `test_code`.
fn references(src: &str, module: &str, modules: &BTreeSet<String>, test_code: bool) -> Refs {
    let clean = blank_comments_and_literals(src);
    let toks = tokenize(&clean);
    let text = |i: usize| toks.get(i).map_or("", |t| t.text);
    let mut scope: Vec<String> = module.split("::").map(String::from).collect();
    scope.retain(|_| module != "lib" && module != "main"); // the crate roots
    let (mut inline_mods, mut depth) = (Vec::new(), 0);
    // Names standing for a module (`mod x;`, `use crate::x;`), for bare paths such as `x::f()`.
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut absolute, mut bare) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < toks.len() {
        let (t, prev, next) = (text(i), if i > 0 { text(i - 1) } else { "" }, text(i + 1));
        let cfg_test = (i..i + 7)
            .map(text)
            .eq(["#", "[", "cfg", "(", "test", ")", "]"]);
        if cfg_test && !test_code {
            i = skip_item(&toks, i + 7);
            continue;
        } else if t == "{" {
            depth += 1;
        } else if t == "}" {
            if inline_mods.last() == Some(&depth) {
                inline_mods.pop();
                scope.pop();
            }
            depth -= 1;
        } else if t == "mod" && is_ident(next) && text(i + 2) == "{" {
            scope.push(next.to_string());
            inline_mods.push(depth + 1);
        } else if t == "mod" && is_ident(next) && text(i + 2) == ";" {
            names.insert(next.to_string(), [&scope[..], &[next.to_string()]].concat());
        } else if is_ident(t) && !matches!(prev, "::" | ".") && next == "::" {
            let mut leaves = Vec::new();
            i = parse_path(&toks, i, Vec::new(), &mut leaves);
            for leaf in leaves {
                let supers = leaf.segs.iter().take_while(|s| *s == "super").count();
                let base = match leaf.segs[0].as_str() {
                    "crate" => &[][..],
                    "outreach" if module == "main" => &[],
                    "self" => &scope,
                    "super" => &scope[..scope.len().saturating_sub(supers)],
                    _ => {
                        bare.push(leaf);
                        continue;
                    }
                };
                let path = [base, &leaf.segs[supers.max(1)..]].concat();
                if let (true, Some(name)) = (prev == "use", &leaf.name)
                    && modules.contains(&path.join("::"))
                {
                    names.insert(name.clone(), path.clone());
                }
                // main.rs is a crate root of its own, which uses the library by its name.
                let own = module == "main" && leaf.segs[0] != "outreach";
                absolute.push((path, leaf.line, if own { "main" } else { "lib" }));
            }
            continue;
        }
        i += 1;
    }
    for leaf in bare {
        if let Some(path) = names.get(&leaf.segs[0]) {
            absolute.push(([&path[..], &leaf.segs[1..]].concat(), leaf.line, "lib"));
        }
    }
    let mut found = Refs::new();
    for (path, line, root) in absolute {
        // The longest prefix that is a module file; if none, an item of the crate root.
        let mut prefixes = (1..=path.len()).rev().map(|n| path[..n].join("::"));
        let target = prefixes.find(|m| modules.contains(m) && m != "lib" && m != "main");
        let target = target.unwrap_or_else(|| root.to_string());
        if target != module && found.get(&target).is_none_or(|&first| line < first) {
            found.insert(target, line);
        }
    }
    found
}

/// Every module of `src/` with its file (`src/…`), and the references between them.
fn scan_tree() -> (BTreeMap<String, String>, Graph) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut files, mut dirs) = (BTreeMap::new(), vec![PathBuf::from("src")]);
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&dir)).expect("src/ is readable") {
            let path = dir.join(entry.expect("a directory entry").file_name());
            if root.join(&path).is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let parts = path.with_extension("");
                let mut parts: Vec<_> = parts.iter().skip(1).map(|p| p.to_string_lossy()).collect();
                parts.retain(|p| p != "mod");
                files.insert(parts.join("::"), path.display().to_string());
            }
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, file) in &files {
        let src =
            std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        graph.insert(
            module.clone(),
            references(&src, module, &modules, CHECK_TEST_CODE),
        );
    }
    (files, graph)
}

/// The shortest path of references from `from` to `to`, both included, if there is one.
fn shortest_path<'g>(graph: &'g Graph, from: &'g str, to: &str) -> Option<Vec<&'g str>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(m) = queue.pop_front() {
        if m == to {
            let mut path = vec![m];
            while let Some(&p) = came_from.get(path[path.len() - 1]) {
                path.push(p);
            }
            path.reverse();
            return Some(path);
        }
        for next in graph.get(m).into_iter().flat_map(|refs| refs.keys()) {
            if next != from && !came_from.contains_key(next.as_str()) {
                came_from.insert(next, m);
                queue.push_back(next);
            }
        }
    }
    None
}

/// Groups of modules that reach one another, each with cycles (`[a, b, …, a]`, from their first
/// module) that together take every reference inside the group.
fn cycle_groups(graph: &Graph) -> BTreeMap<BTreeSet<&str>, Vec<Vec<&str>>> {
    let (mut covered, mut groups) = (BTreeSet::new(), BTreeMap::new());
    for (from, refs) in graph {
        for to in refs.keys() {
            if covered.contains(&(from.as_str(), to.as_str())) {
                continue;
            }
            let Some(mut cycle) = shortest_path(graph, to, from) else {
                continue;
            };
            let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).expect("a cycle");
            cycle.rotate_left(first);
            cycle.push(cycle[0]);
            covered.extend(cycle.windows(2).map(|w| (w[0], w[1])));
            let reach = |a: &str, b: &str| shortest_path(graph, a, b).is_some();
            let group = graph
                .keys()
                .map(String::as_str)
                .filter(|m| reach(from, m) && reach(m, from));
            groups
                .entry(group.collect())
                .or_insert_with(Vec::new)
                .push(cycle);
        }
    }
    for cycles in groups.values_mut() {
        cycles.sort_by_key(|c| (c.len(), c.clone()));
    }
    groups
}

fn layer(module: &str) -> Option<u32> {
    let covers = |p: &&(&str, u32)| module == p.0 || module.starts_with(&format!("{}::", p.0));
    let longest = LAYERS.iter().filter(covers).max_by_key(|p| p.0.len());
    longest.map(|p| p.1)
}

#[test]
fn no_import_cycles() {
    let (files, graph) = scan_tree();
    let groups = cycle_groups(&graph);
    let mut message = String::new();
    for (n, (members, cycles)) in groups.iter().enumerate() {
        let members: Vec<&str> = members.iter().copied().collect();
        message += &format!("\ncycle {}: {}\n", n + 1, members.join(", "));
        for cycle in cycles {
            message += &format!("  {}\n", cycle.join(" -> "));
            for w in cycle.windows(2) {
                let (file, line) = (&files[w[0]], graph[w[0]][w[1]]);
                message += &format!("      {} -> {}  at {file}:{line}\n", w[0], w[1]);
            }
        }
    }
    assert!(
        groups.is_empty(),
        "{} import cycle(s) between the modules of src/, each with every reference inside it:\n\
         {message}\nBreak each: move what both sides need down into a module below both (maybe \
         a new one), or have the caller pass it in; then run this test again.",
        groups.len()
    );
}

#[test]
fn layers_point_down() {
    let (files, graph) = scan_tree();
    let unmapped: Vec<String> = files
        .iter()
        .filter(|(m, _)| layer(m).is_none())
        .map(|(m, file)| format!("  {m} ({file})"))
        .collect();
    assert!(
        unmapped.is_empty(),
        "modules on no layer:\n{}\nAdd each to LAYERS in tests/architecture.rs and to the layer \
         table in ARCHITECTURE.md.",
        unmapped.join("\n")
    );
    let mut upward = Vec::new();
    for (from, refs) in &graph {
        for (to, line) in refs {
            let (low, high) = (layer(from).expect("mapped"), layer(to).expect("mapped"));
            if low < high {
                let at = format!("{}:{line}", files[from]);
                upward.push(format!(
                    "  {from} (layer {low}) -> {to} (layer {high})  at {at}"
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "{} reference(s) to a higher layer:\n{}\nA module may use only its own layer and those \
         below: move the item down, or have the caller pass it in. If the layering itself is \
         wrong, change LAYERS here and ARCHITECTURE.md together.",
        upward.len(),
        upward.join("\n")
    );
}

/// The scanner on small sources, in a made-up tree; each answer is `module:first_line …`.
mod scanner {
    use super::*;

    fn refs_with(module: &str, src: &str, test_code: bool) -> String {
        let tree = "lib main a a::b c chan chan::http chan::smtp sms";
        let modules = tree.split(' ').map(String::from).collect();
        let found = references(src, module, &modules, test_code);
        let found: Vec<String> = found
            .iter()
            .map(|(m, line)| format!("{m}:{line}"))
            .collect();
        found.join(" ")
    }

    fn refs(module: &str, src: &str) -> String {
        refs_with(module, src, true)
    }

    #[test]
    fn use_lines_with_nested_braces_over_several_lines() {
        let src = "use crate::a::{self, X};
use crate::{
    c::C,
    a::b::{self as bee, Y, b::Z},
};";
        assert_eq!(refs("sms", src), "a:1 a::b:4 c:3");
    }

    #[test]
    fn inline_paths_and_items_of_the_crate_root() {
        let src = "fn f() -> Option<crate::c::S> {
    crate::a::b::run(crate::Exit::Ok);
    crate::chan::Nope::x()
}";
        assert_eq!(refs("sms", src), "a::b:2 c:1 chan:3 lib:2");
    }

    #[test]
    fn super_and_self_from_where_the_file_is() {
        let http = "use super::{Delivery, smtp::Smtp};\nfn f() { super::super::sms::count(); }";
        assert_eq!(refs("chan::http", http), "chan:1 chan::smtp:1 sms:2");
        let chan =
            "pub mod http;\npub mod smtp;\nuse self::http::Gateway;\nfn f() { super::c::g() }";
        assert_eq!(refs("chan", chan), "c:4 chan::http:3");
    }

    #[test]
    fn inline_modules_referring_to_their_file_are_no_reference() {
        let src = "mod tests {
    use super::*;
    mod deeper {
        use super::super::f;
    }
    use crate::c::g;
}
fn h() { super::sms::x() }";
        assert_eq!(refs("chan::http", src), "c:6 chan:8");
    }

    #[test]
    fn test_code_is_skipped_unless_asked_for() {
        let src = "#[cfg(test)]
mod tests { use crate::c; }
#[cfg(test)]
use crate::sms;
#[cfg(test)]
fn f() -> [u8; 1] { crate::a::x() }
struct S {
    #[cfg(test)]
    t: crate::c::T
}
fn g() -> crate::a::b::B {}";
        assert_eq!(refs_with("lib", src, false), "a::b:11");
        assert_eq!(refs_with("lib", src, true), "a:6 a::b:11 c:2 sms:4");
    }

    #[test]
    fn child_modules_and_imported_modules_in_bare_paths() {
        let lib = "pub mod a;\nmod c;\nuse a::b::{B};\nfn f() { c::g(); E::c::x(); v.a::<u8>(); }";
        assert_eq!(refs("lib", lib), "a::b:3 c:4");
        let sms = "fn f() {\n    chan::http::go();\n    std::io::stdout();\n}\nuse crate::chan;";
        assert_eq!(refs("sms", sms), "chan:5 chan::http:2");
    }

    #[test]
    fn main_uses_the_library_by_its_name() {
        let src = "fn main() {\n    outreach::c::parse();\n    outreach::run(crate::X);\n}";
        assert_eq!(refs("main", src), "c:2 lib:3");
    }

    #[test]
    fn comments_and_literals_are_no_reference() {
        let src = r####"//! See crate::a.
/// Calls crate::a::b.
fn f() { /* crate::c /* nested */ crate::c */
    let s = "crate::c \" crate::c";
    let r = r#"crate::c "quoted" crate::c"#;
    let b = br##"crate::c"#crate::c"##;
    let q = ('"', '\'', '\\', b'"', '\u{22}', "\\");
    let l: &'static str = "x"; fn g<'a>(x: &'a str) {}
    crate::sms::count(); // crate::a
}"####;
        assert_eq!(refs("chan", src), "sms:9");
    }

    #[test]
    fn cycles_take_every_reference_on_one() {
        let mut graph = Graph::new();
        for edge in ["a b", "b a", "b c", "c a", "c d", "x y"] {
            let (from, to) = edge.split_once(' ').unwrap();
            graph.entry(from.into()).or_default().insert(to.into(), 1);
        }
        let groups = cycle_groups(&graph);
        let shown: Vec<String> = groups.values().flatten().map(|c| c.join(" -> ")).collect();
        assert_eq!(groups.len(), 1);
        assert_eq!(shown, ["a -> b -> a", "a -> b -> c -> a"]);
    }
}
