//! `contacts.where`: which rows of the contacts file a campaign is for, as an expression over
//! their columns, for example `last_visit < today - 180d and age >= 18 and deceased != "yes"`.
//!
//! A small recursive-descent parser rather than an expression crate: the language is a handful
//! of comparisons joined by `and`, `or` and `not`, its values are typed by what they are compared
//! with (a date, a number, text), and every error must name the character where it is, which
//! the general-purpose crates (evalexpr, rhai) report in their own terms or not at all.
//!
//! - **Values:** a column (`age`, or `` `Last Visit` `` for a header with spaces), text in
//!   double quotes, a number (`18`, `2.5`), a date (`2026-01-31`), or `today` with an optional
//!   `+`/`-` and a number of days or weeks (`today - 180d`, `today + 2w`): the clinic's today.
//! - **Comparisons:** `=` (or `==`), `!=` (or `<>`), `<`, `<=`, `>`, `>=`. Against a date (or
//!   `today`) the column's cells are read as dates, against a number as numbers, otherwise as
//!   text without regard to case. An empty cell matches no date or number comparison; a cell
//!   that cannot be read as one is that row's error.
//! - **Dates** in cells: ISO 8601 (`2026-01-31`, with or without a time), or the US or European
//!   export forms (`01/31/2026`, `31.01.2026`) when the column is declared in
//!   `contacts.date_formats` (`"us"`: month first, `"eu"`: day first), since `03/04/2026` reads
//!   both ways.
//! - `and` binds tighter than `or`; `not` negates what follows; parentheses group. Keywords are
//!   read in any case.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;

/// A parsed `contacts.where`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    text: String,
    expr: Expr,
}

/// How a column's dates are written, beside ISO 8601 (always read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateForm {
    Iso,
    /// Month first: `01/31/2026`.
    Us,
    /// Day first: `31/01/2026`, `31.01.2026`.
    Eu,
}

impl std::str::FromStr for DateForm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "iso" => Ok(DateForm::Iso),
            "us" => Ok(DateForm::Us),
            "eu" => Ok(DateForm::Eu),
            other => Err(format!(
                "{other:?} is not a date form: use \"iso\", \"us\" (month first) or \"eu\" (day first)"
            )),
        }
    }
}

/// Where an expression cannot be read: the character (1-based) and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {at}: {message}")]
pub struct ParseError {
    pub at: usize,
    pub message: String,
}

/// A cell the filter cannot read as the comparison needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not {want}")]
pub struct ValueError {
    pub column: String,
    pub value: String,
    pub want: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Value, Op, Value),
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Column(String),
    Text(String),
    Number(f64),
    Date(NaiveDate),
    /// The clinic's today, plus this many days.
    Today(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Op::Eq => o == Ordering::Equal,
            Op::Ne => o != Ordering::Equal,
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Gt => o == Ordering::Greater,
            Op::Ge => o != Ordering::Less,
        }
    }
}

impl Filter {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        let tokens = lex(text)?;
        let mut p = Parser {
            tokens: &tokens,
            i: 0,
            end: text.chars().count() + 1,
        };
        let expr = p.or()?;
        if let Some(t) = p.tokens.get(p.i) {
            return Err(p.error_at(t.at, "expected `and`, `or` or the end"));
        }
        Ok(Filter {
            text: text.to_string(),
            expr,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The columns it reads, each once, in the order written.
    pub fn columns(&self) -> Vec<&str> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
            match e {
                Expr::Or(a, b) | Expr::And(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Not(a) => walk(a, out),
                Expr::Compare(l, _, r) => {
                    for v in [l, r] {
                        if let Value::Column(c) = v
                            && !out.contains(&c.as_str())
                        {
                            out.push(c);
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out
    }

    /// Whether a row is in the audience: `cell` gives a column's value (the filter's columns
    /// are known to exist), `today` is the clinic's date, `forms` the declared date forms.
    pub fn matches<'r>(
        &self,
        cell: &impl Fn(&str) -> &'r str,
        today: NaiveDate,
        forms: &BTreeMap<String, DateForm>,
    ) -> Result<bool, ValueError> {
        let row = Row { cell, today, forms };
        row.eval(&self.expr)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One row, as the filter reads it.
struct Row<'f, F> {
    cell: &'f F,
    today: NaiveDate,
    forms: &'f BTreeMap<String, DateForm>,
}

/// A value read for a date or number comparison.
#[derive(PartialEq, PartialOrd)]
enum Read {
    Number(f64),
    Date(NaiveDate),
}

/// Compares two texts without regard to case, making no string of either.
fn caseless(a: &str, b: &str) -> Ordering {
    let a = a.chars().flat_map(char::to_lowercase);
    a.cmp(b.chars().flat_map(char::to_lowercase))
}

impl<'r, F: Fn(&str) -> &'r str> Row<'_, F> {
    fn eval(&self, e: &Expr) -> Result<bool, ValueError> {
        Ok(match e {
            Expr::Or(a, b) => self.eval(a)? || self.eval(b)?,
            Expr::And(a, b) => self.eval(a)? && self.eval(b)?,
            Expr::Not(a) => !self.eval(a)?,
            Expr::Compare(l, op, r) => match Kind::of(l, r) {
                Kind::Text => op.holds(caseless(self.text(l), self.text(r))),
                kind => match (self.read(l, kind)?, self.read(r, kind)?) {
                    (Some(a), Some(b)) => a.partial_cmp(&b).is_some_and(|o| op.holds(o)),
                    // An empty cell: no date or number to compare.
                    _ => false,
                },
            },
        })
    }

    /// A value as text: a cell as written (trimmed), or the text given.
    fn text<'v>(&self, v: &'v Value) -> &'v str
    where
        'r: 'v,
    {
        match v {
            Value::Column(c) => (self.cell)(c).trim(),
            Value::Text(t) => t,
            _ => "",
        }
    }

    fn read(&self, v: &Value, kind: Kind) -> Result<Option<Read>, ValueError> {
        Ok(Some(match v {
            Value::Text(_) => return Ok(None),
            Value::Number(n) => Read::Number(*n),
            Value::Date(d) => Read::Date(*d),
            Value::Today(days) => Read::Date(self.today + chrono::Duration::days(*days)),
            Value::Column(c) => {
                let raw = (self.cell)(c).trim();
                let wrong = |want: &str| ValueError {
                    column: c.clone(),
                    value: raw.to_string(),
                    want: want.to_string(),
                };
                match kind {
                    Kind::Text => return Ok(None),
                    _ if raw.is_empty() => return Ok(None),
                    Kind::Number => Read::Number(
                        raw.parse::<f64>()
                            .ok()
                            .filter(|n| n.is_finite())
                            .ok_or_else(|| wrong("a number"))?,
                    ),
                    Kind::Date => {
                        let form = self.forms.get(c).copied().unwrap_or(DateForm::Iso);
                        Read::Date(parse_date(raw, form).ok_or_else(|| wrong(form.wanted()))?)
                    }
                }
            }
        }))
    }
}

/// What a comparison compares as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Date,
}

impl Kind {
    fn of(l: &Value, r: &Value) -> Kind {
        let is = |v: &Value, k| match v {
            Value::Date(_) | Value::Today(_) => k == Kind::Date,
            Value::Number(_) => k == Kind::Number,
            _ => false,
        };
        if is(l, Kind::Date) || is(r, Kind::Date) {
            Kind::Date
        } else if is(l, Kind::Number) || is(r, Kind::Number) {
            Kind::Number
        } else {
            Kind::Text
        }
    }
}

impl DateForm {
    fn wanted(self) -> &'static str {
        match self {
            DateForm::Iso => {
                "a date as YYYY-MM-DD (declare another form in contacts.date_formats: \"us\" or \"eu\")"
            }
            DateForm::Us => "a date as MM/DD/YYYY or YYYY-MM-DD",
            DateForm::Eu => "a date as DD/MM/YYYY or YYYY-MM-DD",
        }
    }
}

/// A cell's date: ISO 8601 (a time after it is ignored) always, else the declared form.
fn parse_date(raw: &str, form: DateForm) -> Option<NaiveDate> {
    let iso = raw
        .get(..10)
        .filter(|_| raw.len() == 10 || raw[10..].starts_with(['T', 't', ' ']));
    if let Some(d) = iso.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) {
        return Some(d);
    }
    let parts: Vec<&str> = raw.split(['/', '.', '-']).collect();
    let [a, b, y] = parts[..] else {
        return None;
    };
    let number = |s: &str, len: std::ops::RangeInclusive<usize>| {
        (len.contains(&s.len()) && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (a, b, y) = (number(a, 1..=2)?, number(b, 1..=2)?, number(y, 4..=4)?);
    let (month, day) = match form {
        DateForm::Iso => return None,
        DateForm::Us => (a, b),
        DateForm::Eu => (b, a),
    };
    NaiveDate::from_ymd_opt(y as i32, month, day)
}

/// A token and the character (1-based) it starts at.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    at: usize,
    kind: Tok,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Column(String),
    Number(f64),
    /// A number followed by `d` or `w`: days.
    Days(i64),
    Date(NaiveDate),
    Op(Op),
    Plus,
    Minus,
    Open,
    Close,
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, message: &str| ParseError {
        at: at + 1,
        message: message.to_string(),
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::Open,
            ')' => Tok::Close,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '"' | '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&d| d == c)
                    .ok_or_else(|| err(start, &format!("this {c} is never closed")))?;
                let inner: String = chars[i + 1..i + 1 + end].iter().collect();
                i += end + 1;
                if c == '"' {
                    Tok::Quoted(inner)
                } else {
                    Tok::Column(inner)
                }
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('=', _) => (Op::Eq, 1),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('>', _) => (Op::Gt, 1),
                    _ => return Err(err(start, "expected != after !")),
                };
                i += len - 1;
                Tok::Op(op)
            }
            c if c.is_ascii_digit() => {
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '.') {
                    j += 1;
                }
                // A date is digits and dashes: 2026-01-31.
                if j == i + 4 && chars.get(j) == Some(&'-') {
                    j = i;
                    while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '-') {
                        j += 1;
                    }
                }
                let word: String = chars[i..j].iter().collect();
                i = j - 1;
                number_token(&word).ok_or_else(|| {
                    err(
                        start,
                        &format!("{word:?} is not a number, a date (2026-01-31) or days (180d)"),
                    )
                })?
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                i = j - 1;
                Tok::Word(word)
            }
            other => return Err(err(start, &format!("{other:?} has no meaning here"))),
        };
        out.push(Token {
            at: start + 1,
            kind,
        });
        i += 1;
    }
    Ok(out)
}

fn number_token(word: &str) -> Option<Tok> {
    if let Ok(d) = NaiveDate::parse_from_str(word, "%Y-%m-%d") {
        return Some(Tok::Date(d));
    }
    for (unit, days) in [('d', 1), ('w', 7)] {
        if let Some(n) = word.strip_suffix(unit) {
            return n.parse::<i64>().ok().map(|n| Tok::Days(n * days));
        }
    }
    word.parse::<f64>().ok().map(Tok::Number)
}

struct Parser<'t> {
    tokens: &'t [Token],
    i: usize,
    /// The character after the text, for "expected … at the end".
    end: usize,
}

impl Parser<'_> {
    fn error_at(&self, at: usize, message: &str) -> ParseError {
        ParseError {
            at,
            message: message.to_string(),
        }
    }

    fn here(&self) -> usize {
        self.tokens.get(self.i).map_or(self.end, |t| t.at)
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.tokens.get(self.i) {
            Some(Token {
                kind: Tok::Word(w), ..
            }) if w.eq_ignore_ascii_case(word) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.and()?;
        while self.keyword("or") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.unary()?;
        while self.keyword("and") {
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if matches!(self.tokens.get(self.i), Some(t) if t.kind == Tok::Open) {
            self.i += 1;
            let e = self.or()?;
            match self.tokens.get(self.i) {
                Some(t) if t.kind == Tok::Close => self.i += 1,
                _ => return Err(self.error_at(self.here(), "expected )")),
            }
            return Ok(e);
        }
        let left = self.value()?;
        let op = match self.tokens.get(self.i) {
            Some(Token {
                kind: Tok::Op(op), ..
            }) => *op,
            _ => {
                return Err(
                    self.error_at(self.here(), "expected a comparison (=, !=, <, <=, >, >=)")
                );
            }
        };
        self.i += 1;
        let at = self.here();
        let right = self.value()?;
        let literal = |v: &Value| match v {
            Value::Date(_) | Value::Today(_) => Some("a date"),
            Value::Number(_) => Some("a number"),
            Value::Text(_) => Some("text"),
            Value::Column(_) => None,
        };
        if let (Some(a), Some(b)) = (literal(&left), literal(&right))
            && a != b
        {
            return Err(self.error_at(at, &format!("{a} cannot be compared with {b}")));
        }
        Ok(Expr::Compare(left, op, right))
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        let at = self.here();
        let Some(t) = self.tokens.get(self.i) else {
            return Err(self.error_at(at, "expected a value at the end"));
        };
        self.i += 1;
        Ok(match &t.kind {
            Tok::Quoted(s) => Value::Text(s.clone()),
            Tok::Column(c) => Value::Column(c.clone()),
            Tok::Number(n) => Value::Number(*n),
            Tok::Date(d) => Value::Date(*d),
            Tok::Word(w) if w.eq_ignore_ascii_case("today") => Value::Today(self.offset()?),
            Tok::Word(w)
                if ["and", "or", "not"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                return Err(self.error_at(at, &format!("expected a value, not `{w}`")));
            }
            Tok::Word(w) => Value::Column(w.clone()),
            Tok::Days(_) => {
                return Err(self.error_at(at, "days count only after today: `today - 180d`"));
            }
            _ => return Err(self.error_at(at, "expected a value")),
        })
    }

    /// `+ 2w` or `- 180d` after `today`: the days.
    fn offset(&mut self) -> Result<i64, ParseError> {
        let sign = match self.tokens.get(self.i).map(|t| &t.kind) {
            Some(Tok::Plus) => 1,
            Some(Tok::Minus) => -1,
            _ => return Ok(0),
        };
        self.i += 1;
        match self.tokens.get(self.i) {
            Some(Token {
                kind: Tok::Days(n), ..
            }) => {
                self.i += 1;
                Ok(sign * n)
            }
            _ => Err(self.error_at(self.here(), "expected days (180d) or weeks (26w)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Whether the row `cells` (column → value) is in `filter`'s audience on 2026-12-06.
    fn check(
        filter: &str,
        cells: &[(&str, &str)],
        forms: &[(&str, DateForm)],
    ) -> Result<bool, ValueError> {
        let f = Filter::parse(filter).unwrap();
        let forms: BTreeMap<String, DateForm> =
            forms.iter().map(|(c, f)| (c.to_string(), *f)).collect();
        let cell = |c: &str| cells.iter().find(|(k, _)| *k == c).map_or("", |(_, v)| *v);
        f.matches(&cell, day("2026-12-06"), &forms)
    }

    #[test]
    fn the_issue_s_example_reads_dates_numbers_and_text() {
        let f = "last_visit < today - 180d and age >= 18 and deceased != \"yes\"";
        let row = |visit, age, deceased| {
            check(
                f,
                &[("last_visit", visit), ("age", age), ("deceased", deceased)],
                &[],
            )
        };
        // 180 days before 2026-12-06 is 2026-06-09.
        assert_eq!(
            row("2026-06-09", "40", ""),
            Ok(false),
            "180 days ago is not before"
        );
        assert_eq!(row("2026-06-08", "40", ""), Ok(true));
        assert_eq!(row("2026-06-07", "17", "no"), Ok(false));
        assert_eq!(
            row("2026-06-07", "18", "YES"),
            Ok(false),
            "text ignores case"
        );
        assert_eq!(row("2025-01-01T09:30:00", "18.0", "No"), Ok(true));
        assert_eq!(
            row("", "40", ""),
            Ok(false),
            "an empty date matches nothing"
        );
        assert_eq!(
            row("06/07/2026", "40", ""),
            Err(ValueError {
                column: "last_visit".into(),
                value: "06/07/2026".into(),
                want: DateForm::Iso.wanted().into()
            })
        );
        assert!(row("2026-06-07", "forty", "").is_err());
        assert_eq!(
            Filter::parse(f).unwrap().columns(),
            ["last_visit", "age", "deceased"]
        );
    }

    #[test]
    fn declared_forms_read_us_and_european_dates() {
        let f = "`Last Visit` <= 2026-01-31";
        let us = [("Last Visit", DateForm::Us)];
        let eu = [("Last Visit", DateForm::Eu)];
        assert_eq!(check(f, &[("Last Visit", "01/31/2026")], &us), Ok(true));
        assert_eq!(check(f, &[("Last Visit", "31.01.2026")], &eu), Ok(true));
        assert_eq!(check(f, &[("Last Visit", "02/01/2026")], &us), Ok(false));
        assert_eq!(check(f, &[("Last Visit", "02/01/2026")], &eu), Ok(true));
        assert!(check(f, &[("Last Visit", "31/01/2026")], &us).is_err());
        assert!(
            check(f, &[("Last Visit", "1/31/26")], &us).is_err(),
            "four-digit years"
        );
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_negates() {
        let f = "a = 1 or b = 1 and c = 1";
        assert_eq!(check(f, &[("a", "1")], &[]), Ok(true));
        assert_eq!(check(f, &[("b", "1")], &[]), Ok(false));
        let f = "not (a = 1 or b = 1)";
        assert_eq!(check(f, &[("c", "1")], &[]), Ok(true));
        assert_eq!(check(f, &[("b", "1")], &[]), Ok(false));
        assert_eq!(
            check("AGE > 1 AND Age < 3", &[("AGE", "2"), ("Age", "2")], &[]),
            Ok(true)
        );
        assert_eq!(
            check("until >= today + 2w", &[("until", "2026-12-20")], &[]),
            Ok(true)
        );
    }

    #[test]
    fn errors_name_the_character() {
        let e = |s: &str| Filter::parse(s).unwrap_err().to_string();
        assert_eq!(e("age >== 18"), "at character 7: expected a value");
        assert_eq!(
            e("age 18"),
            "at character 5: expected a comparison (=, !=, <, <=, >, >=)"
        );
        assert_eq!(
            e("age >= 18 and"),
            "at character 14: expected a value at the end"
        );
        assert_eq!(e("name = \"Ann"), "at character 8: this \" is never closed");
        assert_eq!(e("(age > 1"), "at character 9: expected )");
        assert_eq!(
            e("seen < today - 6m"),
            "at character 16: \"6m\" is not a number, a date (2026-01-31) or days (180d)"
        );
        assert_eq!(
            e("age > 1 age"),
            "at character 9: expected `and`, `or` or the end"
        );
        assert_eq!(
            e("age > 180d"),
            "at character 7: days count only after today: `today - 180d`"
        );
        assert_eq!(
            e("a = 1 and or"),
            "at character 11: expected a value, not `or`"
        );
        assert_eq!(e("a ~ 1"), "at character 3: '~' has no meaning here");
        assert_eq!(
            e("today > 5"),
            "at character 9: a date cannot be compared with a number"
        );
    }
}
