//! A campaign's templates in every language it has: the templates directory's own files are
//! the default language's set (`campaign.language`), and each subfolder named by a language tag
//! (`es/`, `es-MX/`) holding a template is that language's set, with the same file names. Every
//! set is loaded and checked when the campaign loads (a set lacking a file an enabled channel
//! needs is an error naming it); a set without a partial of its own renders with the default
//! set's. A contact's language picks its set through the tag's fallbacks (`es-MX` → `es`), then
//! the default set.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::Campaign;
use crate::language::Language;
use crate::model::Channel;
use crate::reads::Reads;
use crate::templates::{ColumnUse, TemplateError, Templates};

/// Every language's templates, ready to render.
pub struct TemplateSets {
    default_language: Language,
    default: Templates,
    /// Each language folder's set, by its tag.
    sets: BTreeMap<Language, Templates>,
    /// SHA-256 over every set: the default set's own fingerprint when there is no other (so a
    /// campaign without language folders keeps the fingerprint it had).
    pub fingerprint: String,
    /// Each file of every set (`subject.hbs`, `es/subject.hbs`) and the SHA-256 of its text.
    pub files: BTreeMap<String, String>,
    /// Every `contact.*` any set names, its template path relative to the templates directory.
    pub column_uses: Vec<ColumnUse>,
    /// What each channel's templates read, in any set.
    email_reads: Reads,
    sms_reads: Reads,
}

impl TemplateSets {
    /// Loads the default set from `dir` and every language folder in it.
    pub fn load(
        dir: &Path,
        channels: &[Channel],
        default_language: &Language,
    ) -> Result<Self, TemplateError> {
        let default = Templates::load(dir, channels)?;
        let mut sets = BTreeMap::new();
        let mut files = default.files.clone();
        let mut column_uses = default.column_uses.clone();
        let mut folders: BTreeMap<Language, String> = BTreeMap::new();
        for (folder, language) in language_folders(dir)? {
            if let Some(other) = folders.insert(language.clone(), folder.clone()) {
                return Err(TemplateError::Invalid {
                    path: dir.join(&folder),
                    message: format!("{other}/ is the same language ({language})"),
                });
            }
            let set = Templates::load_set(&dir.join(&folder), channels, default.partials())?;
            files.extend((set.files.iter()).map(|(f, sha)| (format!("{folder}/{f}"), sha.clone())));
            column_uses.extend(set.column_uses.iter().map(|u| ColumnUse {
                template: format!("{folder}/{}", u.template),
                ..u.clone()
            }));
            sets.insert(language, set);
        }
        let fingerprint = if sets.is_empty() {
            default.fingerprint.clone()
        } else {
            let mut h = Sha256::new();
            h.update(format!("{default_language}\0{}\0", default.fingerprint));
            for (language, set) in &sets {
                h.update(format!("{language}\0{}\0", set.fingerprint));
            }
            data_encoding::HEXLOWER.encode(&h.finalize())
        };
        Ok(TemplateSets {
            default_language: default_language.clone(),
            default,
            sets,
            fingerprint,
            files,
            column_uses,
            email_reads: Reads::Everything,
            sms_reads: Reads::Everything,
        })
    }

    /// Folds the campaign's constants into every set ([`Templates::fold_constants`]).
    pub fn fold_constants(&mut self, campaign: &Campaign) {
        self.default.fold_constants(campaign);
        for set in self.sets.values_mut() {
            set.fold_constants(campaign);
        }
        let union = |channel| {
            (self.sets.values()).fold(self.default.reads(channel).clone(), |r, set| {
                r.union(set.reads(channel).clone())
            })
        };
        self.email_reads = union(Channel::Email);
        self.sms_reads = union(Channel::Sms);
    }

    /// What `channel`'s templates can read of a message's data, in any set.
    pub fn reads(&self, channel: Channel) -> &Reads {
        match channel {
            Channel::Email => &self.email_reads,
            Channel::Sms => &self.sms_reads,
        }
    }

    /// The templates directory.
    pub fn dir(&self) -> &Path {
        self.default.dir()
    }

    /// The set a contact of `language` gets, and the language it is written in: the first of
    /// the tag's fallbacks that has a folder, else the default set.
    pub fn pick(&self, language: Option<&Language>) -> (&Language, &Templates) {
        language
            .into_iter()
            .flat_map(Language::fallbacks)
            .find_map(|tag| self.sets.get_key_value(tag))
            .unwrap_or((&self.default_language, &self.default))
    }

    /// Every set with its language: the default first.
    pub fn sets(&self) -> impl Iterator<Item = (&Language, &Templates)> {
        std::iter::once((&self.default_language, &self.default)).chain(self.sets.iter())
    }

    /// Every language there is a set for: the default first.
    pub fn languages(&self) -> impl Iterator<Item = &Language> {
        std::iter::once(&self.default_language).chain(self.sets.keys())
    }
}

/// The languages a templates directory has sets for, the default first, without loading them
/// (`listen` answers in one of them). A directory that cannot be read has the default only.
pub fn languages_in(dir: &Path, default_language: &Language) -> Vec<Language> {
    let mut out = vec![default_language.clone()];
    for (_, language) in language_folders(dir).unwrap_or_default() {
        if !out.contains(&language) {
            out.push(language);
        }
    }
    out
}

/// The subfolders of `dir` that are language sets: named by a language tag (any case, `_` or
/// `-`) and holding a template (`*.hbs`, directly or in `partials/`). Others (`partials/`,
/// `images/`) are not sets.
fn language_folders(dir: &Path) -> Result<Vec<(String, Language)>, TemplateError> {
    let read_error = |source| TemplateError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let has_template = |d: &Path| {
        std::fs::read_dir(d).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.path().extension().is_some_and(|x| x == "hbs")
                    || (e.file_name() == "partials" && e.path().is_dir())
            })
        })
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name == "partials" || !path.is_dir() {
            continue;
        }
        if let Ok(language) = Language::parse(name)
            && has_template(&path)
        {
            out.push((name.to_string(), language));
        }
    }
    out.sort();
    Ok(out)
}
