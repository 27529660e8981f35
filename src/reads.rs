//! What templates can read of the data they are rendered with, as far as their syntax shows
//! ([`reads`]): the message's context is built with only that, so a value no template names is
//! never built for each patient. Read from the compiled templates once, after folding
//! (`crate::fold`), when they load.

use std::collections::BTreeSet;

use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
use handlebars::{Handlebars, Path, PathSeg};

/// What templates can read of the data they are rendered with, as far as their syntax shows:
/// the message's context holds only that (the rest would be built for every message and never
/// looked at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// Anything: a block that changes the context (`#each`, `#with`, any block but `#if` and
    /// `#unless`), a partial given a context or hash, `this`, `..`, `@root`, `@index`, a
    /// decorator.
    Everything,
    /// These top-level keys. Of `contact`, the fields in `contact` (`None`: all of them, as for
    /// `{{#if contact}}` or `{{lookup contact "x"}}`).
    Keys {
        keys: BTreeSet<String>,
        contact: Option<BTreeSet<String>>,
    },
}

impl Reads {
    /// What either of two sets of templates can read.
    pub fn union(self, other: Reads) -> Reads {
        match (self, other) {
            (
                Reads::Keys { mut keys, contact },
                Reads::Keys {
                    keys: more,
                    contact: more_contact,
                },
            ) => {
                keys.extend(more);
                let contact = contact.zip(more_contact).map(|(mut a, b)| {
                    a.extend(b);
                    a
                });
                Reads::Keys { keys, contact }
            }
            _ => Reads::Everything,
        }
    }

    /// Whether the top-level value `key` may be read.
    pub fn key(&self, key: &str) -> bool {
        match self {
            Reads::Everything => true,
            Reads::Keys { keys, .. } => keys.contains(key),
        }
    }

    /// Whether the contact's field `name` may be read.
    pub fn contact_field(&self, name: &str) -> bool {
        match self {
            Reads::Everything => true,
            Reads::Keys { keys, contact } => {
                keys.contains("contact") && contact.as_ref().is_none_or(|f| f.contains(name))
            }
        }
    }
}

/// What the templates `names` of `reg`, and the partials they call, can read.
pub fn reads(reg: &Handlebars<'static>, names: &[&str]) -> Reads {
    let mut scan = ReadScan {
        reg,
        keys: BTreeSet::new(),
        contact: Some(BTreeSet::new()),
        partials: BTreeSet::new(),
    };
    for name in names {
        if let Some(t) = reg.get_template(name)
            && scan.elements(&t.elements).is_none()
        {
            return Reads::Everything;
        }
    }
    Reads::Keys {
        keys: scan.keys,
        contact: scan.contact,
    }
}

/// The walk behind [`reads`]; each method returns `None` on finding something that may read
/// anything.
struct ReadScan<'a> {
    reg: &'a Handlebars<'static>,
    keys: BTreeSet<String>,
    contact: Option<BTreeSet<String>>,
    /// Partials already walked.
    partials: BTreeSet<String>,
}

impl ReadScan<'_> {
    fn elements(&mut self, elements: &[TemplateElement]) -> Option<()> {
        for e in elements {
            match e {
                TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    self.helper(h)?
                }
                TemplateElement::HelperBlock(h) => {
                    // `#if`/`#unless` keep the context; any other block may change it.
                    let keeps = matches!(&h.name, Parameter::Name(n) if n == "if" || n == "unless");
                    if !keeps || h.block_param.is_some() {
                        return None;
                    }
                    self.helper(h)?;
                    for t in h.template.iter().chain(h.inverse.iter()) {
                        self.elements(&t.elements)?;
                    }
                }
                TemplateElement::PartialExpression(d) => {
                    let Parameter::Name(name) = &d.name else {
                        return None;
                    };
                    if !d.params.is_empty() || !d.hash.is_empty() || d.template.is_some() {
                        return None;
                    }
                    if self.partials.insert(name.clone()) {
                        // A partial that is not registered fails to render either way.
                        if let Some(t) = self.reg.get_template(name) {
                            self.elements(&t.elements)?;
                        }
                    }
                }
                _ => return None,
            }
        }
        Some(())
    }

    /// An expression or a block's opening: its name (a helper's, or a value's), parameters
    /// and hash.
    fn helper(&mut self, h: &HelperTemplate) -> Option<()> {
        self.parameter(&h.name)?;
        for p in h.params.iter().chain(h.hash.values()) {
            self.parameter(p)?;
        }
        Some(())
    }

    fn parameter(&mut self, p: &Parameter) -> Option<()> {
        match p {
            Parameter::Literal(_) => {}
            // A helper's name, or a value at the top: either way, at most that key is read.
            Parameter::Name(n) => self.path(&[n.as_str()]),
            Parameter::Path(Path::Relative((segs, _))) => {
                let mut names = Vec::with_capacity(segs.len());
                for s in segs {
                    match s {
                        PathSeg::Named(n) => names.push(n.as_str()),
                        _ => return None,
                    }
                }
                // `this` at the top: the whole context.
                if names.is_empty() {
                    return None;
                }
                self.path(&names);
            }
            Parameter::Path(Path::Local(_)) => return None,
            Parameter::Subexpression(e) => match e.element.as_ref() {
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    self.helper(h)?
                }
                _ => return None,
            },
            _ => return None,
        }
        Some(())
    }

    /// A path from the top of the context (never empty).
    fn path(&mut self, names: &[&str]) {
        let Some((first, rest)) = names.split_first() else {
            return;
        };
        self.keys.insert(first.to_string());
        if *first == "contact" {
            match (rest.first(), self.contact.as_mut()) {
                (Some(field), Some(fields)) => {
                    fields.insert(field.to_string());
                }
                (None, _) => self.contact = None,
                (Some(_), None) => {}
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fold::tests::registry;

    fn reads_of(source: &str, partials: &[(&str, &str)]) -> Reads {
        reads(&registry(&[("t", source)], partials), &["t"])
    }

    pub(crate) fn only(keys: &[&str], contact: Option<&[&str]>) -> Reads {
        Reads::Keys {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            contact: contact.map(|f| f.iter().map(|k| k.to_string()).collect()),
        }
    }

    #[test]
    fn templates_read_only_the_values_they_name() {
        // Helper names count as keys read: harmless, as no value has a helper's name.
        assert_eq!(
            reads_of(
                "Hi {{contact.first_name}} {{default contact.city \"you\"}} {{{unsubscribe_url}}}",
                &[]
            ),
            only(
                &["contact", "default", "unsubscribe_url"],
                Some(&["city", "first_name"])
            )
        );
        // `#if`/`#unless` keep the context: their conditions, branches and `else if` chains
        // are read; so are plain partials, subexpressions and hash values.
        assert_eq!(
            reads_of(
                "{{#if contact.a}}{{clinic.name}}{{else if contact.b}}{{> foot}}{{else}}\
                 {{#unless campaign.id}}{{default (default contact.c contact.d) x=contact.e}}\
                 {{/unless}}{{/if}}",
                &[("foot", "{{contact.f}} {{> foot}}")]
            ),
            only(
                &["campaign", "clinic", "contact", "default", "if", "unless"],
                Some(&["a", "b", "c", "d", "e", "f"])
            )
        );
        // The contact as a whole: every field.
        assert_eq!(
            reads_of("{{#if contact}}x{{/if}}", &[]),
            only(&["contact", "if"], None)
        );
        assert_eq!(
            reads_of("{{contact.b}} {{lookup contact \"a\"}} {{contact.c}}", &[]),
            only(&["contact", "lookup"], None)
        );
        // `this.` at the top is the top itself.
        assert_eq!(
            reads_of("{{this.contact.a}}", &[]),
            only(&["contact"], Some(&["a"]))
        );
        assert_eq!(reads_of("plain text", &[]), only(&[], Some(&[])));
    }

    #[test]
    fn anything_that_can_change_what_a_path_means_reads_everything() {
        for t in [
            "{{#each contact.tags}}{{name}}{{/each}}",
            "{{#with contact}}{{first_name}}{{/with}}",
            "{{#if contact.a as |x|}}{{x}}{{/if}}",
            "{{this}}",
            "{{#if contact.a}}{{lookup this \"clinic\"}}{{/if}}",
            "{{#if contact.a}}{{../clinic.name}}{{/if}}",
            "{{@root.clinic.name}}",
            "{{> foot contact}}",
            "{{> foot x=contact.a}}",
            "{{#> foot}}fallback{{/foot}}",
            "{{#*inline \"foot\"}}{{contact.a}}{{/inline}}{{> foot}}",
            "{{> (lookup contact \"p\")}}",
        ] {
            assert_eq!(
                reads_of(t, &[("foot", "{{contact.f}}")]),
                Reads::Everything,
                "{t}"
            );
        }
        // Also when it is in a partial that is called.
        assert_eq!(
            reads_of("{{> foot}}", &[("foot", "{{#each contact.tags}}{{/each}}")]),
            Reads::Everything
        );
    }
}
