//! Chapter 6's experiments (§6.1–§6.5), one function per script of the book's `ch06/`, each
//! returning the numbers that the script prints and plots. `backprop experiment …` runs them,
//! prints those numbers and saves the figure as PNG.
//!
//! | book script | here | command |
//! |---|---|---|
//! | `optimizer_compare_mnist.py` | [`compare_optimizers`] | `experiment optimizer-compare` |
//! | `weight_init_compare.py` | [`compare_inits`] | `experiment weight-init-compare` |
//! | `weight_init_activation_histogram.py` | [`activation_histograms`] | `experiment activation-histogram` |
//! | `batch_norm_test.py` | [`compare_batch_norm`] | `experiment batch-norm` |
//! | `overfit_weight_decay.py`, `overfit_dropout.py` | [`overfitting`] | `experiment overfit` |
//! | `hyperparameter_optimization.py` | [`random_search`] | `experiment hyperparameter-search` |
//!
//! Independent runs (one per optimizer, initialisation, weight scale, trial) go in parallel
//! on all cores. Every run is seeded from the experiment's seed and its own index, never from
//! the thread that ran it, so the numbers are the same on any number of cores.

mod activations;
mod batch_norm;
mod loss_curves;
mod overfit;
mod search;

pub use activations::{ActivationStats, activation_histograms};
pub use batch_norm::{BatchNormRun, compare_batch_norm, weight_scales};
pub use loss_curves::{LossCurve, LossRace, compare_inits, compare_optimizers};
pub use overfit::{OverfitRun, overfit_variants, overfitting};
pub use search::{SearchConfig, Trial, random_search};

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::data::{Dataset, Sampling};
use crate::error::Result;
use crate::net::MultiLayerNet;
use crate::optim::OptimizerSpec;
use crate::train::{Record, TrainConfig, Trainer};

/// The losses and evaluations of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The mini-batch loss of every iteration.
    pub losses: Vec<f64>,
    /// The evaluations, one per epoch.
    pub history: Vec<Record>,
}

/// Trains `net` (built with `seed`) on `data` with `optimizer`: `iters` iterations of `batch`
/// images drawn with replacement (sampler seeded with `seed` too), evaluated every
/// `eval_every` iterations when given.
///
/// # Errors
/// When the net does not fit the data, the batch is larger than the training split, or the
/// loss diverges.
pub fn train_run(
    net: &MultiLayerNet,
    optimizer: &OptimizerSpec,
    data: &Dataset,
    (iters, batch, eval_every): (usize, usize, Option<usize>),
    seed: u64,
) -> Result<RunResult> {
    let config = TrainConfig {
        iters,
        batch,
        eval_every,
        sampling: Sampling::WithReplacement,
        seed,
        shards: 1,
    };
    let mut trainer = Trainer::new(
        net.build::<f32>(seed),
        optimizer.build::<f32>(),
        data,
        config,
    )?;
    trainer.run(|_| {})?;
    Ok(RunResult {
        losses: trainer.losses().to_vec(),
        history: trainer.history().to_vec(),
    })
}

/// The schedule of the book's chapter-6 loops for `epochs` epochs of `batch` on
/// `train_size` images: an epoch is `max(train_size / batch, 1)` iterations, an evaluation
/// follows iterations 0, epoch, 2·epoch, …, and training stops right after the `epochs`-th.
/// Returns `(iterations, batch, evaluation interval)` for [`train_run`].
pub fn epochs_schedule(
    train_size: usize,
    batch: usize,
    epochs: usize,
) -> (usize, usize, Option<usize>) {
    let every = (train_size / batch.max(1)).max(1);
    ((epochs.max(1) - 1) * every + 1, batch, Some(every))
}

/// `f` applied to every item on all cores, results in the items' order. Each of several
/// workers runs its items' kernels on its own thread ([`crate::machinery::parallel::one_thread_each`]), so
/// the cores are not oversubscribed; `done` is called (from
/// the worker) after each item.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(usize, &T) -> R + Sync,
    done: &(dyn Fn(&R) + Sync),
) -> Vec<R> {
    let workers = crate::machinery::parallel::threads()
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let work = || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(i, item);
                    done(&r);
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                };
                // A lone worker keeps all cores for its kernels.
                if workers > 1 {
                    crate::machinery::parallel::one_thread_each(work);
                } else {
                    work();
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_the_order() {
        let items: Vec<u64> = (0..50).collect();
        let count = AtomicUsize::new(0);
        let squares = parallel_map(&items, |i, &v| (i as u64) * v, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(squares, items.iter().map(|v| v * v).collect::<Vec<_>>());
        assert_eq!(count.load(Ordering::Relaxed), 50);
    }
}
