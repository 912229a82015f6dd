//! The IDX file format of MNIST and Fashion-MNIST, raw or compressed (gzip, xz).
//!
//! ```text
//! offset 0  u8 0, u8 0, u8 type (0x08 = unsigned byte), u8 ndim
//! offset 4  ndim × u32 big-endian dimension sizes
//! then      the items in row-major order
//! ```
//!
//! Everything is checked before it is trusted: the magic bytes, the element type, the number
//! of dimensions, and the dimensions against the data that is actually there. The payload is
//! read as it arrives, never preallocated from the header, so a header that claims billions of
//! items costs nothing until the bytes exist.

// The bytes parsed here come from users: nothing about them is unwrapped or expected.
#![cfg_attr(not(test), deny(clippy::expect_used))]

use std::io::{BufRead, Read};
use std::path::Path;

use super::compressed::{Compression, decompressed, failure};
use crate::error::{Error, Result};

/// The largest payload accepted: 4 GiB, far beyond any data set this crate trains on.
const MAX_PAYLOAD: u64 = 4 << 30;

/// A parsed IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The dimension sizes, outermost first.
    pub dims: Vec<usize>,
    /// The items in row-major order; `dims.iter().product()` of them.
    pub data: Vec<u8>,
}

/// Reads an IDX file, compressed or not (told apart by content, not by name), as it
/// streams from disk: the items are the only copy held in memory.
///
/// # Errors
/// When the file cannot be read or is not a valid IDX file of unsigned bytes; the error
/// names the file and what was expected and found.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    parse_reader(std::io::BufReader::new(file), len, path)
}

/// Parses IDX `bytes` (raw, gzip or xz); `path` only names the file in errors.
///
/// # Errors
/// As [`read_idx`].
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<Idx> {
    parse_reader(bytes, bytes.len() as u64, path)
}

/// Parses `len` bytes of IDX from `reader`, decompressing them first when their first bytes
/// say they are gzip or xz.
fn parse_reader(reader: impl BufRead, len: u64, path: &Path) -> Result<Idx> {
    let (mut content, compression) = decompressed(reader).map_err(|e| Error::io(path, e))?;
    if compression == Compression::None {
        return parse_stream(content, Some(len), path);
    }
    let corrupt = |source| Error::Idx {
        path: path.to_path_buf(),
        what: failure(compression, &source),
    };
    match parse_stream(&mut content, None, path) {
        Err(Error::Io { source, .. }) => Err(corrupt(source)),
        // A payload of the wrong length may be the work of a corrupt stream: its checksum,
        // at the end, tells (read to the end without keeping anything).
        Err(mismatch) => match std::io::copy(&mut content, &mut std::io::sink()) {
            Err(source) => Err(corrupt(source)),
            Ok(_) => Err(mismatch),
        },
        parsed => parsed,
    }
}

/// Parses an IDX stream; `len` is its total length when known (uncompressed files).
fn parse_stream(mut stream: impl Read, len: Option<u64>, path: &Path) -> Result<Idx> {
    let invalid = |what: String| Error::Idx {
        path: path.to_path_buf(),
        what,
    };
    let io = |e| Error::io(path, e);

    let mut magic = [0u8; 4];
    let got = read_up_to(&mut stream, &mut magic).map_err(io)?;
    if got < 4 {
        return Err(invalid(format!(
            "too short for an IDX header: {got} bytes; an IDX file starts with 4 magic bytes"
        )));
    }
    if magic[..2] != [0, 0] {
        return Err(invalid(format!(
            "not an IDX file: it starts with bytes {:02x} {:02x}, expected 00 00 (IDX magic number)",
            magic[0], magic[1]
        )));
    }
    if magic[2] != 0x08 {
        return Err(invalid(format!(
            "element type 0x{:02x} ({}) is not supported: image and label files hold unsigned bytes (0x08)",
            magic[2],
            type_name(magic[2])
        )));
    }
    let ndim = usize::from(magic[3]);
    if !(1..=4).contains(&ndim) {
        return Err(invalid(format!(
            "{ndim} dimensions in the header; expected 1 to 4"
        )));
    }

    let mut header = vec![0u8; 4 * ndim];
    let got = read_up_to(&mut stream, &mut header).map_err(io)?;
    if got < header.len() {
        return Err(invalid(format!(
            "truncated header: {ndim} dimension sizes need {} bytes, found {got}",
            header.len()
        )));
    }
    let dims: Vec<usize> = header
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= MAX_PAYLOAD)
        .ok_or_else(|| {
            invalid(format!(
                "the header claims dimensions {dims:?}, more than {MAX_PAYLOAD} items"
            ))
        })?;

    let header_len = 4 + 4 * ndim as u64;
    if let Some(len) = len {
        let found = len.saturating_sub(header_len);
        if found != expected {
            return Err(invalid(length_mismatch(&dims, expected, found)));
        }
    }
    // The exact size once the real length has confirmed it (one more byte shows trailing
    // data); grown as the bytes arrive otherwise.
    let mut data = Vec::with_capacity(len.map_or(0, |_| expected as usize + 1));
    stream
        .take(expected + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 != expected {
        let found = data.len() as u64;
        return Err(invalid(length_mismatch(&dims, expected, found)));
    }
    Ok(Idx { dims, data })
}

/// The message for a payload whose length does not match the header.
fn length_mismatch(dims: &[usize], expected: u64, found: u64) -> String {
    if found < expected {
        format!(
            "truncated: the header says {dims:?} = {expected} bytes of data, but only {found} follow"
        )
    } else {
        format!(
            "the header says {dims:?} = {expected} bytes of data, but more follow (trailing bytes)"
        )
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_up_to(stream: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The IDX names of element types, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown",
    }
}

/// Builds IDX bytes of unsigned bytes: the inverse of [`parse_idx`] for uncompressed data.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parse(bytes: &[u8]) -> Result<Idx> {
        parse_idx(bytes, Path::new("x.idx"))
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_hand_made_files_raw_and_gzipped() {
        let bytes = [
            0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 10, 20, 30, 40,
        ];
        let expected = Idx {
            dims: vec![2, 1, 2],
            data: vec![10, 20, 30, 40],
        };
        assert_eq!(parse(&bytes).unwrap(), expected);
        assert_eq!(parse(&gzip(&bytes)).unwrap(), expected);
        assert_eq!(encode_idx(&[2, 1, 2], &[10, 20, 30, 40]), bytes);
    }

    #[test]
    fn each_malformed_file_gets_its_own_message() {
        let err = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert_eq!(
            err(&[]),
            "x.idx: too short for an IDX header: 0 bytes; an IDX file starts with 4 magic bytes"
        );
        assert_eq!(
            err(b"PK\x03\x04rest"),
            "x.idx: not an IDX file: it starts with bytes 50 4b, expected 00 00 (IDX magic number)"
        );
        assert_eq!(
            err(&[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
            "x.idx: element type 0x0d (f32) is not supported: image and label files hold unsigned bytes (0x08)"
        );
        assert_eq!(
            err(&[0, 0, 8, 0]),
            "x.idx: 0 dimensions in the header; expected 1 to 4"
        );
        assert_eq!(
            err(&[0, 0, 8, 2, 0, 0, 0, 1]),
            "x.idx: truncated header: 2 dimension sizes need 8 bytes, found 4"
        );
        assert_eq!(
            err(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2]),
            "x.idx: truncated: the header says [3] = 3 bytes of data, but only 2 follow"
        );
        assert_eq!(
            err(&[0, 0, 8, 1, 0, 0, 0, 1, 1, 2]),
            "x.idx: the header says [1] = 1 bytes of data, but more follow (trailing bytes)"
        );
    }

    #[test]
    fn giant_headers_fail_without_allocating() {
        // 4 × 0xffffffff items: more than the limit, refused from the header alone.
        let giant = [
            0, 0, 8, 4, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
            255,
        ];
        assert!(
            parse(&giant)
                .unwrap_err()
                .to_string()
                .contains("more than 4294967296 items")
        );
        assert!(
            parse(&gzip(&giant))
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
        // 2³² − 1 items claimed by a 12-byte gzipped file: read as it arrives, then refused.
        let big = gzip(&[0, 0, 8, 1, 255, 255, 255, 255, 7, 7, 7, 7]);
        assert_eq!(
            parse(&big).unwrap_err().to_string(),
            "x.idx: truncated: the header says [4294967295] = 4294967295 bytes of data, but only 4 follow"
        );
    }

    #[test]
    fn corrupt_gzip_is_reported_as_such() {
        let mut bytes = gzip(&encode_idx(&[100], &[3; 100]));
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        bytes.truncate(n - 3);
        let msg = parse(&bytes).unwrap_err().to_string();
        assert!(msg.starts_with("x.idx: corrupt gzip data: "), "{msg}");
    }

    #[test]
    fn a_corrupt_stream_of_the_wrong_length_is_called_corrupt_not_mislabelled() {
        // Every byte of the deflate data flipped in turn, the stream otherwise whole: whatever
        // length comes out, the checksum at the end says the stream is corrupt.
        let good = gzip(&encode_idx(
            &[2, 50],
            &(0..100).map(|i| i as u8).collect::<Vec<_>>(),
        ));
        for at in 10..good.len() - 8 {
            let mut bytes = good.clone();
            bytes[at] ^= 0x55;
            let msg = parse(&bytes).unwrap_err().to_string();
            assert!(
                msg.starts_with("x.idx: corrupt gzip data: "),
                "byte {at}: {msg}"
            );
        }
    }
}
