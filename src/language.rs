//! A patient's language: a BCP 47 tag (`en`, `es`, `es-MX`) read case-insensitively and written
//! in its canonical case, the chain of tags it falls back through (`es-MX` → `es`, RFC 4647
//! lookup), and the choice among a campaign's languages for an HTTP `Accept-Language` header.
//! The part of RFC 5646 read is the one that names a language: language, script, region and
//! variant subtags (`icu_locale_core` reads the same, but only with a feature that rebuilds half
//! the dependency tree, for a dozen lines). An `_` between subtags (`es_MX`, as some exports
//! write it) is read as `-`.

use std::fmt;

/// A language tag in canonical form (`es-MX`, never `ES_mx`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Language(String);

/// A value that is not a language tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a language tag (BCP 47, like en, es or es-MX)")]
pub struct LanguageError {
    /// The value, trimmed.
    pub value: String,
}

impl Language {
    /// Reads a tag: trimmed, any case, `_` or `-` between subtags. Extensions and private-use
    /// subtags (`-u-…`, `-x-…`) are not language choices and are refused.
    pub fn parse(value: &str) -> Result<Language, LanguageError> {
        let v = value.trim();
        let err = || LanguageError {
            value: v.to_string(),
        };
        if v.is_empty() {
            return Err(err());
        }
        let mut subtags = v.split(['-', '_']);
        let language = subtags.next().unwrap_or_default();
        let alpha = |s: &str| s.bytes().all(|b| b.is_ascii_alphabetic());
        if !alpha(language)
            || !matches!(language.len(), 2 | 3 | 5..=8)
            || language.eq_ignore_ascii_case("und")
        {
            return Err(err());
        }
        let mut tag = language.to_ascii_lowercase();
        // 0: after the language, 1: after a script, 2: after a region, 3: among variants.
        let mut stage = 0;
        for s in subtags {
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            let alnum = s.bytes().all(|b| b.is_ascii_alphanumeric());
            tag.push('-');
            if stage < 1 && s.len() == 4 && alpha(s) {
                tag.push_str(&s[..1].to_ascii_uppercase());
                tag.push_str(&s[1..].to_ascii_lowercase());
                stage = 1;
            } else if stage < 2 && ((s.len() == 2 && alpha(s)) || (s.len() == 3 && digits)) {
                tag.push_str(&s.to_ascii_uppercase());
                stage = 2;
            } else if alnum
                && ((5..=8).contains(&s.len())
                    || (s.len() == 4 && s.as_bytes()[0].is_ascii_digit()))
            {
                tag.push_str(&s.to_ascii_lowercase());
                stage = 3;
            } else {
                return Err(err());
            }
        }
        Ok(Language(tag))
    }

    /// The tag, canonical.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This tag, then each shorter one it falls back to: `es-MX` → `es`; `zh-Hant-TW` →
    /// `zh-Hant` → `zh`. A one-letter subtag left at the end is dropped with the one after it
    /// (RFC 4647, 3.4).
    pub fn fallbacks(&self) -> impl Iterator<Item = &str> {
        let mut next = Some(self.0.as_str());
        std::iter::from_fn(move || {
            let tag = next?;
            next = tag.rfind('-').map(|i| {
                let shorter = &tag[..i];
                match shorter.rfind('-') {
                    Some(j) if i - j == 2 => &shorter[..j],
                    _ => shorter,
                }
            });
            Some(tag)
        })
    }
}

/// Sets are looked up by tag (`BTreeMap::get("es")`); the order is the tags' own.
impl std::borrow::Borrow<str> for Language {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The language of `available` that an `Accept-Language` header prefers: its tags by
/// descending `q` (ties in the order written), each looked up through its fallbacks. `None`
/// when no tag matches (or the header says nothing usable).
pub fn negotiate<'a>(accept_language: &str, available: &'a [Language]) -> Option<&'a Language> {
    let mut wanted: Vec<(u16, Language)> = accept_language
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = Language::parse(parts.next()?).ok()?;
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), |q| {
                    q.trim().parse::<f32>().ok().map(|q| (q * 1000.0) as u16)
                })?;
            (q > 0).then_some((q, tag))
        })
        .collect();
    wanted.sort_by_key(|(q, _)| std::cmp::Reverse(*q));
    wanted.iter().find_map(|(_, tag)| {
        tag.fallbacks()
            .find_map(|t| available.iter().find(|a| a.as_str() == t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> Language {
        Language::parse(s).unwrap()
    }

    #[test]
    fn tags_are_read_in_any_case_and_written_canonically() {
        assert_eq!(tag("ES").as_str(), "es");
        assert_eq!(tag(" es-mx ").as_str(), "es-MX");
        assert_eq!(tag("es_MX").as_str(), "es-MX");
        assert_eq!(tag("zh-hant-tw").as_str(), "zh-Hant-TW");
        assert_eq!(tag("es-419").as_str(), "es-419");
        assert_eq!(tag("de-CH-1996").as_str(), "de-CH-1996");
        for bad in [
            "", "spanish!", "e", "es-", "1234", "es MX", "und", "es-MX-MX", "en-u-ca", "x-foo",
        ] {
            let e = Language::parse(bad).unwrap_err();
            assert_eq!(e.value, bad.trim(), "{bad}");
        }
        assert_eq!(
            Language::parse("Español").unwrap_err().to_string(),
            "\"Español\" is not a language tag (BCP 47, like en, es or es-MX)"
        );
    }

    #[test]
    fn fallbacks_shorten_the_tag() {
        let chain = |s: &str| tag(s).fallbacks().map(String::from).collect::<Vec<_>>();
        assert_eq!(chain("es-MX"), ["es-MX", "es"]);
        assert_eq!(chain("en"), ["en"]);
        assert_eq!(chain("zh-Hant-TW"), ["zh-Hant-TW", "zh-Hant", "zh"]);
    }

    #[test]
    fn accept_language_picks_the_preferred_available_tag() {
        let available = [tag("en"), tag("es")];
        let pick = |h: &str| negotiate(h, &available).map(|l| l.as_str().to_string());
        assert_eq!(pick("es-MX,es;q=0.9,en;q=0.8").as_deref(), Some("es"));
        assert_eq!(pick("fr, en;q=0.5, es;q=0.7").as_deref(), Some("es"));
        assert_eq!(pick("fr-CA, fr;q=0.9").as_deref(), None);
        assert_eq!(pick("es;q=0, en").as_deref(), Some("en"));
        assert_eq!(pick("").as_deref(), None);
        assert_eq!(pick("*").as_deref(), None);
    }
}
