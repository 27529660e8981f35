//! A request's parameters as the provider sent them: name/value pairs in their order, repeats
//! kept, percent-decoded. Signatures are computed over these exact strings, so nothing here
//! trims, merges or re-encodes; the typed receipts are read from them afterwards.

use serde_json::Value;

use super::error::ParseError;

/// Name/value pairs from a form body, a query string or a flat JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Pairs given directly (tests, or a framework's already-decoded form).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Params(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// An `application/x-www-form-urlencoded` body or a query string (without its `?`):
    /// `+` is a space, `%XX` a byte, invalid UTF-8 replaced (a signature over it then fails).
    pub fn from_form(bytes: &[u8]) -> Self {
        Params(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A JSON object whose values are strings, numbers or booleans (Vonage's JSON webhooks):
    /// numbers and booleans as their JSON text, `null` left out. Nested values are refused:
    /// no provider signs them as parameters.
    pub fn from_json(body: &[u8]) -> Result<Self, ParseError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(ParseError::Json("not an object".into()));
        };
        let mut pairs = Vec::with_capacity(map.len());
        for (name, value) in map {
            let text = match value {
                Value::Null => continue,
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(ParseError::invalid(
                        &name,
                        "a nested value, not a parameter",
                    ));
                }
            };
            pairs.push((name, text));
        }
        Ok(Params(pairs))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or an error naming it when absent or empty.
    pub fn require(&self, name: &str) -> Result<&str, ParseError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ParseError::missing(name))
    }

    /// Every pair, in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent_and_keep_repeats_in_order() {
        let p = Params::from_form(b"Body=Stop+it%21&To=%2B13125550100&Digits=2&Digits=1");
        assert_eq!(p.get("Body"), Some("Stop it!"));
        assert_eq!(p.get("To"), Some("+13125550100"));
        let digits: Vec<_> = p.iter().filter(|(k, _)| *k == "Digits").collect();
        assert_eq!(digits, [("Digits", "2"), ("Digits", "1")]);
    }

    #[test]
    fn json_scalars_become_text_and_nesting_is_refused() {
        let p = Params::from_json(br#"{"a":"x","n":12,"b":true,"z":null}"#).unwrap();
        assert_eq!(p.get("n"), Some("12"));
        assert_eq!(p.get("b"), Some("true"));
        assert_eq!(p.get("z"), None);
        assert!(matches!(
            Params::from_json(br#"{"a":{"b":1}}"#),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            Params::from_json(b"[1]"),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn require_treats_empty_as_missing() {
        let p = Params::from_pairs([("a", "")]);
        assert_eq!(p.require("a"), Err(ParseError::missing("a")));
    }
}
