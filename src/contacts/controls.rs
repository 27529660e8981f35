//! Control characters in a cell that a message shows. An export can carry them (a name pasted
//! from a terminal, a corrupted field, or a deliberate `ESC [31m`): in a message they would reach
//! the patient, and in a preview the admin's terminal. A cell that templates read (or that the
//! email's `To:` shows) holding a C0 or C1 control other than a tab is a problem of that row and
//! field on the channels that read it, so the row is skipped there rather than cleaned: cutting
//! the control out of `ESC [31m` would still send `[31m`. Line breaks count only in the standard
//! fields (a name, an id, an address are one line); other columns are free text, like the
//! address an EHR export quotes over two lines.

use super::header::Columns;
use crate::model::Channel;

/// Which channels' messages show the field templates see as `contact.NAME` (`NAME` a standard
/// field or a normalised header).
pub type Readers<'a> = &'a (dyn Fn(&str) -> Vec<Channel> + Sync);

/// For each column of `columns`, the channels whose messages show it (under its standard name
/// or its own).
pub(super) fn shown_on(columns: &Columns, readers: Readers<'_>) -> Vec<Vec<Channel>> {
    (0..columns.names.len())
        .map(|i| {
            let mut on = Vec::new();
            let names = columns.standard_name(i).into_iter();
            for name in names.chain(std::iter::once(columns.names[i].as_str())) {
                if name.is_empty() {
                    continue;
                }
                for channel in readers(name) {
                    if !on.contains(&channel) {
                        on.push(channel);
                    }
                }
            }
            on.sort_unstable();
            on
        })
        .collect()
}

/// Why `value` cannot be shown, if it holds a control character: `free_text` cells may hold line
/// breaks.
pub(super) fn control_problem(value: &str, free_text: bool) -> Option<String> {
    // Only bytes below 0x20, DEL and C1's lead byte can start a control character.
    if !value.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
        return None;
    }
    let c = value
        .chars()
        .find(|&c| c.is_control() && c != '\t' && !(free_text && (c == '\n' || c == '\r')))?;
    Some(match c {
        '\n' | '\r' => "holds a line break, and this field is one line: the message would \
                        break where it shows it; fix the cell in the export"
            .to_string(),
        c => format!(
            "holds the control character U+{:04X}{}, which would reach the patient's message \
             and the terminal of anyone previewing it; fix the cell in the export",
            c as u32,
            match c {
                '\u{1b}' => " (escape: the start of a terminal control sequence)",
                '\u{0}' => " (null)",
                '\u{7}' => " (bell)",
                '\u{9b}' => " (control sequence introducer)",
                _ => "",
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_in_a_cell() {
        assert_eq!(control_problem("María O'Brien\t", false), None);
        assert_eq!(control_problem("12 Main St\r\nApt 4", true), None);
        assert!(
            control_problem("Ann\nBcc: x", false)
                .unwrap()
                .starts_with("holds a line break")
        );
        assert!(
            control_problem("Ann\u{1b}[31m", true)
                .unwrap()
                .starts_with("holds the control character U+001B (escape")
        );
        assert!(control_problem("Ann\u{9b}31m", true).is_some());
        assert!(control_problem("Ann\u{7f}", true).is_some());
        assert_eq!(control_problem("Ann\u{a0}Lee", false), None);
    }
}
