//! The error type for everything a user controls: files, data sets, net specs, flags.
//!
//! Programmer misuse of the library API (a shape mismatch between layers, `backward` before
//! `forward`) panics instead, with the layer and both shapes named; see each item's `# Panics`.

use std::path::PathBuf;

/// What went wrong, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file is not a valid IDX file, or not the IDX file that was expected.
    #[error("{}: {what}", path.display())]
    Idx {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        what: String,
    },
    /// A model or checkpoint file is invalid, or does not fit what it is used with.
    #[error("{}: {what}", path.display())]
    Model {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        what: String,
    },
    /// A net specification such as `784-100-10` could not be understood.
    #[error("invalid net spec {spec:?}: {why}")]
    Spec {
        /// The text as given.
        spec: String,
        /// What is wrong and what a valid spec looks like.
        why: String,
    },
    /// A data set was not found where it was looked for.
    #[error("{0}")]
    DatasetNotFound(String),
    /// A downloaded or cached file does not have its pinned SHA-256.
    #[error("{file}: SHA-256 mismatch (expected {expected}, found {found})")]
    Checksum {
        /// The file name.
        file: String,
        /// The pinned digest.
        expected: String,
        /// The digest of what arrived.
        found: String,
    },
    /// A download failed on every mirror.
    #[error("{0}")]
    Download(String),
    /// The loss became NaN or infinite during training.
    #[error(
        "training diverged at iteration {iteration}: the loss became {loss}; try a smaller learning rate (--lr)"
    )]
    Diverged {
        /// The iteration (0-based) whose loss was not finite.
        iteration: usize,
        /// The loss value (NaN or ±inf).
        loss: f64,
    },
    /// A value given by the user is out of its valid range.
    #[error("{0}")]
    Invalid(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Model`] for `path`: what is wrong with the file and what to do.
    pub fn model(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            what: what.into(),
        }
    }
}
