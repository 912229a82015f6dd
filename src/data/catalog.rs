//! The data sets known by name, their pinned checksums and mirrors, and where they are looked for.

// The bytes parsed here come from users: nothing about them is unwrapped or expected.
#![cfg_attr(not(test), deny(clippy::expect_used))]

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The four files of an MNIST-like data set under their standard names (without `.gz`).
pub const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// A data set this crate knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Known {
    /// MNIST handwritten digits (LeCun, Cortes, Burges; CC BY-SA 3.0).
    Mnist,
    /// Fashion-MNIST clothing images (Zalando Research; MIT licence).
    FashionMnist,
}

impl Known {
    /// Every known data set.
    pub const ALL: [Known; 2] = [Known::Mnist, Known::FashionMnist];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Known::Mnist => "mnist",
            Known::FashionMnist => "fashion-mnist",
        }
    }

    /// SHA-256 of each file's *uncompressed* content, in [`FILE_NAMES`] order.
    ///
    /// Pinned on the content rather than the `.gz` bytes, so a file recompressed by a mirror
    /// or a distribution (Debian's `dataset-fashion-mnist` is) still verifies.
    pub fn sha256(self) -> [&'static str; 4] {
        match self {
            Known::Mnist => [
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ],
            Known::FashionMnist => [
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ],
        }
    }

    /// Public mirrors serving `<mirror><file>.gz`, tried in order.
    pub fn mirrors(self) -> &'static [&'static str] {
        match self {
            Known::Mnist => &[
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
            ],
            Known::FashionMnist => &[
                "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ],
        }
    }

    /// The class names, index 0 first.
    pub fn class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            Known::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Known::FashionMnist => &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Folders searched, in order, after the built-in copy: a system folder (Debian's
    /// `dataset-fashion-mnist` installs to `/usr/share/datasets/fashion-mnist`), then the
    /// user cache that `backprop data fetch` fills.
    pub fn search_dirs(self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        match self {
            Known::Mnist => dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")),
            Known::FashionMnist => dirs.push(PathBuf::from("/usr/share/datasets/fashion-mnist")),
        }
        if let Some(cache) = cache_dir() {
            dirs.push(cache.join(self.name()));
        }
        dirs
    }
}

impl FromStr for Known {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Known::ALL
            .into_iter()
            .find(|k| k.name() == name.to_ascii_lowercase())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown dataset {name:?}: expected mnist or fashion-mnist (or --data-dir DIR for other IDX files)"
                ))
            })
    }
}

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The user cache for downloaded data sets: `$BACKPROP_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/backprop`, else `~/.cache/backprop`.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("BACKPROP_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("backprop")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/backprop")))
}

/// The four files in `dir`, each as `NAME.gz`, `NAME.xz` or `NAME`, or the first one missing.
///
/// # Errors
/// Naming the first file that is in none of these forms.
pub fn files_in(dir: &Path) -> Result<[PathBuf; 4]> {
    let mut found: [PathBuf; 4] = Default::default();
    for (slot, name) in found.iter_mut().zip(FILE_NAMES) {
        let forms = [format!("{name}.gz"), format!("{name}.xz"), name.to_string()];
        *slot = forms
            .iter()
            .map(|form| dir.join(form))
            .find(|path| path.is_file())
            .ok_or_else(|| {
                Error::DatasetNotFound(format!(
                    "{} has no {name}.gz, {name}.xz or {name}; a data folder holds {}",
                    dir.display(),
                    FILE_NAMES.join(", ")
                ))
            })?;
    }
    Ok(found)
}
