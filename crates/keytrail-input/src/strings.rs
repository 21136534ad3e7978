//! Printable runs of binary content (`.pyc`, `.class`, native
//! executables, archive members that are not text), so the scanner sees
//! the strings compiled into them.
//!
//! The output has the length of the input: bytes of an ASCII run of at
//! least [`MIN_RUN`] printable characters (space to `~`, and tab) stay
//! where they are, the characters of a UTF-16LE or UTF-16BE run of at least
//! [`MIN_RUN`] characters are written at the start of the run (so its
//! offset is the run's), and every other byte becomes a line feed. Offsets
//! of ASCII strings are therefore those in the file; line numbers count
//! the bytes that are not text and mean little.
//!
//! Large content is transformed in blocks ([`Strings`], a reader); a block
//! ends at a pair of bytes that no run can hold (two non-printable bytes,
//! neither zero), so runs are not cut, except in a block without such a
//! pair.

use std::io::{self, Read};

/// Shortest run kept, in characters.
pub const MIN_RUN: usize = 8;
/// Block size of the streaming transform.
const BLOCK: usize = 1 << 20;

fn printable(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) || b == b'\t'
}

/// Transform `src` into `dst` (same length): see the module documentation.
pub fn extract(src: &[u8], dst: &mut Vec<u8>) {
    let base = dst.len();
    dst.resize(base + src.len(), b'\n');
    let out = &mut dst[base..];
    let n = src.len();
    let mut i = 0;
    while i < n {
        let b = src[i];
        if printable(b) {
            // An ASCII run, unless it is the first character of UTF-16LE.
            if i + 1 < n && src[i + 1] == 0 {
                let chars = utf16_run(src, i, false);
                if chars >= MIN_RUN {
                    for k in 0..chars {
                        out[i + k] = src[i + 2 * k];
                    }
                    i += 2 * chars;
                    continue;
                }
            }
            let s = i;
            while i < n && printable(src[i]) {
                i += 1;
            }
            if i - s >= MIN_RUN {
                out[s..i].copy_from_slice(&src[s..i]);
                split_prefixed(src, s, i, out);
            }
            continue;
        }
        if b == 0 && i + 1 < n && printable(src[i + 1]) {
            let chars = utf16_run(src, i, true);
            if chars >= MIN_RUN {
                for k in 0..chars {
                    out[i + k] = src[i + 2 * k + 1];
                }
                i += 2 * chars;
                continue;
            }
        }
        i += 1;
    }
}

/// Split a run `src[s..e]` that holds a length-prefixed string of a
/// compiled format and the bytes after it (`(ghp_…N)` in a `.pyc`: the
/// length `(` and the type byte `N` of the next object are printable), so a
/// token is not glued to its neighbours: a line feed replaces a printable
/// length byte and follows the string.
///
/// Recognised: Python marshal strings (a type byte `z`/`Z`/`a`/`A`/`u`/
/// `t`/`s`, with or without the reference flag 0x80, then a 1-byte length
/// for `z`/`Z` or a 4-byte little-endian one) and Java class-file
/// `CONSTANT_Utf8` entries (tag 1, 2-byte big-endian length).
fn split_prefixed(src: &[u8], s: usize, e: usize, out: &mut [u8]) {
    let ty = |b: u8| b & 0x7f;
    let mut cut = |body: usize, len: usize, prefix: Option<usize>| {
        if len >= MIN_RUN && body + len <= e {
            if let Some(p) = prefix {
                out[p] = b'\n';
            }
            if body + len < e {
                out[body + len] = b'\n';
            }
            true
        } else {
            false
        }
    };
    // A 1-byte length that is itself printable, first in the run.
    if s >= 1 && matches!(ty(src[s - 1]), b'z' | b'Z') && cut(s + 1, src[s] as usize, Some(s)) {
        return;
    }
    if s >= 2 && src[s - 2] == 1 && src[s - 1] == 0 && cut(s + 1, src[s] as usize, Some(s)) {
        return;
    }
    // A length before the run (not printable, so not in it).
    if s >= 2 && matches!(ty(src[s - 2]), b'z' | b'Z') && cut(s, src[s - 1] as usize, None) {
        return;
    }
    if s >= 3
        && src[s - 3] == 1
        && cut(
            s,
            u16::from_be_bytes([src[s - 2], src[s - 1]]) as usize,
            None,
        )
    {
        return;
    }
    if s >= 5 && matches!(ty(src[s - 5]), b'a' | b'A' | b'u' | b't' | b's') {
        let len = u32::from_le_bytes([src[s - 4], src[s - 3], src[s - 2], src[s - 1]]) as usize;
        cut(s, len, None);
    }
}

/// Characters of the UTF-16 run of printable ASCII starting at `at`.
fn utf16_run(src: &[u8], at: usize, big_endian: bool) -> usize {
    let mut k = 0;
    let mut j = at;
    while j + 1 < src.len() {
        let (hi, lo) = if big_endian {
            (src[j], src[j + 1])
        } else {
            (src[j + 1], src[j])
        };
        if hi != 0 || !printable(lo) {
            break;
        }
        k += 1;
        j += 2;
    }
    k
}

/// Where a block of `buf` may end without cutting a run: after the last
/// pair of non-printable, non-zero bytes.
fn safe_cut(buf: &[u8]) -> Option<usize> {
    let bad = |b: u8| b != 0 && !printable(b);
    (1..buf.len())
        .rev()
        .find(|&i| bad(buf[i]) && bad(buf[i - 1]))
        .map(|i| i + 1)
}

/// Reader of the printable runs of another reader's binary content.
pub struct Strings<R> {
    inner: R,
    carry: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Strings<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        Strings {
            inner,
            carry: Vec::with_capacity(BLOCK),
            out: Vec::with_capacity(BLOCK),
            pos: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for Strings<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.eof && self.carry.is_empty() {
                return Ok(0);
            }
            self.out.clear();
            self.pos = 0;
            if !self.eof {
                let have = self.carry.len();
                self.carry.resize(BLOCK, 0);
                let mut filled = have;
                while filled < BLOCK {
                    match self.inner.read(&mut self.carry[filled..]) {
                        Ok(0) => {
                            self.eof = true;
                            break;
                        }
                        Ok(k) => filled += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            self.carry.truncate(filled);
                            return Err(e);
                        }
                    }
                }
                self.carry.truncate(filled);
            }
            let cut = if self.eof {
                self.carry.len()
            } else {
                safe_cut(&self.carry).unwrap_or(self.carry.len())
            };
            extract(&self.carry[..cut], &mut self.out);
            self.carry.drain(..cut);
        }
        let k = buf.len().min(self.out.len() - self.pos);
        buf[..k].copy_from_slice(&self.out[self.pos..self.pos + k]);
        self.pos += k;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        extract(src, &mut out);
        out
    }

    #[test]
    fn runs_stay_in_place_and_the_rest_is_line_feeds() {
        let mut bin = vec![0u8, 1, 2, 0xff];
        bin.extend_from_slice(b"ghp_token_here");
        bin.extend_from_slice(&[0, 7, b'a', b'b', 0]);
        let out = strings(&bin);
        assert_eq!(out.len(), bin.len());
        assert_eq!(&out[4..18], b"ghp_token_here");
        assert!(out[..4].iter().chain(&out[18..]).all(|&b| b == b'\n'));
    }

    #[test]
    fn utf16_runs_are_compacted_at_their_start() {
        let text = "secret_key=abc123XY";
        let mut le = vec![0x90u8, 0x91];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        le.extend([0x92u8, 0x93]);
        let out = strings(&le);
        assert_eq!(&out[2..2 + text.len()], text.as_bytes());
        let mut be = vec![0x90u8, 0x91];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        let out = strings(&be);
        assert_eq!(&out[2..2 + text.len()], text.as_bytes());
    }

    #[test]
    fn length_prefixed_strings_are_cut_from_their_neighbours() {
        // A .pyc short ASCII string: type 0xda, length 40 ('('), then the
        // type byte 'N' and ')' of the next objects.
        let token = "ghp_R3tW9zLq0xVbN7kYp2sDfG4hJm8cQe1aUo5i";
        let mut pyc = vec![0x02, 0x29, 0x02, 0xda, token.len() as u8];
        pyc.extend_from_slice(token.as_bytes());
        pyc.extend_from_slice(b"N)\x01\xda");
        let out = strings(&pyc);
        assert_eq!(&out[4..6 + token.len()], format!("\n{token}\n").as_bytes());
        // A class-file CONSTANT_Utf8 whose length byte is a letter (65).
        let text = "A".repeat(0) + &"k".repeat(65);
        let mut class = vec![0xCA, 0xFE, 0x01, 0x00, 65];
        class.extend_from_slice(text.as_bytes());
        class.extend_from_slice(b"Zmore");
        let out = strings(&class);
        assert_eq!(out[4], b'\n');
        assert_eq!(&out[5..70], text.as_bytes());
        assert_eq!(out[70], b'\n');
    }

    #[test]
    fn no_printable_runs_give_only_line_feeds() {
        let bin: Vec<u8> = (0..10_000u32)
            .map(|i| [0u8, 1, 0xfe, b'x'][i as usize % 4])
            .collect();
        assert!(strings(&bin).iter().all(|&b| b == b'\n'));
        assert!(strings(b"").is_empty());
    }

    #[test]
    fn streaming_equals_whole() {
        let mut bin = Vec::new();
        for i in 0..300_000u32 {
            bin.extend_from_slice(&i.to_le_bytes());
            if i % 1000 == 0 {
                bin.extend_from_slice(b"AKIA_LIKE_TEXT_RUN_");
            }
        }
        let whole = strings(&bin);
        let mut streamed = Vec::new();
        Strings::new(&bin[..]).read_to_end(&mut streamed).unwrap();
        assert_eq!(streamed.len(), whole.len());
        assert_eq!(streamed, whole);
    }
}
