//! The HTML template made ready to compile once: its `{{> partials}}` expanded in place and its
//! `<style>` rules inlined into `style=""` attributes, every Handlebars tag kept intact.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why the HTML template could not be prepared: its partials expanded, its CSS inlined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("partials nest more than 8 deep (a partial includes itself?)")]
    TooDeep,
    #[error("unclosed {{{{> partial}}}} tag")]
    UnclosedPartial,
    #[error("`{{{{> {0}}}}}`: the HTML template takes partials without arguments")]
    PartialArguments(String),
    #[error("no partial named {0:?} in partials/")]
    NoPartial(String),
    #[error("unclosed Handlebars tag near {0:?}")]
    UnclosedTag(String),
    #[error("CSS inlining failed: {0}")]
    Inline(String),
    #[error("CSS inlining lost the Handlebars tag {0}")]
    LostTag(String),
}

/// Replaces `{{> name}}` in an HTML template with the partial's source, so the CSS inliner sees
/// (and styles) the whole document. Only the plain form is supported in the HTML template.
pub(super) fn expand_partials(
    source: &str,
    partials: &BTreeMap<String, (PathBuf, String)>,
    depth: usize,
) -> Result<String, PrepareError> {
    if depth > 8 {
        return Err(PrepareError::TooDeep);
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{{>") {
        let end = rest[start..]
            .find("}}")
            .map(|e| start + e + 2)
            .ok_or(PrepareError::UnclosedPartial)?;
        let name = rest[start + 3..end - 2].trim().trim_matches('~').trim();
        if name.contains(char::is_whitespace) {
            return Err(PrepareError::PartialArguments(name.to_string()));
        }
        let (_, body) = partials
            .get(name)
            .ok_or_else(|| PrepareError::NoPartial(name.to_string()))?;
        out.push_str(&rest[..start]);
        out.push_str(&expand_partials(body, partials, depth + 1)?);
        rest = &rest[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Inlines the `<style>` rules of an HTML template into `style=""` attributes.
///
/// An HTML parser mangles Handlebars tags (`{{> x}}` becomes `{{&gt; x}}`, a `{{#each}}` between
/// table rows is moved out of the table), so every tag is swapped for an inert placeholder first
/// and restored after: a comment between elements, a plain token inside a tag or `<title>`.
pub fn inline_css(template: &str) -> Result<String, PrepareError> {
    let mut protected = String::with_capacity(template.len());
    let mut tags = Vec::new();
    let mut rest = template;
    let mut in_tag = false;
    let mut in_raw_text = false;
    while let Some(open) = rest.find("{{") {
        let before = &rest[..open];
        for (i, c) in before.char_indices() {
            match c {
                '<' => {
                    in_tag = true;
                    let head = before.get(i..(i + 7).min(before.len())).unwrap_or("");
                    if head.to_ascii_lowercase().starts_with("<title") {
                        in_raw_text = true;
                    } else if head.eq_ignore_ascii_case("</title") {
                        in_raw_text = false;
                    }
                }
                '>' => in_tag = false,
                _ => {}
            }
        }
        let close_pat = if rest[open..].starts_with("{{!--") {
            "--}}"
        } else if rest[open..].starts_with("{{{") {
            "}}}"
        } else {
            "}}"
        };
        let close = rest[open..]
            .find(close_pat)
            .map(|c| open + c + close_pat.len())
            .ok_or_else(|| PrepareError::UnclosedTag(rest[open..].to_string()))?;
        protected.push_str(before);
        let n = tags.len();
        if in_tag || in_raw_text {
            protected.push_str(&format!("hbsph{n}x"));
        } else {
            protected.push_str(&format!("<!--hbsph{n}x-->"));
        }
        tags.push(&rest[open..close]);
        rest = &rest[close..];
    }
    protected.push_str(rest);

    let inliner = css_inline::CSSInliner::options()
        .keep_style_tags(false)
        .load_remote_stylesheets(false)
        .build();
    let mut inlined = inliner
        .inline(&protected)
        .map_err(|e| PrepareError::Inline(e.to_string()))?;
    // Restore from the highest index so `hbsph1x` never matches inside `hbsph12x`.
    for (n, tag) in tags.iter().enumerate().rev() {
        let comment = format!("<!--hbsph{n}x-->");
        let token = format!("hbsph{n}x");
        if inlined.contains(&comment) {
            inlined = inlined.replacen(&comment, tag, 1);
        } else if inlined.contains(&token) {
            inlined = inlined.replacen(&token, tag, 1);
        } else {
            return Err(PrepareError::LostTag(tag.to_string()));
        }
    }
    Ok(inlined)
}
