//! The on-disk record of one accepted delivery: framing, CRC and field layout.
//!
//! A record is `len: u32 LE | crc: u32 LE | payload[len]`, where `crc` is CRC-32 over the four
//! length bytes followed by the payload, so a torn or overwritten length is caught too. The
//! payload (all integers little-endian, strings UTF-8):
//!
//! ```text
//! version u8 (= 1) | received_at_ms u64 | status u16
//! source: u16 len + bytes | delivery_id: u16 len + bytes
//! answer body JSON: u32 len + bytes
//! runs: u32 count, then per run: run_id u16 len + bytes, pipeline u16 len + bytes
//! event JSON: u32 len + bytes | raw body: u32 len + bytes
//! ```
//!
//! The two large fields come last, so an encoded record is three buffers (head, event, raw body)
//! that the writer hands to one vectored write without copying the bodies.

use super::{EnqueuedRun, InboxError};

/// Bytes before the payload: length and CRC.
pub(super) const FRAME_HEADER: usize = 8;
/// Largest payload accepted or replayed; a length field above it marks a torn or foreign record.
pub(super) const MAX_PAYLOAD: usize = 64 << 20;
/// Longest source or delivery id.
pub(super) const MAX_KEY: usize = 1024;
const VERSION: u8 = 1;

/// A record ready for the writer: `head` holds the frame header and every field up to the event.
pub(super) struct Encoded {
    pub head: Vec<u8>,
    pub event_len: [u8; 4],
    pub event: Vec<u8>,
    pub raw_len: [u8; 4],
    pub raw: Vec<u8>,
}

impl Encoded {
    /// Total bytes on disk, frame header included.
    pub fn len(&self) -> usize {
        self.head.len() + 4 + self.event.len() + 4 + self.raw.len()
    }
}

/// The fields of a record that go into the encoding, borrowed (bodies are moved separately).
pub(super) struct Fields<'a> {
    pub received_at_ms: u64,
    pub status: u16,
    pub source: &'a str,
    pub delivery_id: &'a str,
    pub answer: &'a [u8],
    pub runs: &'a [EnqueuedRun],
}

fn put_str16(out: &mut Vec<u8>, s: &str, what: &str) -> Result<(), InboxError> {
    let n = u16::try_from(s.len()).map_err(|_| InboxError::Invalid(format!("{what} is longer than 65535 bytes")))?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn len32(n: usize, what: &str) -> Result<[u8; 4], InboxError> {
    u32::try_from(n)
        .map(u32::to_le_bytes)
        .map_err(|_| InboxError::Invalid(format!("{what} is too large")))
}

/// Encodes a record, computing its CRC; the event and raw body are moved in, not copied.
pub(super) fn encode(f: &Fields<'_>, event: Vec<u8>, raw: Vec<u8>) -> Result<Encoded, InboxError> {
    let mut head = Vec::with_capacity(FRAME_HEADER + 64 + f.answer.len() + f.runs.len() * 64);
    head.extend_from_slice(&[0; FRAME_HEADER]);
    head.push(VERSION);
    head.extend_from_slice(&f.received_at_ms.to_le_bytes());
    head.extend_from_slice(&f.status.to_le_bytes());
    put_str16(&mut head, f.source, "source")?;
    put_str16(&mut head, f.delivery_id, "delivery id")?;
    head.extend_from_slice(&len32(f.answer.len(), "answer")?);
    head.extend_from_slice(f.answer);
    head.extend_from_slice(&len32(f.runs.len(), "run list")?);
    for run in f.runs {
        put_str16(&mut head, &run.run_id, "run id")?;
        put_str16(&mut head, &run.pipeline, "pipeline name")?;
    }
    let event_len = len32(event.len(), "event")?;
    let raw_len = len32(raw.len(), "raw body")?;
    let payload = head.len() - FRAME_HEADER + 4 + event.len() + 4 + raw.len();
    if payload > MAX_PAYLOAD {
        return Err(InboxError::Invalid(format!(
            "delivery record of {payload} bytes exceeds the {MAX_PAYLOAD}-byte limit"
        )));
    }
    let len = (payload as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&head[FRAME_HEADER..]);
    crc.update(&event_len);
    crc.update(&event);
    crc.update(&raw_len);
    crc.update(&raw);
    head[..4].copy_from_slice(&len);
    head[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(Encoded {
        head,
        event_len,
        event,
        raw_len,
        raw,
    })
}

/// Reads a frame header: the payload length and expected CRC.
pub(super) fn frame(header: &[u8; FRAME_HEADER]) -> (usize, u32) {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    (len, crc)
}

/// Whether `payload` matches the CRC of its frame.
pub(super) fn crc_ok(len: usize, crc: u32, payload: &[u8]) -> bool {
    let mut h = crc32fast::Hasher::new();
    h.update(&(len as u32).to_le_bytes());
    h.update(payload);
    h.finalize() == crc
}

/// A decoded payload, borrowing from the buffer it was read into.
pub(super) struct Decoded<'a> {
    pub received_at_ms: u64,
    pub status: u16,
    pub source: &'a str,
    pub delivery_id: &'a str,
    pub answer: &'a [u8],
    pub runs: Vec<EnqueuedRun>,
    pub event: &'a [u8],
    pub raw: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!("field of {n} bytes runs past the end of the record"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str16(&mut self) -> Result<&'a str, String> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| "string field is not UTF-8".to_string())
    }
    fn bytes32(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Decodes a payload whose CRC already matched; an error means a format this build cannot read.
pub(super) fn decode(payload: &[u8]) -> Result<Decoded<'_>, String> {
    let mut r = Reader { buf: payload };
    let version = r.u8()?;
    if version != VERSION {
        return Err(format!("unknown record version {version}"));
    }
    let received_at_ms = r.u64()?;
    let status = r.u16()?;
    let source = r.str16()?;
    let delivery_id = r.str16()?;
    let answer = r.bytes32()?;
    let nruns = r.u32()? as usize;
    // Each run takes at least four bytes, which bounds the allocation by the payload size.
    if nruns > r.buf.len() / 4 {
        return Err(format!("run count {nruns} exceeds the record"));
    }
    let mut runs = Vec::with_capacity(nruns);
    for _ in 0..nruns {
        let run_id = r.str16()?.to_string();
        let pipeline = r.str16()?.to_string();
        runs.push(EnqueuedRun { run_id, pipeline });
    }
    let event = r.bytes32()?;
    let raw = r.bytes32()?;
    if !r.buf.is_empty() {
        return Err(format!("{} trailing bytes after the raw body", r.buf.len()));
    }
    Ok(Decoded {
        received_at_ms,
        status,
        source,
        delivery_id,
        answer,
        runs,
        event,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_crc() {
        let runs = vec![EnqueuedRun {
            run_id: "r1".into(),
            pipeline: "ci".into(),
        }];
        let f = Fields {
            received_at_ms: 42,
            status: 202,
            source: "github",
            delivery_id: "abc",
            answer: br#"{"ok":true}"#,
            runs: &runs,
        };
        let e = encode(&f, b"{\"e\":1}".to_vec(), b"raw".to_vec()).unwrap();
        let mut bytes = e.head.clone();
        bytes.extend_from_slice(&e.event_len);
        bytes.extend_from_slice(&e.event);
        bytes.extend_from_slice(&e.raw_len);
        bytes.extend_from_slice(&e.raw);
        assert_eq!(bytes.len(), e.len());
        let (len, crc) = frame(bytes[..FRAME_HEADER].try_into().unwrap());
        assert_eq!(len, bytes.len() - FRAME_HEADER);
        assert!(crc_ok(len, crc, &bytes[FRAME_HEADER..]));
        let d = decode(&bytes[FRAME_HEADER..]).unwrap();
        assert_eq!(
            (d.received_at_ms, d.status, d.source, d.delivery_id),
            (42, 202, "github", "abc")
        );
        assert_eq!(
            (d.answer, d.event, d.raw),
            (&br#"{"ok":true}"#[..], &b"{\"e\":1}"[..], &b"raw"[..])
        );
        assert_eq!(d.runs, runs);
        bytes[FRAME_HEADER + 20] ^= 1;
        assert!(!crc_ok(len, crc, &bytes[FRAME_HEADER..]));
    }
}
