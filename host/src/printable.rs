//! Text from plugins made safe to show: terminal escape sequences and control characters
//! removed, so a step's log or output cannot move the cursor, retitle the window, hide
//! lines with `\r`, or smuggle hyperlinks (OSC 8) into an operator's terminal or page.

use std::borrow::Cow;

/// `text` without escape sequences (CSI, OSC, DCS/SOS/PM/APC strings, two-byte escapes) and
/// without control characters other than newline and tab.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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

    proptest::proptest! {
        #[test]
        fn output_has_no_controls_but_newline_and_tab(s in ".*") {
            let out = printable(&s);
            proptest::prop_assert!(out.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'));
        }
    }
}
