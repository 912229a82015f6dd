//! Compressed data files, told apart by their first bytes, not by their names: gzip (what the
//! MNIST mirrors serve) and xz (the built-in copy, 20 % smaller, see `tools/compress_mnist.sh`).

use std::io::{BufRead, Read};

/// The largest xz dictionary decoded (64 MiB, in KiB): the built-in files use 32 MiB, `xz -9`
/// 64 MiB; a header that asks for more is refused before anything is allocated.
const XZ_DICTIONARY_LIMIT_KIB: u32 = 64 * 1024;

/// What the decoder needs besides its dictionary (lzma-rust2 counts about 100 KiB), in KiB.
const XZ_DECODER_OVERHEAD_KIB: u32 = 1024;

/// How a file's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// Not compressed.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// xz (the `.xz` container of LZMA2).
    Xz,
}

impl Compression {
    /// What `head`, the first bytes of a file, says the file is.
    pub(crate) fn of(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    /// The name in messages: `gzip`, `xz`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
        }
    }
}

/// What went wrong reading `compression` data, for a message: corrupt data, or an xz header
/// whose dictionary is larger than [`XZ_DICTIONARY_LIMIT_KIB`].
pub(crate) fn failure(compression: Compression, source: &std::io::Error) -> String {
    match (compression, source.kind()) {
        (Compression::Xz, std::io::ErrorKind::OutOfMemory) => format!(
            "xz data whose dictionary needs more than {} MiB; recompress it with xz -9 or less",
            XZ_DICTIONARY_LIMIT_KIB / 1024
        ),
        _ => format!("corrupt {} data: {source}", compression.name()),
    }
}

/// The content of `reader`, decompressed when its first bytes say it is compressed; the
/// compression found. A corrupt stream shows as an I/O error of the reader returned.
///
/// # Errors
/// When the first bytes cannot be read.
pub(crate) fn decompressed<'r>(
    mut reader: impl BufRead + 'r,
) -> std::io::Result<(Box<dyn Read + 'r>, Compression)> {
    let compression = Compression::of(reader.fill_buf()?);
    let content: Box<dyn Read> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::GzDecoder::new(reader)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            reader,
            false,
            XZ_DICTIONARY_LIMIT_KIB + XZ_DECODER_OVERHEAD_KIB,
        )),
    };
    Ok((content, compression))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn content(bytes: &[u8]) -> (Vec<u8>, Compression) {
        let (mut reader, found) = decompressed(bytes).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (out, found)
    }

    fn built_in_labels() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/mnist/t10k-labels-idx1-ubyte.xz"
        );
        std::fs::read(path).unwrap()
    }

    /// gzip and plain bytes give the same content, told apart by their bytes alone; the xz
    /// file of the built-in copy decodes to the original file, whose SHA-256 is pinned.
    #[test]
    fn each_form_decodes_to_its_content() {
        let plain = b"\x00\x00\x08\x01\x00\x00\x00\x03abc".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(content(&plain), (plain.clone(), Compression::None));
        assert_eq!(content(&gz), (plain, Compression::Gzip));
        let (labels, found) = content(&built_in_labels());
        assert_eq!(found, Compression::Xz);
        let digest = sha2::Sha256::digest(&labels);
        assert_eq!(
            super::super::hex(&digest),
            crate::data::Known::Mnist.sha256()[3]
        );
    }

    /// A flipped byte in an xz stream is an error, not silently different content.
    #[test]
    fn corrupt_xz_is_an_error() {
        let mut bad = built_in_labels();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        let (mut reader, _) = decompressed(&bad[..]).unwrap();
        assert!(reader.read_to_end(&mut Vec::new()).is_err());
    }
}
