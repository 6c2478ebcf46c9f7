//! A log line's colour codes (SGR, the only escapes a stored log keeps) as HTML: spans with
//! classes from a 16-colour palette, since the Content-Security-Policy allows no inline style.
//! 256-colour and true-colour codes take the nearest of the 16. Each line starts unstyled.

use maud::{Markup, html};

use crate::printable::{Piece, pieces};

/// `line` as HTML, its text escaped and its colours as `<span class>`.
pub(super) fn line(line: &str) -> Markup {
    let mut style = Style::default();
    let mut parts: Vec<(String, &str)> = Vec::new();
    for piece in pieces(line) {
        match piece {
            Piece::Text(text) => parts.push((style.classes(), text)),
            Piece::Sgr(params) => style.apply(params),
        }
    }
    html! {
        @for (classes, text) in &parts {
            @if classes.is_empty() { (text) } @else { span class=(classes) { (text) } }
        }
    }
}

/// The text attributes an SGR sequence sets.
#[derive(Debug, Default, Clone, PartialEq)]
struct Style {
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    inverse: bool,
    strike: bool,
}

impl Style {
    /// Applies one SGR parameter list (`1;31`, `38;5;208`, `38:2::255:0:0`, empty = reset).
    fn apply(&mut self, params: &str) {
        let mut codes = params.split([';', ':']).map(|p| p.parse::<u16>().unwrap_or(0));
        while let Some(code) = codes.next() {
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                7 => self.inverse = true,
                9 => self.strike = true,
                21 | 22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                27 => self.inverse = false,
                29 => self.strike = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                38 => self.fg = extended(&mut codes),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                48 => self.bg = extended(&mut codes),
                49 => self.bg = None,
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                100..=107 => self.bg = Some((code - 100 + 8) as u8),
                _ => {}
            }
        }
    }

    /// The span's classes; empty when the text is unstyled.
    fn classes(&self) -> String {
        let mut classes = Vec::new();
        let (fg, bg) = if self.inverse {
            (self.bg.or(Some(16)), self.fg.or(Some(17)))
        } else {
            (self.fg, self.bg)
        };
        if let Some(fg) = fg {
            classes.push(format!("f{fg}"));
        }
        if let Some(bg) = bg {
            classes.push(format!("b{bg}"));
        }
        for (on, class) in [
            (self.bold, "sb"),
            (self.dim, "sd"),
            (self.italic, "si"),
            (self.underline, "su"),
            (self.strike, "ss"),
        ] {
            if on {
                classes.push(class.to_string());
            }
        }
        classes.join(" ")
    }
}

/// The colour of a `38;…`/`48;…` code: `5;n` (256 colours) or `2;r;g;b` (true colour).
fn extended(codes: &mut impl Iterator<Item = u16>) -> Option<u8> {
    match codes.next()? {
        5 => Some(from_256(codes.next()?)),
        2 => {
            let mut channel = || codes.next().map(|c| c.min(255) as u8);
            Some(nearest([channel()?, channel()?, channel()?]))
        }
        _ => None,
    }
}

/// xterm's 16 colours, what the palette in style.css stands for.
const XTERM: [[u8; 3]; 16] = [
    [0, 0, 0],
    [205, 0, 0],
    [0, 205, 0],
    [205, 205, 0],
    [0, 0, 238],
    [205, 0, 205],
    [0, 205, 205],
    [229, 229, 229],
    [127, 127, 127],
    [255, 0, 0],
    [0, 255, 0],
    [255, 255, 0],
    [92, 92, 255],
    [255, 0, 255],
    [0, 255, 255],
    [255, 255, 255],
];

fn from_256(index: u16) -> u8 {
    match index {
        0..=15 => index as u8,
        16..=231 => {
            let level = |v: u16| if v == 0 { 0 } else { (55 + v * 40) as u8 };
            let i = index - 16;
            nearest([level(i / 36), level(i / 6 % 6), level(i % 6)])
        }
        _ => {
            let grey = (8 + (index.min(255) - 232) * 10) as u8;
            nearest([grey; 3])
        }
    }
}

fn nearest(rgb: [u8; 3]) -> u8 {
    let distance = |c: &[u8; 3]| -> u32 {
        (0..3)
            .map(|i| (i32::from(c[i]) - i32::from(rgb[i])).pow(2) as u32)
            .sum()
    };
    (0..16u8).min_by_key(|&i| distance(&XTERM[usize::from(i)])).unwrap_or(7)
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn colours_become_classed_spans_and_text_stays_escaped() {
        let cases = [
            ("plain <b>", "plain &lt;b&gt;"),
            ("\u{1b}[31merror\u{1b}[0m: x", "<span class=\"f1\">error</span>: x"),
            (
                "\u{1b}[1;92mok\u{1b}[22m!",
                "<span class=\"f10 sb\">ok</span><span class=\"f10\">!</span>",
            ),
            ("\u{1b}[38;5;196mhot\u{1b}[m", "<span class=\"f9\">hot</span>"),
            ("\u{1b}[38;2;0;0;230;48;5;15mtc", "<span class=\"f4 b15\">tc</span>"),
            ("\u{1b}[7minv", "<span class=\"f16 b17\">inv</span>"),
            ("\u{1b}[2Kkept as text", "\u{1b}[2Kkept as text"),
            ("\u{1b}[38;5mshort", "short"),
        ];
        for (input, expected) in cases {
            assert_eq!(line(input).into_string(), expected, "{input:?}");
        }
    }
}
