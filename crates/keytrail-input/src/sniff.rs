//! Content sniffing: is a head of bytes an archive we open, text, UTF-16
//! text, or binary? Decided from magic bytes, with the file name only as a
//! hint, so renamed or extension-less files are classified by what they are.

/// How many leading bytes classification looks at.
pub(crate) const HEAD_LEN: usize = 8 << 10;

/// Archive formats opened by this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    /// Zip family: zip, jar, war, ear, whl, apk, nupkg, aar, docx/xlsx...
    Zip,
    /// POSIX/GNU tar (uncompressed).
    Tar,
    /// gzip: a single compressed file, or a compressed tar (`.tar.gz`, `.tgz`).
    Gzip,
}

/// What the bytes of a non-archive look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKind {
    /// ASCII-compatible text (UTF-8, Latin-1, ...): scanned as is.
    Text,
    /// UTF-16 text; `skip` is the BOM length to drop (0 when detected without BOM).
    Utf16 {
        /// Big-endian code units.
        big_endian: bool,
        /// Bytes of byte-order mark to skip.
        skip: usize,
    },
    /// Binary, with a short description for the diagnostic.
    Binary(&'static str),
}

/// Archive format from magic bytes, with `name` as a hint for old tar files
/// that carry no magic.
pub(crate) fn archive_kind(head: &[u8], name: &str) -> Option<ArchiveKind> {
    if head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(b"PK\x07\x08")
    {
        return Some(ArchiveKind::Zip);
    }
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Some(ArchiveKind::Gzip);
    }
    if is_tar_header(head, has_tar_extension(name)) {
        return Some(ArchiveKind::Tar);
    }
    None
}

/// Whether `head` starts with a tar header: `ustar` magic (POSIX and GNU),
/// or, when the name says `.tar`, a valid pre-POSIX (v7) header checksum.
pub(crate) fn is_tar_header(head: &[u8], name_hint: bool) -> bool {
    if head.len() < 512 {
        return false;
    }
    if &head[257..262] == b"ustar" {
        return true;
    }
    name_hint && tar_checksum_ok(&head[..512])
}

fn tar_checksum_ok(header: &[u8]) -> bool {
    let field = &header[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() {
        return false;
    }
    let Ok(text) = std::str::from_utf8(&digits) else {
        return false;
    };
    let Ok(stored) = u32::from_str_radix(text, 8) else {
        return false;
    };
    let sum: u32 = header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    // An all-zero block (end of archive) sums to 256 with the blank checksum.
    sum == stored && sum != 256
}

/// The last component of a display path (`a.zip!dir/x.jar` → `x.jar`).
pub(crate) fn file_name(display: &str) -> &str {
    display.rsplit(['/', '!', '\\']).next().unwrap_or(display)
}

fn extension(name: &str) -> String {
    file_name(name)
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn has_tar_extension(name: &str) -> bool {
    extension(name) == "tar"
}

/// Zip-family extensions. Used to try opening a zip whose first bytes are
/// not `PK` (self-executing jars such as Spring Boot's start with a shell
/// script; the zip central directory is found from the end).
pub(crate) fn has_zip_extension(name: &str) -> bool {
    matches!(
        extension(name).as_str(),
        "zip" | "jar" | "war" | "ear" | "whl" | "apk" | "nupkg" | "aar" | "ipa" | "xpi" | "egg"
    )
}

/// Name of the decompressed content of a gzip file named `name` when the
/// gzip header does not carry one: `app.log.gz` → `app.log`, `x.tgz` → `x.tar`.
pub(crate) fn gunzipped_name(name: &str) -> String {
    let base = file_name(name);
    let lower = base.to_ascii_lowercase();
    for (suffix, replacement) in [(".tgz", ".tar"), (".gz", ""), (".gzip", ""), (".z", "")] {
        if lower.ends_with(suffix) && base.len() > suffix.len() {
            return format!("{}{}", &base[..base.len() - suffix.len()], replacement);
        }
    }
    format!("{base}.out")
}

/// Known compressed or container formats we do not decode, for a clearer
/// `binary` diagnostic.
fn known_binary(head: &[u8]) -> Option<&'static str> {
    const MAGICS: &[(&[u8], &str)] = &[
        (b"BZh", "bzip2-compressed data (not decoded)"),
        (b"\xFD7zXZ\x00", "xz-compressed data (not decoded)"),
        (b"\x28\xB5\x2F\xFD", "zstd-compressed data (not decoded)"),
        (b"7z\xBC\xAF\x27\x1C", "7-zip archive (not decoded)"),
        (b"Rar!\x1A\x07", "RAR archive (not decoded)"),
        (b"\x7FELF", "ELF executable"),
        (b"\x89PNG", "PNG image"),
        (b"%PDF-", "PDF document"),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, what)| *what)
}

/// Whether binary content with this head may hold strings worth scanning:
/// not compressed data keytrail does not decode, an image or UTF-32.
pub(crate) fn has_strings(head: &[u8]) -> bool {
    if head.starts_with(&[0xFF, 0xFE, 0, 0]) || head.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return false;
    }
    !matches!(known_binary(head), Some(what) if what != "ELF executable")
}

/// Classify the head of a non-archive.
///
/// Binary when the head contains a NUL byte (as git and ripgrep decide) or
/// more than 10% control bytes other than tab, newlines, form feed and
/// escape; UTF-16 when it has a BOM, or when one byte of nearly every code
/// unit is zero and the other almost never is (BOM-less UTF-16LE written by
/// Windows tools).
pub(crate) fn text_kind(head: &[u8]) -> TextKind {
    if head.starts_with(&[0xFF, 0xFE, 0, 0]) || head.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return TextKind::Binary("UTF-32 text (not decoded)");
    }
    if head.starts_with(&[0xFF, 0xFE]) {
        return TextKind::Utf16 {
            big_endian: false,
            skip: 2,
        };
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return TextKind::Utf16 {
            big_endian: true,
            skip: 2,
        };
    }
    if let Some(what) = known_binary(head) {
        return TextKind::Binary(what);
    }
    if !head.contains(&0) {
        let controls = count_controls(head);
        return if controls * 10 > head.len() {
            TextKind::Binary("mostly control bytes")
        } else {
            TextKind::Text
        };
    }
    if let Some(big_endian) = bomless_utf16(head) {
        return TextKind::Utf16 {
            big_endian,
            skip: 0,
        };
    }
    TextKind::Binary("contains NUL bytes")
}

/// Bytes in 0x01–0x08, 0x0E–0x1A, 0x1C–0x1F and 0x7F. Branch-free and
/// summed in `u8` lanes per 255-byte chunk so it vectorizes: this runs on
/// the head of every file and blob (10× the `matches!` filter it replaces).
fn count_controls(head: &[u8]) -> usize {
    let is_control = |b: u8| {
        (b.wrapping_sub(0x01) < 8)
            | (b.wrapping_sub(0x0E) < 13)
            | (b.wrapping_sub(0x1C) < 4)
            | (b == 0x7F)
    };
    head.chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |acc, &b| acc + u8::from(is_control(b)));
            usize::from(n)
        })
        .sum()
}

fn bomless_utf16(head: &[u8]) -> Option<bool> {
    let units = head.len() / 2;
    if units < 8 {
        return None;
    }
    let (mut zero_even, mut zero_odd) = (0usize, 0usize);
    for pair in head.chunks_exact(2) {
        zero_even += usize::from(pair[0] == 0);
        zero_odd += usize::from(pair[1] == 0);
    }
    let mostly = |n: usize| n * 10 >= units * 9;
    let rarely = |n: usize| n * 20 <= units;
    if mostly(zero_odd) && rarely(zero_even) {
        Some(false)
    } else if mostly(zero_even) && rarely(zero_odd) {
        Some(true)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn control_count_matches_its_definition() {
        let slow = |h: &[u8]| {
            h.iter()
                .filter(|b| matches!(b, 0x01..=0x08 | 0x0E..=0x1A | 0x1C..=0x1F | 0x7F))
                .count()
        };
        for b in 0..=255u8 {
            assert_eq!(count_controls(&[b]), slow(&[b]), "byte {b:#04x}");
        }
        // Longer than one 255-byte lane, all control bytes (no u8 overflow).
        let all: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        assert_eq!(count_controls(&all), slow(&all));
        let ctrl = vec![0x01u8; 1000];
        assert_eq!(count_controls(&ctrl), 1000);
    }

    #[test]
    fn text_and_binary() {
        assert_eq!(text_kind(b"API_KEY=abc\n\tx\r\n"), TextKind::Text);
        assert_eq!(text_kind(b""), TextKind::Text);
        assert_eq!(text_kind("héllo wörld".as_bytes()), TextKind::Text);
        assert_eq!(text_kind(b"\x1b[31mred\x1b[0m log"), TextKind::Text);
        assert!(matches!(text_kind(b"abc\0def"), TextKind::Binary(_)));
        assert!(matches!(
            text_kind(&[1, 2, 3, 4, 5, 6, b'a', b'b']),
            TextKind::Binary("mostly control bytes")
        ));
        assert!(matches!(
            text_kind(b"BZh91AY&SY"),
            TextKind::Binary("bzip2-compressed data (not decoded)")
        ));
    }

    #[test]
    fn utf16_detection() {
        let mut bom = vec![0xFF, 0xFE];
        bom.extend(utf16le("password=hunter2"));
        assert_eq!(
            text_kind(&bom),
            TextKind::Utf16 {
                big_endian: false,
                skip: 2
            }
        );
        assert_eq!(
            text_kind(&utf16le("token: abcdefghijkl")),
            TextKind::Utf16 {
                big_endian: false,
                skip: 0
            }
        );
        let be: Vec<u8> = "token: abcdefghijkl"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert_eq!(
            text_kind(&be),
            TextKind::Utf16 {
                big_endian: true,
                skip: 0
            }
        );
        assert!(matches!(
            text_kind(&[0xFF, 0xFE, 0, 0, b'a', 0, 0, 0]),
            TextKind::Binary(_)
        ));
    }

    #[test]
    fn archive_magic() {
        assert_eq!(
            archive_kind(b"PK\x03\x04rest", "x.txt"),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(
            archive_kind(&[0x1f, 0x8b, 8, 0], "noext"),
            Some(ArchiveKind::Gzip)
        );
        assert_eq!(archive_kind(b"plain text", "a.zip"), None);
        let mut ustar = vec![0u8; 512];
        ustar[257..262].copy_from_slice(b"ustar");
        assert_eq!(archive_kind(&ustar, "x"), Some(ArchiveKind::Tar));
    }

    #[test]
    fn v7_tar_needs_name_hint_and_checksum() {
        let mut h = vec![0u8; 512];
        h[..5].copy_from_slice(b"a.txt");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum::<u32>() + 8 * u32::from(b' ');
        let field = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(field.as_bytes());
        assert!(is_tar_header(&h, true));
        assert!(!is_tar_header(&h, false));
        h[0] = b'b';
        assert!(!is_tar_header(&h, true), "checksum must match");
    }

    #[test]
    fn names() {
        assert_eq!(file_name("a.zip!dir/x.jar"), "x.jar");
        assert_eq!(gunzipped_name("logs/app.log.gz"), "app.log");
        assert_eq!(gunzipped_name("x.TGZ"), "x.tar");
        assert_eq!(gunzipped_name("blob"), "blob.out");
        assert!(has_zip_extension("dir/app.JAR"));
        assert!(!has_zip_extension("dir/app.jar.txt"));
    }
}
