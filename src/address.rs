//! Patients' addresses, validated once at the edge into types that cannot be wrong: an
//! [`EmailAddress`] (kept as written, matched lowercased) and an [`E164Phone`] (normalised to
//! E.164 with the clinic's default region). Past the contacts file, code holds these, never a
//! string to check again. Bottom layer: it imports nothing of the crate but the NANP region table.

use std::fmt;

/// Why a written address is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} is not a valid email address (it contains spaces or line breaks)")]
    EmailSpaces(String),
    #[error("{0:?} is not a valid email address")]
    Email(String),
    #[error("{value:?} is not a valid email address (domain {domain:?})")]
    EmailDomain { value: String, domain: String },
    #[error("{0:?} is not a phone number")]
    NotAPhone(String),
    #[error("{value:?} is not a valid phone number for region {region}")]
    Phone { value: String, region: String },
}

/// A validated email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    /// As the clinic wrote it (shown to people and put in `To:`).
    written: lettre::Address,
    /// Lowercased: the key for matching, suppression and the ledger.
    normalised: String,
}

impl EmailAddress {
    /// Validates an email address (surrounding spaces trimmed); it keeps the address as written.
    pub fn parse(value: &str) -> Result<Self, AddressError> {
        let v = value.trim();
        if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddressError::EmailSpaces(v.to_string()));
        }
        let address: lettre::Address = v.parse().map_err(|_| AddressError::Email(v.to_string()))?;
        let domain = address.domain();
        if !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(AddressError::EmailDomain {
                value: v.to_string(),
                domain: domain.to_string(),
            });
        }
        Ok(EmailAddress {
            normalised: v.to_lowercase(),
            written: address,
        })
    }

    /// As written: what people see and what goes in `To:`.
    pub fn written(&self) -> &str {
        self.written.as_ref()
    }

    /// Lowercased: the key for matching, suppression and the ledger.
    pub fn normalised(&self) -> &str {
        &self.normalised
    }

    /// The address for lettre (as written).
    pub fn lettre(&self) -> &lettre::Address {
        &self.written
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.written())
    }
}

/// A phone number in E.164 form (`+13125550142`): the key for matching, suppression, the
/// ledger, and what a gateway is given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct E164Phone(String);

impl E164Phone {
    /// Normalises a written phone number with `region` as the default country.
    pub fn parse(value: &str, region: phonenumber::country::Id) -> Result<Self, AddressError> {
        nanp_fast(value.trim(), region)
            .map_or_else(|| normalise_phone_general(value, region), Ok)
            .map(E164Phone)
    }

    /// The number, `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for E164Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The common North American forms (`(312) 555-0142`, `312.555.0142`, `1 312 555 0142`,
/// `+1 312-555-0142`) read without phonenumber's general parser, which takes most of the time
/// of loading a large list: digits and the usual separators only, ten digits after the country
/// code or national prefix, valid by the same metadata. `None` (anything else, or not valid)
/// leaves the value to the general parser, which also words the error.
fn nanp_fast(v: &str, region: phonenumber::country::Id) -> Option<String> {
    let (plus, rest) = match v.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let mut digits = [0u8; 11];
    let mut n = 0;
    for b in rest.bytes() {
        match b {
            b'0'..=b'9' if n < digits.len() => {
                digits[n] = b;
                n += 1;
            }
            b' ' | b'-' | b'.' | b'(' | b')' => {}
            _ => return None,
        }
    }
    let national = match (plus, n, digits[0]) {
        (true, 11, b'1') => &digits[1..],
        (false, 10, _) if phone_valid::in_nanp(region) => &digits[..10],
        (false, 11, b'1') if phone_valid::in_nanp(region) => &digits[1..],
        _ => return None,
    };
    let national = std::str::from_utf8(national).expect("ASCII digits");
    phone_valid::is_valid_national(1, national).then(|| format!("+1{national}"))
}

/// [`E164Phone::parse`] by phonenumber's parser, for any form of any country.
fn normalise_phone_general(
    value: &str,
    region: phonenumber::country::Id,
) -> Result<String, AddressError> {
    let v = value.trim();
    let number =
        phonenumber::parse(Some(region), v).map_err(|_| AddressError::NotAPhone(v.to_string()))?;
    if !phone_valid::is_valid(&number) {
        return Err(AddressError::Phone {
            value: v.to_string(),
            region: region.as_ref().to_string(),
        });
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::country::Id;

    fn normalise_phone(value: &str, region: Id) -> Result<String, AddressError> {
        E164Phone::parse(value, region).map(|p| p.0)
    }

    #[test]
    fn phones_in_every_written_form() {
        for written in [
            "(312) 555-0199",
            "312.555.0199",
            "+1 312 555 0199",
            "312-555-0199",
            "3125550199",
            "1-312-555-0199",
        ] {
            assert_eq!(
                normalise_phone(written, Id::US).as_deref(),
                Ok("+13125550199"),
                "{written}"
            );
        }
        assert!(normalise_phone("555-010-1234", Id::US).is_err());
        assert!(normalise_phone("(312) 555-01", Id::US).is_err());
        assert!(normalise_phone("call me", Id::US).is_err());
        assert_eq!(
            normalise_phone("020 7946 0958", Id::GB).as_deref(),
            Ok("+442079460958")
        );
    }

    /// The North American shortcut gives what phonenumber's parser gives, number and error,
    /// for random numbers (valid and not) written every usual way, in and out of North America.
    #[test]
    fn the_north_american_shortcut_agrees_with_the_general_parser() {
        let mut rng = fastrand::Rng::with_seed(2026);
        let prefixes = [
            "", "", "1", "1 ", "1-", "+1", "+1 ", "+1-", "+", "+44 ", "+12", "0",
        ];
        let separators = ["", " ", "-", ".", ") ", "  ", "/"];
        let regions = [Id::US, Id::CA, Id::PR, Id::GB, Id::FR];
        let (mut fast, mut valid) = (0, 0);
        for i in 0..30_000 {
            // Mostly real area codes and exchanges (first digit 2-9), some not.
            let mut d: Vec<char> = (0..10).map(|_| rng.char('0'..='9')).collect();
            if i % 4 != 0 {
                d[0] = rng.char('2'..='9');
                d[3] = rng.char('2'..='9');
            }
            if i % 7 == 0 {
                d.truncate(rng.usize(7..10));
            }
            let digits: String = d.iter().collect();
            let sep = separators[rng.usize(..separators.len())];
            let grouped = if digits.len() == 10 && i % 3 != 0 {
                let open = if sep == ") " { "(" } else { "" };
                format!(
                    "{open}{}{sep}{}{}{}",
                    &digits[..3],
                    &digits[3..6],
                    sep.trim_start_matches(')'),
                    &digits[6..]
                )
            } else {
                digits.clone()
            };
            let written = format!("{}{grouped}", prefixes[rng.usize(..prefixes.len())]);
            let region = regions[i % regions.len()];
            let general = normalise_phone_general(&written, region);
            let got = normalise_phone(&written, region);
            match (&general, &got) {
                // phonenumber 0.3.10 reads every digit up to the first separator as the country
                // code (`+1312-555-0199`: no such country); libphonenumber, and the shortcut,
                // read the 1.
                (Err(_), Ok(_)) => {
                    let rest = written
                        .strip_prefix("+1")
                        .unwrap_or_else(|| panic!("{written:?} in {region:?}"));
                    assert!(
                        rest.starts_with(|c: char| c.is_ascii_digit()),
                        "{written:?}"
                    );
                    let spaced = normalise_phone_general(&format!("+1 {rest}"), region);
                    assert_eq!(got, spaced, "{written:?} in {region:?}");
                }
                _ => assert_eq!(got, general, "{written:?} in {region:?}"),
            }
            fast += usize::from(nanp_fast(written.trim(), region).is_some());
            valid += usize::from(general.is_ok());
        }
        assert!(
            fast > 5_000 && valid > fast,
            "{fast} by the shortcut, {valid} valid"
        );
    }

    #[test]
    fn emails() {
        let e = EmailAddress::parse(" Jane.Doe@Example.COM ").unwrap();
        assert_eq!(e.written(), "Jane.Doe@Example.COM");
        assert_eq!(e.normalised(), "jane.doe@example.com");
        for bad in [
            "frank@@example.com",
            "frank.example.com",
            "a b@example.com",
            "x@localhost",
            "x@example..com",
            "x@",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }
}

/// `PhoneNumber::is_valid`, without its global regex cache: phonenumber keeps every compiled
/// pattern in one LRU behind one mutex, which serialises the parallel contact parsing (it was
/// most of the load time). The same patterns, from the same metadata, are compiled once per
/// thread here (its LRU holds 100 patterns, fewer than one country code's regions use, so it
/// also recompiles constantly) and applied with exactly the crate's logic (`validator::is_valid_with`); a test
/// compares the two on thousands of numbers.
mod phone_valid {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use phonenumber::PhoneNumber;
    use phonenumber::metadata::{DATABASE, Descriptor, Metadata};

    thread_local! {
        /// Keyed by the address of the pattern's text, which lives as long as the database: no
        /// hashing of long pattern strings per lookup.
        static COMPILED: RefCell<HashMap<usize, regex::Regex>> = RefCell::new(HashMap::new());
    }

    /// Each pattern compiled once for the process; a thread takes a clone, which shares the
    /// compiled program but has a search cache of its own (no lock per search).
    static SHARED: std::sync::Mutex<Option<HashMap<usize, regex::Regex>>> =
        std::sync::Mutex::new(None);

    /// The crate's `find(value).start() == 0`, with a per-thread compiled pattern. The pattern is
    /// compiled anchored at the start: a leftmost match starts at 0 exactly when some match
    /// does, and the anchored search stops at the first byte that cannot match, where the
    /// crate's search goes on through every later start.
    fn starts_with_match(pattern: &str, value: &str) -> bool {
        COMPILED.with(|c| {
            let mut c = c.borrow_mut();
            c.entry(pattern.as_ptr() as usize)
                .or_insert_with(|| {
                    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
                    shared
                        .get_or_insert_with(HashMap::new)
                        .entry(pattern.as_ptr() as usize)
                        .or_insert_with(|| {
                            // As phonenumber builds them (`ignore_whitespace`).
                            regex::RegexBuilder::new(&format!("^(?:{pattern})"))
                                .ignore_whitespace(true)
                                .build()
                                .expect("phonenumber's patterns compile")
                        })
                        .clone()
                })
                .is_match(value)
        })
    }

    /// A descriptor of the metadata: the pattern of a national number of one type, and the
    /// lengths it may have (none listed: any).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Desc<'a> {
        pattern: &'a str,
        lengths: &'a [u16],
    }

    /// One region's metadata, as much as validation reads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Region<'a> {
        id: &'a str,
        leading_digits: Option<&'a str>,
        general: Desc<'a>,
        /// Premium rate, toll free, shared cost, VoIP, personal number, pager, UAN, voicemail,
        /// fixed line, mobile: the order in which the crate tries them.
        types: [Option<Desc<'a>>; 10],
    }

    impl<'a> Region<'a> {
        fn of(meta: &'a Metadata) -> Self {
            let desc = |d: &'a Descriptor| Desc {
                pattern: d.national_number().as_str(),
                lengths: d.possible_length(),
            };
            let d = meta.descriptors();
            Region {
                id: meta.id(),
                leading_digits: meta.leading_digits().map(|p| p.as_str()),
                general: desc(d.general()),
                types: [
                    d.premium_rate(),
                    d.toll_free(),
                    d.shared_cost(),
                    d.voip(),
                    d.personal_number(),
                    d.pager(),
                    d.uan(),
                    d.voicemail(),
                    d.fixed_line(),
                    d.mobile(),
                ]
                .map(|t| t.map(desc)),
            }
        }
    }

    /// The regions of country code 1 (the North American Numbering Plan), in the crate's order,
    /// written out from its metadata (a test checks them against it): most lists are North
    /// American, and reading them this way spares every run the building of the crate's
    /// database of every country (40-55 ms, most of it checking thousands of patterns that
    /// such a list never uses).
    static NANP: &[Region<'static>] = include!("nanp_table.rs");

    /// `Descriptor::is_match`.
    fn matches(d: &Desc, value: &str) -> bool {
        if !d.lengths.is_empty() && !d.lengths.contains(&(value.len() as u16)) {
            return false;
        }
        starts_with_match(d.pattern, value)
    }

    /// `validator::number_type(meta, value) != Type::Unknown`.
    fn has_type(r: &Region, value: &str) -> bool {
        matches(&r.general, value) && r.types.iter().flatten().any(|t| matches(t, value))
    }

    /// `validator::is_valid_with(&DATABASE, number)`.
    pub fn is_valid(number: &PhoneNumber) -> bool {
        is_valid_national(number.country().code(), &number.national().to_string())
    }

    /// Whether `region` shares the North American country code, 1.
    pub fn in_nanp(region: phonenumber::country::Id) -> bool {
        let id: &str = region.as_ref();
        NANP.iter().any(|r| r.id == id)
    }

    /// [`is_valid`] of the number with country code `code` and national number `national`.
    pub fn is_valid_national(code: u16, national: &str) -> bool {
        if code == 1 {
            return valid_in(NANP.iter().copied().map(Some), national);
        }
        let Some(regions) = DATABASE.region(&code) else {
            return false;
        };
        // `validator::source_for`, for a code of one non-geographic entity.
        if regions[..] == ["001"] {
            return DATABASE
                .by_code(&code)
                .and_then(|m| m.into_iter().next())
                .is_some_and(|m| has_type(&Region::of(m), national));
        }
        valid_in(
            regions.iter().map(|r| DATABASE.by_id(*r).map(Region::of)),
            national,
        )
    }

    /// `validator::source_for` among a country code's `regions` (`None`: one the database does
    /// not have), then whether the number has a type there.
    fn valid_in<'a>(
        mut regions: impl ExactSizeIterator<Item = Option<Region<'a>>>,
        national: &str,
    ) -> bool {
        let chosen = if regions.len() == 1 {
            regions.next().flatten()
        } else {
            regions.flatten().find(|r| match r.leading_digits {
                Some(p) => starts_with_match(p, national),
                None => has_type(r, national),
            })
        };
        chosen.is_some_and(|r| has_type(&r, national))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The Rust source of [`NANP`] (`src/nanp_table.rs`), from the crate's metadata.
        fn nanp_source() -> String {
            use std::fmt::Write;
            let desc = |d: &Desc| {
                format!(
                    "Desc {{ pattern: {:?}, lengths: &{:?} }}",
                    d.pattern, d.lengths
                )
            };
            let mut out = String::from(
                "// The regions of country code 1 in phonenumber's metadata (`phone_valid::NANP` in\n\
                 // contacts.rs). Generated: `OUTREACH_WRITE_NANP=1 cargo test nanp` writes it again.\n\
                 &[\n",
            );
            for r in crate_nanp() {
                out.push_str("    Region {\n");
                writeln!(out, "        id: {:?},", r.id).unwrap();
                writeln!(out, "        leading_digits: {:?},", r.leading_digits).unwrap();
                writeln!(out, "        general: {},", desc(&r.general)).unwrap();
                out.push_str("        types: [\n");
                for t in &r.types {
                    match t {
                        Some(d) => writeln!(out, "            Some({}),", desc(d)).unwrap(),
                        None => out.push_str("            None,\n"),
                    }
                }
                out.push_str("        ],\n    },\n");
            }
            out.push_str("]\n");
            out
        }

        /// The regions of country code 1 as the crate's database has them.
        fn crate_nanp() -> Vec<Region<'static>> {
            DATABASE
                .region(&1)
                .unwrap()
                .into_iter()
                .map(|id| Region::of(DATABASE.by_id(id).unwrap()))
                .collect()
        }

        #[test]
        fn the_north_american_table_is_the_crates_metadata() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/nanp_table.rs");
            if std::env::var_os("OUTREACH_WRITE_NANP").is_some() {
                std::fs::write(path, nanp_source()).unwrap();
            }
            let regenerate = "src/nanp_table.rs is not phonenumber's metadata (a new version of \
                              the crate?): `OUTREACH_WRITE_NANP=1 cargo test nanp` writes it again";
            assert_eq!(NANP, &crate_nanp()[..], "{regenerate}");
            assert!(NANP.len() > 20 && NANP[0].id == "US", "{NANP:?}");
            assert_eq!(
                std::fs::read_to_string(path).unwrap(),
                nanp_source(),
                "{regenerate}"
            );
        }

        #[test]
        fn agrees_with_the_crate_on_thousands_of_numbers() {
            let mut rng = fastrand::Rng::with_seed(2026);
            let prefixes = [
                "+1", "+44", "+33", "+49", "+61", "+81", "+52", "+91", "+34", "+7",
            ];
            let mut valid = 0;
            for i in 0..20_000 {
                let p = prefixes[i % prefixes.len()];
                let len = rng.usize(6..=11);
                let digits: String = (0..len).map(|_| rng.char('0'..='9')).collect();
                let text = format!("{p}{digits}");
                let Ok(n) = phonenumber::parse(None, &text) else {
                    continue;
                };
                let expected = n.is_valid();
                assert_eq!(super::is_valid(&n), expected, "{text}");
                valid += usize::from(expected);
            }
            // Real NANP numbers, the fictional 555-01xx range, and its invalid neighbours.
            for text in [
                "+13125550142",
                "+13125550100",
                "+13125550199",
                "+13125551234",
                "+14165550123",
                "+18095550123",
                "+1312010123",
            ] {
                let n = phonenumber::parse(None, text).unwrap();
                assert_eq!(super::is_valid(&n), n.is_valid(), "{text}");
            }
            assert!(
                valid > 1_000,
                "the sample must hold valid numbers too: {valid}"
            );
        }
    }
}
