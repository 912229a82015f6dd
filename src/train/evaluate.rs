//! Evaluation on a whole split: accuracy, mean loss and confusion matrix, in blocks shared
//! among the cores.

use ndarray::NdFloat;

use crate::data::{Batch, Split};
use crate::functions::{Targets, argmax, cross_entropy_error, softmax_in_place};
use crate::layers::Mode;
use crate::machinery::cost::Work;
use crate::machinery::parallel;
use crate::net::Sequential;

/// Accuracy, mean loss and confusion matrix of a net on a split.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Fraction classified correctly (NaN for an empty split).
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Number of examples.
    pub n: usize,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Runs `net` in inference mode over all of `split` in blocks of at most
/// [`Sequential::eval_rows`] rows, and returns `f` of each block's scores `(rows, classes)`
/// and labels, in order.
///
/// The blocks are shared among the kernel threads ([`crate::machinery::parallel::threads`]): the calling
/// thread runs `net` itself, each other thread a copy of it, every one with its kernels on
/// that thread alone. Each block is computed the same way whatever thread runs it, so results
/// do not depend on the thread count. Memory is a block's buffers per thread (about 1 MB for
/// an MLP) plus the copies, whatever the split size.
pub fn map_blocks<A: NdFloat, R: Send>(
    net: &mut Sequential<A>,
    split: &Split,
    f: impl Fn(&mut ndarray::Array2<A>, &[usize]) -> R + Sync,
) -> Vec<R> {
    // As few blocks as `eval_rows` allows, of one size but the last (10,000 images: 40 of
    // 250, not 39 of 256 and one of 16), so that the threads' shares of them are even.
    let rows = split
        .len()
        .div_ceil(split.len().div_ceil(net.eval_rows()).max(1))
        .max(1);
    let starts: Vec<usize> = (0..split.len()).step_by(rows).collect();
    let mut results: Vec<Option<R>> = starts.iter().map(|_| None).collect();
    // At least a multiply-add per parameter and example (more for a convolution's weights).
    let mut params = 0;
    net.visit_params(&mut |p| params += p.param.value.len());
    let work = Work::product(split.len(), params, 1, size_of::<A>());
    let per_thread = parallel::per_thread(starts.len(), work);
    let groups: Vec<_> = starts
        .chunks(per_thread)
        .zip(results.chunks_mut(per_thread))
        .collect();
    // One group per thread: the calling thread's runs `net` itself, every other one a copy.
    let mut copies: Vec<Sequential<A>> = (1..groups.len()).map(|_| net.clone()).collect();
    let jobs: Vec<_> = std::iter::once(net)
        .chain(copies.iter_mut())
        .zip(groups)
        .collect();
    parallel::parallel_each(jobs, work, |(net, (starts, out))| {
        parallel::one_thread_each(|| {
            let mut batch = Batch::<A>::default();
            let mut indices = Vec::with_capacity(rows);
            for (&start, slot) in starts.iter().zip(out) {
                indices.clear();
                indices.extend(start..(start + rows).min(split.len()));
                batch.gather(split, &indices);
                let mut scores = net.predict(batch.x.view().into_dyn(), Mode::Eval);
                *slot = Some(f(&mut scores, &batch.t));
            }
        });
    });
    results.into_iter().flatten().collect()
}

/// A block's share of an [`Evaluation`].
struct Counts<A> {
    /// `(true, predicted)` per example.
    pairs: Vec<(usize, usize)>,
    /// The sum of the examples' cross-entropies.
    loss_sum: f64,
    /// The block's scores, when kept.
    scores: Option<ndarray::Array2<A>>,
}

/// Evaluates `net` on all of `split` (see [`map_blocks`]).
pub fn evaluate<A: NdFloat>(net: &mut Sequential<A>, split: &Split, classes: usize) -> Evaluation {
    evaluate_blocks(net, split, classes, false).0
}

/// [`evaluate`], keeping every example's scores before the softmax, `(N, classes)` in the
/// split's order (`backprop eval --logits`): one pass over the split for both.
pub fn evaluate_with_scores<A: NdFloat>(
    net: &mut Sequential<A>,
    split: &Split,
    classes: usize,
) -> (Evaluation, ndarray::Array2<A>) {
    let (evaluation, blocks) = evaluate_blocks(net, split, classes, true);
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    let scores = ndarray::concatenate(ndarray::Axis(0), &views)
        .unwrap_or_else(|_| ndarray::Array2::zeros((0, classes)));
    (evaluation, scores)
}

/// The evaluation, and each block's scores when `keep_scores`.
fn evaluate_blocks<A: NdFloat>(
    net: &mut Sequential<A>,
    split: &Split,
    classes: usize,
    keep_scores: bool,
) -> (Evaluation, Vec<ndarray::Array2<A>>) {
    let blocks = map_blocks(net, split, |y, labels| {
        let scores = keep_scores.then(|| y.clone());
        let pairs: Vec<(usize, usize)> = y
            .rows()
            .into_iter()
            .zip(labels)
            .map(|(row, &t)| (t, argmax(row.iter().copied())))
            .collect();
        softmax_in_place(y);
        // Targets own their labels: a copy of the block's.
        let targets = Targets::Indices(labels.to_vec());
        let mean = cross_entropy_error(y.view(), &targets)
            .to_f64()
            .unwrap_or(f64::NAN);
        Counts {
            pairs,
            loss_sum: mean * labels.len() as f64,
            scores,
        }
    });
    let mut confusion = vec![vec![0; classes]; classes];
    let (mut loss_sum, mut correct) = (0.0, 0);
    let mut kept = Vec::new();
    for block in blocks {
        for (t, predicted) in block.pairs {
            confusion[t][predicted.min(classes - 1)] += 1;
            correct += usize::from(predicted == t);
        }
        loss_sum += block.loss_sum;
        kept.extend(block.scores);
    }
    let n = split.len();
    let evaluation = Evaluation {
        accuracy: if n == 0 {
            f64::NAN
        } else {
            correct as f64 / n as f64
        },
        loss: loss_sum / n.max(1) as f64,
        n,
        confusion,
    };
    (evaluation, kept)
}

/// The predicted class of every example of `split`, in order.
pub fn predictions<A: NdFloat>(net: &mut Sequential<A>, split: &Split) -> Vec<usize> {
    map_blocks(net, split, |y, _| {
        y.rows()
            .into_iter()
            .map(|row| argmax(row.iter().copied()))
            .collect::<Vec<_>>()
    })
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Affine;

    fn split(n: usize) -> Split {
        Split {
            images: ndarray::Array2::from_shape_fn((n, 4), |(i, j)| (i * 7 + j) as u8),
            labels: (0..n).map(|i| (i % 3) as u8).collect(),
            rows: 2,
            cols: 2,
        }
    }

    #[test]
    fn blocks_are_of_equal_size_and_cover_the_split_in_order() {
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        let mut net = Sequential::<f32>::new();
        net.push(Affine::randn(4, 3, 1.0, &mut rng));
        let rows = net.eval_rows();
        for n in [0, 1, rows, rows + 1, 3 * rows - 5] {
            let blocks = map_blocks(&mut net, &split(n), |_, labels| labels.to_vec());
            let sizes: Vec<usize> = blocks.iter().map(Vec::len).collect();
            // As few blocks as `eval_rows` allows, all of one size but the last, which is
            // short by less than one row per block.
            assert_eq!(sizes.len(), n.div_ceil(rows), "{n}: {sizes:?}");
            if let (Some(&first), Some(&last)) = (sizes.first(), sizes.last()) {
                assert!(first <= rows && last <= first, "{n}: {sizes:?}");
                assert!(first - last < sizes.len(), "{n}: {sizes:?}");
                assert!(
                    sizes[..sizes.len() - 1].iter().all(|&s| s == first),
                    "{n}: {sizes:?}"
                );
            }
            let labels: Vec<usize> = blocks.concat();
            let expected: Vec<usize> = (0..n).map(|i| i % 3).collect();
            assert_eq!(labels, expected, "{n}");
        }
    }
}
