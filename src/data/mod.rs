//! Data: the IDX reader, MNIST and Fashion-MNIST by name, checked downloads, and batches.
//!
//! MNIST is built in (behind the default `embedded-mnist` feature), so training works offline
//! from any directory. Other data sets are looked for, in order, in `--data-dir`, a system
//! folder, and the user cache that `backprop data fetch` fills ([`Known::search_dirs`]).
//!
//! ```no_run
//! let mnist = backprop::data::load(None, None)?;
//! assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
//! # Ok::<(), backprop::Error>(())
//! ```

mod batch;
mod catalog;
mod compressed;
mod dataset;
mod digitize;
#[cfg(feature = "download")]
mod download;
mod idx;

pub(crate) use batch::prefetch;
pub use batch::{Batch, Sampler, Sampling, one_hot};
pub use catalog::{FILE_NAMES, Known, cache_dir, files_in};
pub use dataset::{Dataset, Split};
pub use digitize::{digitize, digitize_bytes, digitize_file};
#[cfg(feature = "download")]
pub use download::fetch;
pub use idx::{Idx, encode_idx, parse_idx, read_idx};

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Where a data set's files were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The copy of MNIST compiled into the binary.
    BuiltIn,
    /// A folder holding the four files.
    Dir(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BuiltIn => f.write_str("built in"),
            Source::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// The MNIST files compiled into the binary, in [`FILE_NAMES`] order, xz-compressed
/// (`tools/compress_mnist.sh`).
#[cfg(feature = "embedded-mnist")]
static BUILT_IN_MNIST: [&[u8]; 4] = [
    include_bytes!("../../data/mnist/train-images-idx3-ubyte.xz"),
    include_bytes!("../../data/mnist/train-labels-idx1-ubyte.xz"),
    include_bytes!("../../data/mnist/t10k-images-idx3-ubyte.xz"),
    include_bytes!("../../data/mnist/t10k-labels-idx1-ubyte.xz"),
];

/// Finds a known data set: the built-in copy for MNIST, else the first of its
/// [search folders](Known::search_dirs) that holds all four files.
///
/// # Errors
/// When no copy is found; the message lists where it looked and how to get one.
pub fn locate(known: Known) -> Result<Source> {
    if cfg!(feature = "embedded-mnist") && known == Known::Mnist {
        return Ok(Source::BuiltIn);
    }
    let dirs = known.search_dirs();
    if let Some(dir) = dirs.iter().find(|d| files_in(d).is_ok()) {
        return Ok(Source::Dir(dir.clone()));
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let debian = if known == Known::FashionMnist {
        ", install the Debian package dataset-fashion-mnist"
    } else {
        ""
    };
    Err(Error::DatasetNotFound(format!(
        "{known} was not found (looked in {}): run `backprop data fetch {known}`{debian}, or pass --data-dir DIR",
        looked.join(", ")
    )))
}

/// Loads a data set: `known` (default MNIST) from where [`locate`] finds it, or the four IDX
/// files in `data_dir` when given. A folder of unknown data gets classes `0..=max label`.
///
/// # Errors
/// When the files are missing or invalid, or the train and test images differ in size.
pub fn load(known: Option<Known>, data_dir: Option<&Path>) -> Result<Dataset> {
    let source = match data_dir {
        Some(dir) => Source::Dir(dir.to_path_buf()),
        None => locate(known.unwrap_or(Known::Mnist))?,
    };
    let (train, test) = match &source {
        Source::BuiltIn => read_built_in()?,
        Source::Dir(dir) => {
            let [train_x, train_t, test_x, test_t] = files_in(dir)?;
            (
                Split::read(&train_x, &train_t, u8::MAX as usize + 1)?,
                Split::read(&test_x, &test_t, u8::MAX as usize + 1)?,
            )
        }
    };
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(Error::Invalid(format!(
            "{source}: training images are {}×{} but test images are {}×{}",
            train.rows, train.cols, test.rows, test.cols
        )));
    }
    let max_label = train
        .labels
        .iter()
        .chain(&test.labels)
        .copied()
        .max()
        .unwrap_or(0);
    let class_names = match (known, data_dir) {
        (Some(k), _) => k.class_names(),
        (None, None) => Known::Mnist.class_names(),
        (None, Some(_)) => (0..=max_label).map(|c| c.to_string()).collect(),
    };
    if usize::from(max_label) >= class_names.len() {
        return Err(Error::Invalid(format!(
            "{source}: label {max_label} is out of range for {} classes",
            class_names.len()
        )));
    }
    let name = match (known, data_dir) {
        (Some(k), _) => k.name().to_string(),
        (None, None) => Known::Mnist.name().to_string(),
        (None, Some(dir)) => dir.display().to_string(),
    };
    Ok(Dataset {
        name,
        source: source.to_string(),
        train,
        test,
        class_names,
    })
}

#[cfg(feature = "embedded-mnist")]
fn read_built_in() -> Result<(Split, Split)> {
    let named = |i: usize| (BUILT_IN_MNIST[i], Path::new(FILE_NAMES[i]));
    // The training images take most of the decoding time; the test split decodes beside them.
    let (train, test) = rayon::join(
        || Split::from_idx_bytes(named(0), named(1), 10),
        || Split::from_idx_bytes(named(2), named(3), 10),
    );
    Ok((train?, test?))
}

#[cfg(not(feature = "embedded-mnist"))]
fn read_built_in() -> Result<(Split, Split)> {
    unreachable!("locate never returns BuiltIn without the embedded-mnist feature")
}

/// SHA-256 (hex) of a file's content, decompressed first when it is gzip or xz.
///
/// # Errors
/// When the file cannot be read or its compressed data is corrupt.
pub fn content_sha256(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    content_digest(std::io::BufReader::new(file)).map_err(|e| Error::io(path, e))
}

/// SHA-256 (hex) of what `reader` holds, decompressed.
fn content_digest(reader: impl std::io::BufRead) -> std::io::Result<String> {
    let (mut content, _) = compressed::decompressed(reader)?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match content.read(&mut chunk)? {
            0 => return Ok(hex(&hasher.finalize())),
            n => hasher.update(&chunk[..n]),
        }
    }
}

/// Lower-case hexadecimal.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether each file of `known` at `source` has its pinned content checksum.
///
/// # Errors
/// When a file cannot be read at all.
pub fn verify(known: Known, source: &Source) -> Result<Vec<(String, bool)>> {
    let mut out = Vec::with_capacity(4);
    for (i, name) in FILE_NAMES.iter().enumerate() {
        let digest = match source {
            #[cfg(feature = "embedded-mnist")]
            Source::BuiltIn => {
                content_digest(BUILT_IN_MNIST[i]).map_err(|e| Error::io(*name, e))?
            }
            #[cfg(not(feature = "embedded-mnist"))]
            Source::BuiltIn => String::new(),
            Source::Dir(dir) => content_sha256(&files_in(dir)?[i])?,
        };
        out.push((name.to_string(), digest == known.sha256()[i]));
    }
    Ok(out)
}
