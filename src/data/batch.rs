//! Mini-batches: indices drawn by a seeded sampler, images gathered from `u8` storage and
//! normalised to `[0, 1]` into a reusable float buffer.

use std::any::Any;

use ndarray::{Array2, NdFloat};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Split;

/// How the examples of each mini-batch are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Sampling {
    /// Uniformly with replacement, independently per batch: the book's
    /// `np.random.choice(train_size, batch_size)`.
    WithReplacement,
    /// Epochs of a shuffled permutation, each example once per epoch.
    ShuffledEpochs,
}

/// Draws the indices of mini-batches from a ChaCha8 RNG seeded once, so a seed fixes every batch.
///
/// Serialises with its exact position (for checkpoints), so a restored sampler continues with
/// the very batches the original would have drawn.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sampler {
    sampling: Sampling,
    n: usize,
    rng: ChaCha8Rng,
    /// The current permutation and the position in it (`ShuffledEpochs`).
    order: Vec<usize>,
    next: usize,
}

impl Sampler {
    /// A sampler over `n` examples, drawing from stream 1 of ChaCha8 seeded with `seed`, so
    /// that a net initialised from the same seed (stream 0) gets independent numbers.
    pub fn new(sampling: Sampling, n: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        Sampler {
            sampling,
            n,
            rng,
            order: Vec::new(),
            next: 0,
        }
    }

    /// The number of examples sampled from.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there is nothing to sample from.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The indices the next [`next_batch`](Self::next_batch) of `size` will give, without
    /// moving on; with `ShuffledEpochs`, only those before the end of the permutation.
    pub fn upcoming(&self, size: usize, out: &mut Vec<usize>) {
        out.clear();
        match self.sampling {
            Sampling::WithReplacement => {
                let mut rng = self.rng.clone();
                out.extend((0..size).map(|_| rng.random_range(0..self.n)));
            }
            Sampling::ShuffledEpochs => {
                let end = (self.next + size).min(self.order.len());
                out.extend_from_slice(&self.order[self.next..end]);
            }
        }
    }

    /// Fills `out` with the indices of the next batch of `size`.
    ///
    /// With `ShuffledEpochs`, a batch that reaches the end of the permutation is completed
    /// from a freshly shuffled one.
    pub fn next_batch(&mut self, size: usize, out: &mut Vec<usize>) {
        out.clear();
        match self.sampling {
            Sampling::WithReplacement => {
                out.extend((0..size).map(|_| self.rng.random_range(0..self.n)))
            }
            Sampling::ShuffledEpochs => {
                while out.len() < size {
                    if self.next == self.order.len() {
                        self.order.clear();
                        self.order.extend(0..self.n);
                        self.order.shuffle(&mut self.rng);
                        self.next = 0;
                    }
                    let take = (size - out.len()).min(self.order.len() - self.next);
                    out.extend_from_slice(&self.order[self.next..self.next + take]);
                    self.next += take;
                }
            }
        }
    }
}

/// A mini-batch: inputs `x` `(N, D)` normalised to `[0, 1]`, and class indices `t`.
///
/// Reuse one `Batch` across iterations: [`gather`](Self::gather) only reallocates when the
/// batch size changes.
#[derive(Debug, Clone)]
pub struct Batch<A> {
    /// Pixels divided by 255, `(N, D)`.
    pub x: Array2<A>,
    /// Class index per example.
    pub t: Vec<usize>,
}

impl<A: NdFloat> Default for Batch<A> {
    fn default() -> Self {
        Batch {
            x: Array2::zeros((0, 0)),
            t: Vec::new(),
        }
    }
}

impl<A: NdFloat> Batch<A> {
    /// Copies the examples `indices` of `split` into this batch, `x = pixel / 255`.
    ///
    /// # Panics
    /// When an index is out of range.
    pub fn gather(&mut self, split: &Split, indices: &[usize]) {
        let d = split.images.ncols();
        if self.x.dim() != (indices.len(), d) {
            self.x = Array2::zeros((indices.len(), d));
        }
        match (&mut self.x as &mut dyn Any).downcast_mut::<Array2<f32>>() {
            Some(x) => copy_normalised(split, indices, x, normalise_f32),
            None => copy_normalised(split, indices, &mut self.x, normalise),
        }
        self.t.clear();
        self.t
            .extend(indices.iter().map(|&i| usize::from(split.labels[i])));
    }
}

/// Asks the CPU to start loading the images `indices` of `split` into its caches, so that
/// gathering them later does not wait for memory: the images of a batch are scattered over
/// the whole set (47 MB for Fashion-MNIST's training split), and waiting for them took 17%
/// of a W2 training step.
pub(crate) fn prefetch(split: &Split, indices: &[usize]) {
    #[cfg(target_arch = "x86_64")]
    for &i in indices {
        let image = split.images.row(i);
        let Some(bytes) = image.as_slice() else {
            return;
        };
        for line in bytes.chunks(64) {
            // SAFETY: a prefetch only hints at an address, here one inside a live slice; it
            // cannot fault and changes no state the program sees.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                    line.as_ptr().cast(),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (split, indices);
}

/// Copies the images `indices` of `split` into the rows of `x`, each through `normalise`.
fn copy_normalised<A: NdFloat>(
    split: &Split,
    indices: &[usize],
    x: &mut Array2<A>,
    normalise: impl Fn(&[u8], &mut [A]),
) {
    for (mut row, &i) in x.rows_mut().into_iter().zip(indices) {
        let dst = row
            .as_slice_mut()
            .expect("rows of a standard-layout batch are contiguous");
        let src = split.images.row(i);
        normalise(src.as_slice().expect("image rows are contiguous"), dst);
    }
}

/// `dst[i] = src[i] / 255`, correctly rounded, for any float type (see [`normalise_f32`]).
fn normalise<A: NdFloat>(src: &[u8], dst: &mut [A]) {
    let scale = A::from(255u8).expect("255 fits");
    for (d, &p) in dst.iter_mut().zip(src) {
        *d = A::from(p).expect("a byte fits") / scale;
    }
}

/// `dst[i] = src[i] / 255` in `f32`, correctly rounded and without a division (a division
/// per pixel took 14% of a W2 training step). With a fused multiply-add: `1/255` is split in
/// two `f32`s, `HI + LO`, and `p·HI + (p·LO)`, rounded once by the FMA, is the correctly
/// rounded quotient for every byte, 16 pixels per two AVX-512 instructions. CPUs without FMA
/// take the `f64` way: `p · (1/255)` in `f64` is within 2⁻⁵³ of `p / 255`, far closer than any
/// `f32` rounding boundary. `p·HI` alone would be wrong for 126 bytes. Both ways are
/// checked against the division for all 256 bytes in the tests. Compiled for AVX-512 and AVX2
/// as well and picked at run time.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn normalise_f32(src: &[u8], dst: &mut [f32]) {
    let quotient = if multiversion::target::target_cfg_f!(target_feature = "fma") {
        quotient_by_fma
    } else {
        quotient_in_f64
    };
    for (d, &p) in dst.iter_mut().zip(src) {
        *d = quotient(p);
    }
}

/// `p / 255` correctly rounded, by a product and a fused multiply-add (see [`normalise_f32`]).
#[inline(always)]
fn quotient_by_fma(p: u8) -> f32 {
    const HI: f32 = 1.0 / 255.0;
    const LO: f32 = (1.0 / 255.0 - HI as f64) as f32; // 1/255 − HI, to f32
    let p = f32::from(p);
    p.mul_add(HI, p * LO)
}

/// `p / 255` correctly rounded, by a product in `f64` (see [`normalise_f32`]).
#[inline(always)]
fn quotient_in_f64(p: u8) -> f32 {
    (f64::from(p) * (1.0 / 255.0)) as f32
}

/// One-hot rows `(N, classes)` for class indices, as the book's `one_hot_label=True` loads them.
///
/// # Panics
/// When a label is not below `classes`.
pub fn one_hot<A: NdFloat>(labels: &[usize], classes: usize) -> Array2<A> {
    crate::functions::Targets::Indices(labels.to_vec()).to_one_hot(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_split() -> Split {
        Split {
            images: ndarray::array![[0u8, 255], [51, 102], [255, 0]],
            labels: vec![2, 0, 1],
            rows: 1,
            cols: 2,
        }
    }

    #[test]
    fn gather_normalises_and_keeps_labels() {
        let mut batch = Batch::<f32>::default();
        batch.gather(&tiny_split(), &[1, 1, 0]);
        assert_eq!(batch.x, ndarray::array![[0.2, 0.4], [0.2, 0.4], [0.0, 1.0]]);
        assert_eq!(batch.t, vec![0, 0, 2]);
    }

    #[test]
    fn every_byte_normalises_to_the_correctly_rounded_quotient() {
        let bytes: Vec<u8> = (0..=255).collect();
        let (mut single, mut double) = (vec![0f32; 256], vec![0f64; 256]);
        normalise_f32(&bytes, &mut single);
        normalise(&bytes, &mut double);
        for p in 0..256 {
            let quotient = p as f32 / 255.0;
            assert_eq!(single[p], quotient, "byte {p}");
            assert_eq!(quotient_by_fma(p as u8), quotient, "byte {p} by FMA");
            assert_eq!(quotient_in_f64(p as u8), quotient, "byte {p} in f64");
            assert_eq!(double[p], p as f64 / 255.0, "byte {p}");
        }
    }

    #[test]
    fn shuffled_epochs_visit_every_example_once_per_epoch() {
        let mut sampler = Sampler::new(Sampling::ShuffledEpochs, 10, 3);
        let mut seen = Vec::new();
        let mut batch = Vec::new();
        for _ in 0..5 {
            sampler.next_batch(4, &mut batch);
            seen.extend_from_slice(&batch);
        }
        let (mut first, mut second) = (seen[..10].to_vec(), seen[10..20].to_vec());
        first.sort();
        second.sort();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        assert_eq!(second, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn upcoming_foretells_the_next_batch_without_drawing_it() {
        for sampling in [Sampling::WithReplacement, Sampling::ShuffledEpochs] {
            let mut sampler = Sampler::new(sampling, 10, 5);
            let (mut foretold, mut drawn, mut known) = (Vec::new(), Vec::new(), 0);
            for _ in 0..6 {
                sampler.upcoming(4, &mut foretold);
                let before = sampler.clone();
                sampler.upcoming(4, &mut foretold);
                assert_eq!(sampler, before, "{sampling:?}: upcoming moved the sampler");
                sampler.next_batch(4, &mut drawn);
                // Across the end of a permutation only the part before it is known.
                assert_eq!(foretold[..], drawn[..foretold.len()], "{sampling:?}");
                known += foretold.len();
            }
            // With replacement every batch is known; shuffled (10 examples, batches of 4),
            // what is left of the current permutation: 0 (none yet) + 4 + 2 + 4 + 4 + 0.
            let expected = match sampling {
                Sampling::WithReplacement => 24,
                Sampling::ShuffledEpochs => 14,
            };
            assert_eq!(known, expected, "{sampling:?}");
        }
    }

    #[test]
    fn a_seed_fixes_the_batches() {
        let draw = |seed| {
            let mut s = Sampler::new(Sampling::WithReplacement, 1000, seed);
            let mut b = Vec::new();
            s.next_batch(100, &mut b);
            b
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!(draw(1).iter().all(|&i| i < 1000));
    }

    #[test]
    fn one_hot_rows() {
        assert_eq!(
            one_hot::<f64>(&[2, 0], 3),
            ndarray::array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
        );
    }
}
