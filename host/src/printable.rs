//! Text from plugins made safe to show: terminal escape sequences and control characters
//! removed, so a step's log or output cannot move the cursor, retitle the window, hide
//! lines with `\r`, or smuggle hyperlinks (OSC 8) into an operator's terminal or page.

use std::borrow::Cow;

/// `text` without escape sequences (CSI, OSC, DCS/SOS/PM/APC strings, two-byte escapes) and
/// without control characters other than newline and tab.
pub fn printable(text: &str) -> Cow<'_, str> {
    clean(text, false)
}

/// Like [`printable`], but colour and style codes (SGR: `ESC [ digits ; … m`) are kept, so a
/// log can show a compiler's colours. They only style text: they cannot move the cursor,
/// clear lines or link anywhere.
pub fn printable_coloured(text: &str) -> Cow<'_, str> {
    clean(text, true)
}

/// Text for this process's stdout: colours kept when it is a terminal and `NO_COLOR` is
/// unset, every escape removed otherwise (a file or pipe gets plain text).
pub fn for_stdout(text: &str) -> Cow<'_, str> {
    use std::io::IsTerminal;
    static COLOUR: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    clean(text, *COLOUR)
}

/// The longest SGR parameter list kept; longer ones are dropped as garbage.
const MAX_SGR: usize = 64;

/// Whether `params` (what lies between `ESC [` and `m`) is a plain SGR parameter list.
pub fn is_sgr(params: &str) -> bool {
    params.len() <= MAX_SGR && params.bytes().all(|b| b.is_ascii_digit() || b == b';' || b == b':')
}

/// A piece of a line that may hold colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text, with any escape that is not an SGR sequence left in it.
    Text(&'a str),
    /// One SGR sequence's parameters (what lies between `ESC [` and `m`).
    Sgr(&'a str),
}

/// `line` as its SGR sequences and the text between them, in order; the one place that
/// tells colour codes from text, for the masker and the dashboard alike.
pub fn pieces(line: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = line;
    let mut next_sgr = None;
    std::iter::from_fn(move || {
        if let Some(params) = next_sgr.take() {
            return Some(Piece::Sgr(params));
        }
        let mut from = 0;
        while let Some(at) = rest[from..].find("\u{1b}[").map(|at| from + at) {
            let after = &rest[at + 2..];
            if let Some(end) = after.find('m').filter(|end| is_sgr(&after[..*end])) {
                let (text, params) = (&rest[..at], &after[..end]);
                rest = &after[end + 1..];
                if text.is_empty() {
                    return Some(Piece::Sgr(params));
                }
                next_sgr = Some(params);
                return Some(Piece::Text(text));
            }
            from = at + 2;
        }
        let text = std::mem::take(&mut rest);
        (!text.is_empty()).then_some(Piece::Text(text))
    })
}

fn clean(text: &str, keep_sgr: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    let sequence = skip_csi(&mut chars);
                    if keep_sgr && let Some(params) = sequence.strip_suffix('m').filter(|p| is_sgr(p)) {
                        out.push_str("\u{1b}[");
                        out.push_str(params);
                        out.push('m');
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                _ => {}
            },
            '\u{9b}' => {
                skip_csi(&mut chars);
            }
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Consumes a CSI sequence's parameters and intermediates up to its final byte in `@..~`,
/// returning them with the final byte (bounded, since only short ones are kept).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut sequence = String::new();
    for c in chars.by_ref() {
        if sequence.len() <= MAX_SGR {
            sequence.push(c);
        }
        if ('@'..='~').contains(&c) {
            break;
        }
    }
    sequence
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' if chars.peek() == Some(&'\\') => {
                chars.next();
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escape_sequences_and_controls_are_removed() {
        let cases = [
            ("plain text\twith tab", "plain text\twith tab"),
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}]0;owned title\u{7}after", "after"),
            ("\u{1b}]8;;https://evil.example/\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link"),
            (
                "progress 10%\rfake: all tests passed",
                "progress 10%fake: all tests passed",
            ),
            ("\u{1b}[2J\u{1b}[Hcleared", "cleared"),
            ("bell\u{7} and nul\u{0} and del\u{7f}", "bell and nul and del"),
            ("\u{9b}31mc1 csi", "c1 csi"),
            ("line one\nline two", "line one\nline two"),
            ("unterminated \u{1b}]0;title", "unterminated "),
        ];
        for (input, expected) in cases {
            assert_eq!(printable(input), expected, "{input:?}");
        }
    }

    #[test]
    fn colour_codes_are_kept_and_nothing_else() {
        let cases = [
            ("\u{1b}[31mred\u{1b}[0m", "\u{1b}[31mred\u{1b}[0m"),
            (
                "\u{1b}[1;38;5;208mbold orange\u{1b}[m",
                "\u{1b}[1;38;5;208mbold orange\u{1b}[m",
            ),
            ("\u{1b}[2J\u{1b}[Hcleared\u{1b}[K", "cleared"),
            ("\u{1b}[?25lhidden cursor", "hidden cursor"),
            ("\u{1b}]8;;https://evil.example/\u{7}link", "link"),
            ("\u{9b}31mc1 csi is not kept", "c1 csi is not kept"),
            ("over\rwrite", "overwrite"),
        ];
        for (input, expected) in cases {
            assert_eq!(super::printable_coloured(input), expected, "{input:?}");
        }
        let long = format!("\u{1b}[{}mx", "1;".repeat(40));
        assert_eq!(super::printable_coloured(&long), "x", "an overlong SGR is dropped");
    }

    proptest::proptest! {
        #[test]
        fn output_has_no_controls_but_newline_and_tab(s in ".*") {
            let out = printable(&s);
            proptest::prop_assert!(out.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'));
        }

        #[test]
        fn coloured_output_has_no_escape_but_sgr(s in "(\\PC|\u{1b}|\\[|[0-9;m]){0,40}") {
            let out = super::printable_coloured(&s);
            let mut rest = out.as_ref();
            while let Some(at) = rest.find('\u{1b}') {
                let after = &rest[at + 1..];
                proptest::prop_assert!(after.starts_with('['), "{out:?}");
                let end = after.find('m').expect("an SGR ends with m");
                proptest::prop_assert!(super::is_sgr(&after[1..end]), "{out:?}");
                rest = &after[end + 1..];
            }
            let controls_ok = out.chars().all(|c| c == '\u{1b}' || !c.is_control() || c == '\n' || c == '\t');
            proptest::prop_assert!(controls_ok, "{:?}", out);
        }
    }
}
