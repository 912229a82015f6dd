//! MNIST-like data sets in memory: images kept as `u8`, labels as class indices.

// The bytes parsed here come from users: nothing about them is unwrapped or expected.
#![cfg_attr(not(test), deny(clippy::expect_used))]

use std::path::Path;

use ndarray::Array2;

use super::idx::read_idx;
use crate::error::{Error, Result};

/// One split (train or test) of an image-classification data set.
///
/// Images stay as bytes (60,000 × 784 bytes = 47 MB for MNIST, a quarter of `f32`); batches
/// are gathered and normalised on demand (see [`crate::data::Batch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Pixels `(N, rows·cols)`, row-major per image, 0 = background, 255 = ink.
    pub images: Array2<u8>,
    /// Class index per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images at `indices`, in that order, as a new split.
    ///
    /// # Panics
    /// When an index is out of range.
    #[track_caller]
    pub fn select(&self, indices: &[usize]) -> Split {
        Split {
            images: self.images.select(ndarray::Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// How many images each class has, for classes `0..classes`.
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Reads and cross-checks an image file and a label file.
    ///
    /// # Errors
    /// When either file is invalid, the images are not `(N, rows, cols)`, the counts differ,
    /// or a label is not below `classes`.
    pub fn from_idx_bytes(
        images: (&[u8], &Path),
        labels: (&[u8], &Path),
        classes: usize,
    ) -> Result<Split> {
        let image_idx = super::idx::parse_idx(images.0, images.1)?;
        let label_idx = super::idx::parse_idx(labels.0, labels.1)?;
        Self::from_idx(image_idx, images.1, label_idx, labels.1, classes)
    }

    /// [`from_idx_bytes`](Self::from_idx_bytes) for files on disk.
    ///
    /// # Errors
    /// As `from_idx_bytes`, and when a file cannot be read.
    pub fn read(images: &Path, labels: &Path, classes: usize) -> Result<Split> {
        Self::from_idx(
            read_idx(images)?,
            images,
            read_idx(labels)?,
            labels,
            classes,
        )
    }

    fn from_idx(
        images: super::idx::Idx,
        images_path: &Path,
        labels: super::idx::Idx,
        labels_path: &Path,
        classes: usize,
    ) -> Result<Split> {
        let &[n, rows, cols] = images.dims.as_slice() else {
            return Err(Error::Idx {
                path: images_path.to_path_buf(),
                what: format!(
                    "expected images of shape (count, rows, cols), found {} dimensions {:?}",
                    images.dims.len(),
                    images.dims
                ),
            });
        };
        let &[n_labels] = labels.dims.as_slice() else {
            return Err(Error::Idx {
                path: labels_path.to_path_buf(),
                what: format!(
                    "expected labels of shape (count,), found {} dimensions {:?}",
                    labels.dims.len(),
                    labels.dims
                ),
            });
        };
        if n != n_labels {
            return Err(Error::Idx {
                path: labels_path.to_path_buf(),
                what: format!(
                    "{n_labels} labels for {n} images in {}; the two files must have the same count",
                    images_path.display()
                ),
            });
        }
        if let Some((i, &l)) = labels
            .data
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= classes)
        {
            return Err(Error::Idx {
                path: labels_path.to_path_buf(),
                what: format!(
                    "label {l} of item {i} is out of range: expected a class in 0..{classes}"
                ),
            });
        }
        let images =
            Array2::from_shape_vec((n, rows * cols), images.data).map_err(|e| Error::Idx {
                path: images_path.to_path_buf(),
                what: format!("images of {n}×{rows}×{cols} bytes: {e}"),
            })?;
        Ok(Split {
            images,
            labels: labels.data,
            rows,
            cols,
        })
    }
}

/// A data set: a training and a test split, with class names and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The data set's name (`mnist`, `fashion-mnist`, or the folder it was read from).
    pub name: String,
    /// Where it was read from, for reports.
    pub source: String,
    /// The training split.
    pub train: Split,
    /// The test split.
    pub test: Split,
    /// The name of each class.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Pixels per image (the input width of a net).
    pub fn input_size(&self) -> usize {
        self.train.rows * self.train.cols
    }

    /// The first `train` training images and the first `test` test images (fewer when a
    /// split is smaller), as the book's experiments do with `x_train[:300]`.
    pub fn subset(&self, train: usize, test: usize) -> Dataset {
        let first =
            |split: &Split, n: usize| split.select(&(0..n.min(split.len())).collect::<Vec<_>>());
        Dataset {
            name: self.name.clone(),
            source: self.source.clone(),
            train: first(&self.train, train),
            test: first(&self.test, test),
            class_names: self.class_names.clone(),
        }
    }

    /// A validation split taken from the training set (§6.5.1): the training images are
    /// shuffled with a ChaCha8 RNG seeded with `seed`, the first `⌊fraction · N⌋` become the
    /// returned data set's `test` split and the rest its `train` split. The real test set is
    /// not used, so hyper-parameters tuned on the result do not overfit it.
    ///
    /// # Errors
    /// When `fraction` is not in `(0, 1)` or leaves either split empty.
    pub fn validation_split(&self, fraction: f64, seed: u64) -> Result<Dataset> {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let n = self.train.len();
        let held = (fraction * n as f64).floor() as usize;
        if !(fraction > 0.0 && fraction < 1.0) || held == 0 || held == n {
            return Err(Error::Invalid(format!(
                "a validation fraction of {fraction} of {n} training images leaves an empty split; use a fraction in (0, 1) and enough images"
            )));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        Ok(Dataset {
            name: format!("{} (validation split)", self.name),
            source: self.source.clone(),
            test: self.train.select(&order[..held]),
            train: self.train.select(&order[held..]),
            class_names: self.class_names.clone(),
        })
    }
}
