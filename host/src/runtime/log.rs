//! The step log: every line a plugin writes (log interface, stdout, stderr), secrets masked,
//! size bounded. Past the kept size lines are counted, not stored; past the flood limit the
//! plugin is stopped, so a runaway logger cannot eat memory or disk.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::printable::Piece;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The `log` interface.
    Log,
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

/// Severity of a line; stdout lines are `Info`, stderr lines `Warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// One line of a step log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Milliseconds since the step started.
    pub at_ms: u64,
    /// Severity.
    pub level: Level,
    /// Source.
    pub stream: Stream,
    /// The text, secrets masked.
    pub message: String,
}

/// Size bounds of one step's log.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Bytes of log kept; later lines are dropped and counted.
    pub kept_bytes: usize,
    /// Bytes written in all after which the step is stopped as a log flood.
    pub flood_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            kept_bytes: 1 << 20,
            flood_bytes: 64 << 20,
        }
    }
}

/// The log flood limit was passed; the step is stopped with this error.
#[derive(Debug, thiserror::Error)]
#[error("log flood: the step wrote more than {limit} bytes of log and was stopped")]
pub struct LogFlood {
    /// The flood limit in bytes.
    pub limit: usize,
}

/// Called with each kept line of a step's log as it is written.
#[derive(Clone)]
pub struct LogTap(pub Arc<dyn Fn(&LogLine) + Send + Sync>);

impl std::fmt::Debug for LogTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogTap")
    }
}

/// A cloneable handle to one step's log.
#[derive(Clone)]
pub struct StepLog {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    started: Instant,
    limits: LogLimits,
    masker: Masker,
    tap: Option<LogTap>,
    lines: Vec<LogLine>,
    kept: usize,
    written: usize,
    dropped_lines: usize,
    partial: [Vec<u8>; 2],
}

impl StepLog {
    /// A log that masks each of `secrets` (see [`Masker`]).
    pub fn new(limits: LogLimits, secrets: &[String]) -> Self {
        let masker = Masker::new(secrets);
        StepLog {
            inner: Arc::new(Mutex::new(Inner {
                started: Instant::now(),
                limits,
                masker,
                tap: None,
                lines: Vec::new(),
                kept: 0,
                written: 0,
                dropped_lines: 0,
                partial: [Vec::new(), Vec::new()],
            })),
        }
    }

    /// The same log, also handing every kept line to `tap` as it is written (masked), so a
    /// step's log can be followed while it runs.
    pub fn with_tap(self, tap: Option<LogTap>) -> Self {
        self.inner.lock().expect("log lock").tap = tap;
        self
    }

    /// Adds one line; `Err` once the flood limit is passed.
    pub fn line(&self, level: Level, stream: Stream, message: &str) -> Result<(), LogFlood> {
        self.inner.lock().expect("log lock").push(level, stream, message)
    }

    /// Adds raw stdout/stderr bytes, split into lines.
    pub fn write(&self, stream: Stream, bytes: &[u8]) -> Result<(), LogFlood> {
        let mut inner = self.inner.lock().expect("log lock");
        let slot = usize::from(stream == Stream::Stderr);
        inner.partial[slot].extend_from_slice(bytes);
        while let Some(pos) = inner.partial[slot].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = inner.partial[slot].drain(..=pos).collect();
            inner.push_bytes(stream, &line[..line.len() - 1])?;
        }
        // A guest writing without newlines must not grow the buffer without bound.
        if inner.partial[slot].len() > 64 * 1024 {
            let line = std::mem::take(&mut inner.partial[slot]);
            inner.push_bytes(stream, &line)?;
        }
        Ok(())
    }

    /// The kept lines, ending with a note if lines were dropped.
    pub fn finish(&self) -> Vec<LogLine> {
        let mut inner = self.inner.lock().expect("log lock");
        for (slot, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            let rest = std::mem::take(&mut inner.partial[slot]);
            if !rest.is_empty() {
                let _ = inner.push_bytes(stream, &rest);
            }
        }
        let mut lines = inner.lines.clone();
        if inner.dropped_lines > 0 {
            lines.push(LogLine {
                at_ms: inner.started.elapsed().as_millis() as u64,
                level: Level::Warn,
                stream: Stream::Log,
                message: format!(
                    "log truncated: {} more lines ({} bytes in all) were not kept; the limit is {} bytes",
                    inner.dropped_lines, inner.written, inner.limits.kept_bytes
                ),
            });
        }
        lines
    }
}

impl Inner {
    fn push_bytes(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), LogFlood> {
        let level = if stream == Stream::Stderr {
            Level::Warn
        } else {
            Level::Info
        };
        self.push(level, stream, &String::from_utf8_lossy(bytes))
    }

    fn push(&mut self, level: Level, stream: Stream, message: &str) -> Result<(), LogFlood> {
        self.written += message.len() + 1;
        if self.written > self.limits.flood_bytes {
            return Err(LogFlood {
                limit: self.limits.flood_bytes,
            });
        }
        if self.kept + message.len() > self.limits.kept_bytes {
            self.dropped_lines += 1;
            return Ok(());
        }
        // Escapes go before masking (colours stay: the masker sees through them), so one
        // inside a secret cannot split it past the mask.
        let message = self.mask(&crate::printable::printable_coloured(message));
        self.kept += message.len() + 1;
        let line = LogLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            level,
            stream,
            message,
        };
        if let Some(tap) = &self.tap {
            (tap.0)(&line);
        }
        self.lines.push(line);
        Ok(())
    }

    fn mask(&self, text: &str) -> String {
        self.masker.mask(text)
    }
}

/// Replaces every secret of at least 4 bytes in `text` with `***` (see [`Masker`]).
pub fn mask_secrets(text: &str, secrets: &[String]) -> String {
    Masker::new(secrets).mask(text)
}

/// Masks secrets in the forms they leak in: as written, each line of a multi-line one (a PEM
/// key printed line by line), and their base64 (standard and URL-safe, as in a Basic auth
/// header or a Kubernetes secret). Longest first, so a secret containing another is masked
/// whole; values shorter than 4 bytes are not masked (they would hide ordinary words and
/// reveal the secret by elimination).
#[derive(Debug, Clone, Default)]
pub struct Masker {
    forms: Vec<String>,
}

impl Masker {
    /// A masker for `secrets`.
    pub fn new(secrets: &[String]) -> Masker {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let mut forms: Vec<String> = Vec::new();
        for secret in secrets {
            forms.push(secret.clone());
            forms.extend(secret.lines().map(|l| l.trim().to_string()));
            forms.push(STANDARD.encode(secret));
            forms.push(URL_SAFE_NO_PAD.encode(secret));
        }
        forms.retain(|s| s.len() >= 4);
        forms.sort_by_key(|s| std::cmp::Reverse(s.len()));
        forms.dedup();
        Masker { forms }
    }

    /// `text` with every form of every secret replaced by `***`. Colour codes (SGR) are seen
    /// through: a secret printed with a colour change in the middle is masked whole, and the
    /// codes inside it move behind the `***`.
    pub fn mask(&self, text: &str) -> String {
        if self.forms.is_empty() {
            return text.to_string();
        }
        let (visible, codes) = split_sgr(text);
        let hidden = self.ranges(&visible);
        if hidden.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut codes = codes.into_iter().peekable();
        let mut at = 0;
        // The last, empty range takes the text and codes after the last secret.
        for range in hidden.into_iter().chain(std::iter::once(visible.len()..visible.len())) {
            while let Some((pos, code)) = codes.next_if(|(pos, _)| *pos <= range.start) {
                out.push_str(&visible[at..pos]);
                out.push_str(&code);
                at = pos;
            }
            out.push_str(&visible[at..range.start]);
            if !range.is_empty() {
                out.push_str("***");
            }
            at = range.end;
            while let Some((_, code)) = codes.next_if(|(pos, _)| *pos < range.end) {
                out.push_str(&code);
            }
        }
        out
    }

    /// The byte ranges of `text` that hold a form of a secret, merged where they overlap.
    fn ranges(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        let mut found: Vec<std::ops::Range<usize>> = self
            .forms
            .iter()
            .flat_map(|form| text.match_indices(form.as_str()).map(|(at, f)| at..at + f.len()))
            .collect();
        found.sort_by_key(|r| r.start);
        let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(found.len());
        for range in found {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        merged
    }
}

/// `text` without its SGR sequences (`ESC [ params m`), and each of them with the byte
/// offset in the remaining text it stood before. Other escapes stay in the text.
fn split_sgr(text: &str) -> (String, Vec<(usize, String)>) {
    if !text.contains('\u{1b}') {
        return (text.to_string(), Vec::new());
    }
    let (mut visible, mut codes) = (String::with_capacity(text.len()), Vec::new());
    for piece in crate::printable::pieces(text) {
        match piece {
            Piece::Text(text) => visible.push_str(text),
            Piece::Sgr(params) => codes.push((visible.len(), format!("\u{1b}[{params}m"))),
        }
    }
    (visible, codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_every_line() {
        let log = StepLog::new(LogLimits::default(), &["hunter22".into(), "abc".into()]);
        log.line(Level::Info, Stream::Log, "token=hunter22 abc").unwrap();
        log.write(Stream::Stdout, b"echo hunter22\npartial hunter").unwrap();
        log.write(Stream::Stdout, b"22 end\n").unwrap();
        let lines: Vec<_> = log.finish().into_iter().map(|l| l.message).collect();
        assert_eq!(lines, ["token=*** abc", "echo ***", "partial *** end"]);
    }

    #[test]
    fn multi_line_and_base64_forms_of_a_secret_are_masked() {
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----".to_string();
        let token = "s3cr3t-token".to_string();
        let secrets = [key, token];
        let printed = "line: MIIEvQIBADANBgkq\nauth: Basic czNjcjN0LXRva2Vu\nurl: czNjcjN0LXRva2Vu";
        let masked = mask_secrets(printed, &secrets);
        assert_eq!(masked, "line: ***\nauth: Basic ***\nurl: ***");
    }

    #[test]
    fn escapes_are_stripped_colours_kept_and_neither_can_split_a_secret() {
        let log = StepLog::new(LogLimits::default(), &["hunter22".into()]);
        log.line(Level::Info, Stream::Log, "\u{1b}]0;title\u{7}hunt\u{1b}[2Ker22\r")
            .unwrap();
        log.line(Level::Info, Stream::Log, "a \u{1b}[1mhunt\u{1b}[31mer\u{1b}[0m22 b")
            .unwrap();
        log.write(Stream::Stderr, b"\x1b[31mred\x1b[0m\r\n").unwrap();
        let lines: Vec<_> = log.finish().into_iter().map(|l| l.message).collect();
        assert_eq!(
            lines,
            ["***", "a \u{1b}[1m***\u{1b}[31m\u{1b}[0m b", "\u{1b}[31mred\u{1b}[0m"]
        );
    }

    #[test]
    fn overlapping_secrets_are_masked_as_one_and_other_escapes_are_left_alone() {
        let masker = Masker::new(&["abcd".into(), "cdef".into()]);
        assert_eq!(masker.mask("xabcdefx abcd"), "x***x ***");
        assert_eq!(masker.mask("\u{1b}[31mab\u{1b}[0mcd!"), "\u{1b}[31m***\u{1b}[0m!");
        // Not an SGR (a cursor move): not seen through, and the text is kept as it was.
        assert_eq!(masker.mask("ab\u{1b}[2Kcd"), "ab\u{1b}[2Kcd");
    }

    proptest::proptest! {
        /// Whatever colour codes are put between its characters, a secret never comes out.
        #[test]
        fn colour_codes_never_split_a_secret_past_the_mask(
            cuts in proptest::collection::vec((0usize..8, "[0-9;]{0,6}"), 0..6),
            before in "[a-z ]{0,5}",
            after in "[a-z ]{0,5}",
        ) {
            let secret = "Zq9sEcReT";
            let mut text: Vec<String> = secret.chars().map(String::from).collect();
            for (at, params) in cuts {
                text[at % secret.len()].insert_str(0, &format!("\u{1b}[{params}m"));
            }
            let line = format!("{before}{}{after}", text.concat());
            let masked = Masker::new(&[secret.into()]).mask(&line);
            let (visible, _) = split_sgr(&masked);
            proptest::prop_assert!(!visible.contains(secret) && visible.contains("***"), "{masked:?}");
        }
    }

    #[test]
    fn log_keeps_a_bounded_prefix_then_stops_a_flood() {
        let log = StepLog::new(
            LogLimits {
                kept_bytes: 100,
                flood_bytes: 1000,
            },
            &[],
        );
        let mut result = Ok(());
        for _ in 0..200 {
            result = log.line(Level::Info, Stream::Log, "0123456789");
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err().limit, 1000);
        let lines = log.finish();
        assert_eq!(lines.len(), 10, "9 kept lines and the truncation note");
        assert!(lines.last().unwrap().message.starts_with("log truncated: "));
    }
}
