//! Campaign-wide values folded into the compiled templates once, when they load.
//!
//! Every message of a campaign shares `clinic.*`, `campaign.*` and `unsubscribe_mailto`; the
//! psoas templates name them about twenty times each. Handlebars would look each one up in the
//! context and escape it again for every patient, which was most of the cost of rendering. Here
//! each such expression becomes the text it always renders to, and an `{{#if}}`/`{{#unless}}` on
//! one of them becomes the branch it always takes, so per patient only `contact.*` and
//! `unsubscribe_url` are left to evaluate.
//!
//! Folding never changes what a template renders, so it is deliberately narrow: only a plain
//! path (`{{clinic.name}}`, `{{{clinic.name}}}`, `{{unsubscribe_mailto}}`) whose value is a
//! string, and only where the context is the template's root: never inside `#each`, `#with` or
//! any other block that changes what a path means. A partial is folded only when every call of
//! it is a plain `{{> name}}` at the root of a top-level template (no context, no hash, no
//! indentation to apply); a template with inline partials or decorators is left alone. Elements
//! keep their source positions, so an error in what is left still names its line.

use std::collections::BTreeSet;

use handlebars::template::{HelperTemplate, Parameter, TemplateElement, TemplateMapping};
use handlebars::{Handlebars, Path, PathSeg, Template};
use serde_json::Value;

/// Folds `constants` (an object: `{"clinic": {…}, "campaign": {…}, …}`) into the templates
/// `names` of `reg` and into the partials only they call. `escape` is the registry's own escape
/// function, applied to what `{{…}}` (not `{{{…}}}`) would have written.
pub fn fold(
    reg: &mut Handlebars<'static>,
    names: &[&str],
    partials: &BTreeSet<String>,
    constants: &Value,
    escape: fn(&str) -> String,
) {
    let mut calls = Calls::default();
    for name in names {
        if let Some(t) = reg.get_template(name) {
            calls.scan(&t.elements, true);
        }
    }
    for name in partials {
        if let Some(t) = reg.get_template(name) {
            // A partial that calls a partial: its callee is not known to be at the root.
            calls.scan(&t.elements, false);
        }
    }
    let foldable: Vec<&str> = if calls.dynamic {
        Vec::new()
    } else {
        partials
            .iter()
            .filter(|p| calls.at_root.contains(p.as_str()) && !calls.elsewhere.contains(*p))
            .map(String::as_str)
            .collect()
    };
    let folder = Folder { constants, escape };
    for name in names.iter().copied().chain(foldable) {
        let Some(t) = reg.get_template(name) else {
            continue;
        };
        // A template with inline partials (which shadow registered ones) is left alone, and so
        // is a top-level template that is also called as a partial from another scope.
        if has_decorator(&t.elements) || calls.elsewhere.contains(name) || !positioned(t) {
            continue;
        }
        let mut t = t.clone();
        folder.fold_in_place(&mut t);
        reg.register_template(name, t);
    }
}

/// Where partials are called from.
#[derive(Default)]
struct Calls {
    /// Called as a plain `{{> name}}` at the root of a top-level template.
    at_root: BTreeSet<String>,
    /// Called anywhere else, or in any other form.
    elsewhere: BTreeSet<String>,
    /// A partial named by an expression: any partial may be called from anywhere.
    dynamic: bool,
}

impl Calls {
    fn scan(&mut self, elements: &[TemplateElement], root: bool) {
        for e in elements {
            match e {
                TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
                    let name = match &d.name {
                        Parameter::Name(n) => n.clone(),
                        Parameter::Literal(Value::String(n)) => n.clone(),
                        _ => {
                            self.dynamic = true;
                            continue;
                        }
                    };
                    let plain = root
                        && matches!(e, TemplateElement::PartialExpression(_))
                        && d.params.is_empty()
                        && d.hash.is_empty()
                        && d.indent.as_deref().is_none_or(str::is_empty);
                    if plain {
                        self.at_root.insert(name);
                    } else {
                        self.elsewhere.insert(name);
                    }
                    if let Some(t) = &d.template {
                        self.scan(&t.elements, false);
                    }
                }
                TemplateElement::HelperBlock(h) => {
                    // `#if` and `#unless` keep the context; every other block may change it.
                    let same_scope = root && is_condition(h);
                    for t in h.template.iter().chain(h.inverse.iter()) {
                        self.scan(&t.elements, same_scope);
                    }
                }
                TemplateElement::DecoratorBlock(d) | TemplateElement::DecoratorExpression(d) => {
                    if let Some(t) = &d.template {
                        self.scan(&t.elements, false);
                    }
                }
                _ => {}
            }
        }
    }
}

fn has_decorator(elements: &[TemplateElement]) -> bool {
    elements.iter().any(|e| match e {
        TemplateElement::DecoratorBlock(_) | TemplateElement::DecoratorExpression(_) => true,
        TemplateElement::HelperBlock(h) => h
            .template
            .iter()
            .chain(h.inverse.iter())
            .any(|t| has_decorator(&t.elements)),
        _ => false,
    })
}

/// `{{#if x}}` or `{{#unless x}}` with one parameter and no options.
fn is_condition(h: &HelperTemplate) -> bool {
    matches!(&h.name, Parameter::Name(n) if n == "if" || n == "unless")
        && h.params.len() == 1
        && h.hash.is_empty()
        && h.block_param.is_none()
}

struct Folder<'a> {
    constants: &'a Value,
    escape: fn(&str) -> String,
}

impl Folder<'_> {
    /// The constant a parameter names, if it names one.
    fn constant(&self, p: &Parameter) -> Option<&Value> {
        let mut segments: Vec<&str> = Vec::new();
        match p {
            // `{{unsubscribe_mailto}}`: a bare identifier (it could also name a helper, but no
            // helper has the name of a constant).
            Parameter::Name(n) => segments.push(n),
            Parameter::Path(Path::Relative((segs, _))) => {
                for s in segs {
                    match s {
                        PathSeg::Named(n) => segments.push(n),
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
        let (first, rest) = segments.split_first()?;
        let mut v = self.constants.as_object()?.get(*first)?;
        for s in rest {
            v = v.as_object()?.get(*s)?;
        }
        Some(v)
    }

    /// The text an expression always writes, when it is a plain path to a string constant.
    fn text(&self, h: &HelperTemplate, raw: bool) -> Option<String> {
        if h.block || !h.params.is_empty() || !h.hash.is_empty() || h.template.is_some() {
            return None;
        }
        let Value::String(s) = self.constant(&h.name)? else {
            return None;
        };
        Some(if raw { s.clone() } else { (self.escape)(s) })
    }

    /// Which branch an `#if`/`#unless` on a constant always takes: `Some(true)` for its
    /// template, `Some(false)` for its inverse.
    fn branch(&self, h: &HelperTemplate) -> Option<bool> {
        if !is_condition(h) {
            return None;
        }
        // Only strings: they are the constants, and their truth cannot depend on `includeZero`.
        let Value::String(s) = self.constant(&h.params[0])? else {
            return None;
        };
        let positive = matches!(&h.name, Parameter::Name(n) if n == "if");
        let truthy = !s.is_empty();
        Some(truthy == positive)
    }

    /// Folds a template's own elements, keeping each one's source position.
    fn fold_in_place(&self, t: &mut Template) {
        let (elements, mapping) = self.fold(
            std::mem::take(&mut t.elements),
            std::mem::take(&mut t.mapping),
        );
        t.elements = elements;
        t.mapping = mapping;
    }

    fn fold(
        &self,
        elements: Vec<TemplateElement>,
        mapping: Vec<TemplateMapping>,
    ) -> (Vec<TemplateElement>, Vec<TemplateMapping>) {
        let mut out: Vec<TemplateElement> = Vec::with_capacity(elements.len());
        let mut map: Vec<TemplateMapping> = Vec::with_capacity(mapping.len());
        let mut push = |e: TemplateElement, m: TemplateMapping| {
            // Adjacent text becomes one piece of text, written at once.
            if let (TemplateElement::RawString(s), Some(TemplateElement::RawString(prev))) =
                (&e, out.last_mut())
            {
                prev.push_str(s);
                return;
            }
            out.push(e);
            map.push(m);
        };
        for (e, m) in elements.into_iter().zip(mapping) {
            match e {
                TemplateElement::Expression(ref h) | TemplateElement::HtmlExpression(ref h) => {
                    let raw = matches!(e, TemplateElement::HtmlExpression(_));
                    match self.text(h, raw) {
                        Some(text) => push(TemplateElement::RawString(text), m),
                        None => push(e, m),
                    }
                }
                TemplateElement::HelperBlock(mut h) => {
                    let condition = is_condition(&h);
                    let taken = match self.branch(&h) {
                        Some(true) => Some(&mut h.template),
                        Some(false) => Some(&mut h.inverse),
                        None => None,
                    };
                    match taken {
                        Some(branch) if branch.as_ref().is_none_or(positioned) => {
                            if let Some(t) = branch.take() {
                                let (es, ms) = self.fold(t.elements, t.mapping);
                                for (e, m) in es.into_iter().zip(ms) {
                                    push(e, m);
                                }
                            }
                        }
                        _ if condition => {
                            // The condition is the patient's (or its branch has no positions):
                            // the branches keep the root context.
                            let branches = [h.template.as_mut(), h.inverse.as_mut()];
                            for t in branches.into_iter().flatten().filter(|t| positioned(t)) {
                                self.fold_in_place(t);
                            }
                            push(TemplateElement::HelperBlock(h), m);
                        }
                        _ => push(TemplateElement::HelperBlock(h), m),
                    }
                }
                other => push(other, m),
            }
        }
        (out, map)
    }
}

/// The text template `name` of `reg` writes whatever its data: its own text outside any block
/// (after folding, the campaign's values are part of it), and that of the partials it calls
/// outside any block, each piece on a line of its own. Text inside `#if`, `#each` or any other
/// block may not be written, so it is left out.
pub fn fixed_text(reg: &Handlebars<'static>, name: &str) -> String {
    let mut out = String::new();
    let mut seen = BTreeSet::new();
    if let Some(t) = reg.get_template(name) {
        // Inline partials shadow registered ones: with them, a call's text is not known here.
        if has_decorator(&t.elements) {
            seen.extend(reg.get_templates().keys().cloned());
        }
        fixed_in(reg, &t.elements, &mut seen, &mut out);
    }
    out
}

fn fixed_in(
    reg: &Handlebars<'static>,
    elements: &[TemplateElement],
    seen: &mut BTreeSet<String>,
    out: &mut String,
) {
    for e in elements {
        match e {
            TemplateElement::RawString(s) => {
                out.push_str(s);
                out.push('\n');
            }
            TemplateElement::PartialExpression(d) if d.template.is_none() => {
                let name = match &d.name {
                    Parameter::Name(n) => n,
                    Parameter::Literal(Value::String(n)) => n,
                    _ => continue,
                };
                // A partial that calls itself is written once here: its text is there anyway.
                if seen.insert(name.clone())
                    && let Some(t) = reg.get_template(name)
                {
                    fixed_in(reg, &t.elements, seen, out);
                }
            }
            _ => {}
        }
    }
}

/// Whether a template has a source position for each element, as one compiled from source has
/// (the `{{else if}}` of a chain has none): only then can elements be moved with theirs.
fn positioned(t: &Template) -> bool {
    t.mapping.len() == t.elements.len()
}

/// How many expressions and blocks a template still evaluates per message.
#[cfg(test)]
pub fn evaluated(t: &Template) -> usize {
    t.elements
        .iter()
        .map(|e| match e {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => 0,
            TemplateElement::HelperBlock(h) => {
                1 + h
                    .template
                    .iter()
                    .chain(h.inverse.iter())
                    .map(evaluated)
                    .sum::<usize>()
            }
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Channel;
    use crate::reads::Reads;
    use crate::reads::tests::only;
    use crate::templates::{EMAIL_HTML, EMAIL_TEXT, MessageData, SMS_TEXT, SUBJECT, Templates};

    pub(crate) fn registry(
        templates: &[(&str, &str)],
        partials: &[(&str, &str)],
    ) -> Handlebars<'static> {
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        h.register_escape_fn(crate::templates::escape_html);
        for (name, source) in templates.iter().chain(partials) {
            h.register_template_string(name, source).unwrap();
        }
        h
    }

    /// A registry of the template `t` and `partials`, folded with [`constants`].
    fn folded(source: &str, partials: &[(&str, &str)]) -> Handlebars<'static> {
        let mut folded = registry(&[("t", source)], partials);
        let names: BTreeSet<String> = partials.iter().map(|(n, _)| n.to_string()).collect();
        fold(
            &mut folded,
            &["t"],
            &names,
            &constants(),
            crate::templates::escape_html,
        );
        folded
    }

    /// Renders `t` with `data` unfolded and folded; both must agree, and the folded one must
    /// evaluate `left` expressions per message.
    fn same(source: &str, partials: &[(&str, &str)], data: &Value, left: usize) -> String {
        let plain = registry(&[("t", source)], partials);
        let folded = folded(source, partials);
        let a = plain.render("t", data);
        let b = folded.render("t", data);
        match (&a, &b) {
            (Ok(x), Ok(y)) => assert_eq!(x, y),
            (Err(x), Err(y)) => {
                assert_eq!(x.line_no, y.line_no, "{x} / {y}");
                assert_eq!(x.reason().to_string(), y.reason().to_string());
            }
            _ => panic!("unfolded {a:?}, folded {b:?}"),
        }
        assert_eq!(
            evaluated(folded.get_template("t").unwrap()),
            left,
            "{source}"
        );
        a.unwrap_or_else(|e| format!("error line {:?}: {}", e.line_no, e.reason()))
    }

    /// The constants of [`data`].
    fn constants() -> Value {
        let d = data();
        serde_json::json!({"clinic": d["clinic"], "unsubscribe_mailto": d["unsubscribe_mailto"]})
    }

    fn data() -> Value {
        serde_json::json!({
            "clinic": {"name": "O'Brien & Sons <Physio>", "phone": "+1 312 555 0100", "empty": ""},
            "unsubscribe_mailto": "unsub@riverside.example",
            "contact": {"first_name": "Ann", "tags": [{"clinic": {"name": "inner"}}]},
        })
    }

    #[test]
    fn fixed_text_is_what_every_message_writes() {
        let reg = folded(
            "{{clinic.name}}: Hola {{contact.first_name}}{{#if contact.vip}} VIP ó{{/if}} \
             {{> sig}}{{#each contact.tags}}í{{/each}}",
            &[("sig", "Evaluación {{> sig}}")],
        );
        assert_eq!(
            fixed_text(&reg, "t"),
            "O&#39;Brien &amp; Sons &lt;Physio&gt;: Hola \n \nEvaluación \n"
        );
        assert_eq!(fixed_text(&reg, "missing"), "");
    }

    #[test]
    fn constants_become_text_and_only_the_patients_values_are_left() {
        let out = same(
            "Hi {{contact.first_name}}, {{clinic.name}} {{{clinic.name}}} {{clinic.phone}}",
            &[],
            &data(),
            1,
        );
        assert_eq!(
            out,
            "Hi Ann, O&#39;Brien &amp; Sons &lt;Physio&gt; O'Brien & Sons <Physio> +1 312 555 0100"
        );
        same("{{unsubscribe_mailto}}", &[], &data(), 0);
    }

    #[test]
    fn conditions_on_constants_take_their_branch_and_others_keep_theirs_folded() {
        let d = data();
        let out = same(
            "{{#if unsubscribe_mailto}}mail {{unsubscribe_mailto}}{{else}}none{{/if}}\n\
             {{#unless clinic.empty}}no empty {{clinic.phone}}{{/unless}}\n\
             {{#if clinic.empty}}x{{else if contact.first_name}}{{clinic.phone}}{{/if}}\n\
             {{#if contact.first_name}}{{clinic.phone}} {{contact.first_name}}{{/if}}",
            &[],
            &d,
            // An `{{else if}}` chain is left whole (its links carry no source positions): the
            // block, the inner block, its value; then the block on the patient and their name.
            3 + 2,
        );
        assert!(out.starts_with("mail unsub@riverside.example\nno empty +1 312 555 0100\n"));
    }

    #[test]
    fn blocks_that_change_the_context_are_left_alone() {
        // Inside #each, `clinic.name` is the item's: folding it would be wrong.
        let out = same(
            "{{#each contact.tags}}{{clinic.name}}{{/each}}|{{#with contact}}{{first_name}}{{/with}}",
            &[],
            &data(),
            2 + 2,
        );
        assert_eq!(out, "inner|Ann");
    }

    /// How many expressions the partial `foot` still evaluates after folding with `t`.
    fn left_in_foot(t: &str, foot: &str) -> usize {
        evaluated(folded(t, &[("foot", foot)]).get_template("foot").unwrap())
    }

    #[test]
    fn partials_are_folded_only_when_every_call_is_plain_and_at_the_root() {
        let foot = "{{clinic.phone}} {{contact.first_name}}";
        // Called plainly at the root: folded (the patient's name is left).
        assert_eq!(left_in_foot("{{> foot}}", foot), 1);
        same("{{> foot}}", &[("foot", foot)], &data(), 1);
        // Also called inside #each: not folded.
        let t = "{{> foot}}{{#each contact.tags}}{{> foot}}{{/each}}";
        assert_eq!(left_in_foot(t, foot), 2);
    }

    #[test]
    fn a_missing_value_is_still_reported_on_its_own_line() {
        let out = same(
            "{{clinic.name}}\n{{clinic.phone}}\n{{#if unsubscribe_mailto}}\n{{contact.last_name}}\n{{/if}}",
            &[],
            &data(),
            1,
        );
        assert!(out.starts_with("error line Some(4)"), "{out}");
    }

    /// The shipped campaign renders the same for every sample contact, folded or not.
    #[test]
    fn the_shipped_campaign_renders_the_same_folded() {
        let state = tempfile::tempdir().unwrap();
        let set = format!("sending.state_dir={}", state.path().display());
        let loaded = crate::load::Loaded::load(
            std::path::Path::new("campaigns/psoas.toml"),
            std::slice::from_ref(&set),
        )
        .unwrap();
        let plain =
            Templates::load(&loaded.campaign.templates_dir, &loaded.campaign.channels).unwrap();
        let (_, folded) = loaded.templates.pick(None);
        for contact in &loaded.contacts.contacts {
            let data = MessageData {
                campaign: &loaded.campaign,
                contact,
                unsubscribe_url: Some("https://riverside.example/unsubscribe?t=tok"),
            }
            .context(&Reads::Everything);
            assert_eq!(plain.render_email(&data), folded.render_email(&data));
            assert_eq!(plain.render_sms(&data), folded.render_sms(&data));
            // And the same from a context of only what the folded templates read.
            let trimmed = |channel| {
                MessageData {
                    campaign: &loaded.campaign,
                    contact,
                    unsubscribe_url: Some("https://riverside.example/unsubscribe?t=tok"),
                }
                .context(folded.reads(channel))
            };
            assert_eq!(
                folded.render_email(&trimmed(Channel::Email)),
                folded.render_email(&data)
            );
            assert_eq!(
                folded.render_sms(&trimmed(Channel::Sms)),
                folded.render_sms(&data)
            );
        }
        // An SMS reads the patient's first name (through `gsm7`); an email also the link.
        assert_eq!(
            folded.reads(Channel::Sms),
            &only(&["contact", "gsm7"], Some(&["first_name"]))
        );
        assert!(matches!(
            folded.reads(Channel::Email),
            Reads::Keys { keys, contact: Some(fields) }
                if !keys.contains("clinic") && keys.contains("unsubscribe_url")
                    && fields.contains("first_name")
        ));
        // What is left per message: the patient's name and the unsubscribe link (the HTML
        // template has its partials written in), and the text part's two partial calls.
        for (name, left) in [
            (SUBJECT, 0),
            (EMAIL_HTML, 2),
            (EMAIL_TEXT, 3),
            (SMS_TEXT, 1),
            ("footer_text", 1),
            ("symptoms_text", 0),
        ] {
            assert_eq!(folded.evaluated(name), Some(left), "{name}");
        }
        assert!(plain.evaluated(EMAIL_HTML).unwrap() > 20);
    }
}
