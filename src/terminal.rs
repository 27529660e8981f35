//! What reaches a terminal: text from a CSV, a template, a server's answer or a file name may
//! hold control characters (`ESC [31m` recolours a terminal, an OSC sequence retitles it, a lone
//! CR overwrites the line), so everything `outreach` prints goes through [`Escaped`] (or
//! [`escape`]), which shows each control character as `\u{1b}` instead of sending it. Line
//! breaks and tabs are kept: they are the layout of what is printed.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Whether `c` is shown escaped: a C0 or C1 control or DEL, but not a tab or a line feed. A CR
/// is escaped unless a line feed follows it (see [`escape`]).
fn hidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `text` with each control character but tab, line feed and the CR of a CRLF written as
/// `\u{1b}`; borrowed when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            out.push(c);
        } else if hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A writer that escapes control characters on their way to `W` (standard output or error).
/// Bytes are expected to be UTF-8, as everything `outreach` prints is; a character split
/// between two writes is held until its end arrives, and a CR until what follows it does.
pub struct Escaped<W: Write> {
    inner: W,
    held: Vec<u8>,
}

impl<W: Write> Escaped<W> {
    pub fn new(inner: W) -> Self {
        Escaped {
            inner,
            held: Vec::new(),
        }
    }

    /// Writes what is whole of `held`, keeping an unfinished character or a final CR.
    fn pass(&mut self, at_end: bool) -> io::Result<()> {
        let (text, rest) = match std::str::from_utf8(&self.held) {
            Ok(text) => (text, self.held.len()),
            Err(e) if e.error_len().is_none() && !at_end => {
                let good = e.valid_up_to();
                (
                    std::str::from_utf8(&self.held[..good]).expect("valid up to here"),
                    good,
                )
            }
            // Not UTF-8 after all: shown, never interpreted.
            Err(_) => {
                let lossy = String::from_utf8_lossy(&self.held).into_owned();
                self.held.clear();
                self.inner.write_all(escape(&lossy).as_bytes())?;
                return Ok(());
            }
        };
        let (text, rest) = if !at_end && text.ends_with('\r') {
            (&text[..text.len() - 1], rest - 1)
        } else {
            (text, rest)
        };
        self.inner.write_all(escape(text).as_bytes())?;
        self.held.drain(..rest);
        Ok(())
    }
}

impl<W: Write> Write for Escaped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        self.pass(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.pass(true)?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for Escaped<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Standard output, escaped.
pub fn stdout() -> Escaped<io::StdoutLock<'static>> {
    Escaped::new(io::stdout().lock())
}

/// Standard error, escaped.
pub fn stderr() -> Escaped<io::Stderr> {
    Escaped::new(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_sent() {
        assert_eq!(escape("Ann"), Cow::Borrowed("Ann"));
        assert_eq!(
            escape("Ann\u{1b}[31m\u{1b}]0;pwned\u{7}\u{9b}x\u{7f}"),
            "Ann\\u{1b}[31m\\u{1b}]0;pwned\\u{7}\\u{9b}x\\u{7f}"
        );
        assert_eq!(escape("a\tb\nc\r\nd\re"), "a\tb\nc\r\nd\\u{d}e");
    }

    #[test]
    fn a_writer_escapes_across_split_writes() {
        let mut out = Vec::new();
        {
            let mut w = Escaped::new(&mut out);
            let bytes = "é\u{9b}\r\n\r".as_bytes();
            for b in bytes {
                w.write_all(std::slice::from_ref(b)).unwrap();
            }
        }
        assert_eq!(String::from_utf8(out).unwrap(), "é\\u{9b}\r\n\\u{d}");
    }
}
