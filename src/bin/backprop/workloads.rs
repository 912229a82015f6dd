//! The benchmark workloads W1–W4, defined here so that any other implementation (numpy,
//! PyTorch, burn, candle) can run the same work and report it in the same JSON fields, one
//! table holding them all.
//!
//! Data: the four IDX files of Fashion-MNIST (or MNIST), images flattened to 784 values of
//! `pixel / 255` in float32, labels as class indices. Biases start at 0.
//!
//! | id | net | optimiser | batch | iterations |
//! |---|---|---|---|---|
//! | W1 | 784-50-10 (Affine, ReLU, Affine, softmax-with-loss), W = 0.01·randn | SGD 0.1 | 100, with replacement | 10,000, plus 17 evaluations on the full train and test sets |
//! | W2 | as W1 | SGD 0.1 | 100, with replacement | 10,000, no evaluation |
//! | W3 | 784-1000-1000-10, ReLU, He init (std √(2/fan-in)) | SGD 0.05 | 128, with replacement | 300 |
//! | W4 | SimpleConvNet: conv 30×5×5 (stride 1, pad 0), ReLU, 2×2 max pool, Affine 4320→100, ReLU, Affine 100→10; W = 0.01·randn | Adam 0.001 (β 0.9/0.999) | 100, with replacement | 100 |
//!
//! Timing rules: the clock runs from the first iteration to the end of the last, covering
//! sampling and gathering the batch, forward, loss, backward, update, reading the loss back
//! as a number every iteration and (W1) the evaluations, taken after the update of every
//! iteration `i` with `i % 600 == 0` (17 of them; the final test accuracy is the 17th).
//! Loading the data is timed apart, once per process. Each process runs its repetitions
//! with seeds 0, 1, 2, … (fresh weights each); tables report the median and range.
//!
//! W4's Adam is the book's, with `ε = 10⁻⁷` where PyTorch uses `10⁻⁸`; with `√v ≈ 10⁻³`
//! the difference is in the fourth digit of a step.

use std::str::FromStr;
use std::time::Instant;

use backprop::data::{Dataset, Sampling};
use backprop::net::{Architecture, Init, MultiLayerNet, Shards, SimpleConvNet};
use backprop::optim::{OptimizerKind, OptimizerSpec};
use backprop::train::{Event, TrainConfig, Trainer};
use backprop::{Error, Result};

/// A benchmark workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The book's chapter-5 run with its 17 evaluations.
    W1,
    /// W1's training steps alone.
    W2,
    /// A wide MLP, 784-1000-1000-10.
    W3,
    /// The book's SimpleConvNet with Adam.
    W4,
}

impl FromStr for Workload {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_uppercase().as_str() {
            "W1" => Ok(Workload::W1),
            "W2" => Ok(Workload::W2),
            "W3" => Ok(Workload::W3),
            "W4" => Ok(Workload::W4),
            _ => Err(Error::Invalid(format!(
                "unknown workload {text:?}: expected W1, W2, W3 or W4"
            ))),
        }
    }
}

impl Workload {
    /// The workload's name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
        }
    }

    /// `(net, optimizer, batch, iterations, evaluate every)`.
    #[allow(
        clippy::expect_used,
        reason = "the layer sizes are constants of the workloads, all valid"
    )]
    fn schedule(self) -> (Architecture, OptimizerSpec, usize, usize, Option<usize>) {
        let mlp = |sizes: &str, init| {
            let sizes = sizes.parse().expect("a valid spec");
            Architecture::Mlp(MultiLayerNet {
                init,
                ..MultiLayerNet::new(sizes)
            })
        };
        let sgd = |lr| OptimizerSpec::new(OptimizerKind::Sgd).with_lr(lr);
        match self {
            Workload::W1 => (
                mlp("784-50-10", Init::Std(0.01)),
                sgd(0.1),
                100,
                10_000,
                Some(600),
            ),
            Workload::W2 => (
                mlp("784-50-10", Init::Std(0.01)),
                sgd(0.1),
                100,
                10_000,
                None,
            ),
            Workload::W3 => (mlp("784-1000-1000-10", Init::He), sgd(0.05), 128, 300, None),
            Workload::W4 => (
                Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10)),
                OptimizerSpec::new(OptimizerKind::Adam),
                100,
                100,
                None,
            ),
        }
    }
}

/// One repetition of a workload, in the peers' JSON fields.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchResult {
    /// Always `backprop`.
    pub peer: &'static str,
    /// `W1`, `W2`, `W3` or `W4`.
    pub workload: &'static str,
    /// Repetition index; also the seed.
    pub rep: u64,
    /// Seconds to read and parse the data set (once per process).
    pub load_s: f64,
    /// Threads used by the kernels.
    pub threads: usize,
    /// Seconds from the first iteration to the end of the last, evaluations included.
    pub wall_s: f64,
    /// Iterations run.
    pub iters: usize,
    /// `wall_s / iters` in milliseconds.
    pub ms_per_iter: f64,
    /// The mini-batch loss of the first iteration.
    pub loss_first: f64,
    /// The mean mini-batch loss of the last 10 iterations.
    pub loss_last10: f64,
    /// Evaluations run.
    pub n_evals: usize,
    /// Shards per mini-batch.
    pub shards: usize,
    /// Seconds spent in evaluations.
    pub eval_s: f64,
    /// Training accuracy at the last evaluation (W1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_train_acc: Option<f64>,
    /// Test accuracy at the last evaluation (W1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_test_acc: Option<f64>,
    /// `[iteration, train accuracy, test accuracy]` per evaluation.
    pub evals: Vec<(usize, f64, f64)>,
    /// Peak resident memory of the process so far, in MB (Linux; 0 elsewhere).
    pub peak_rss_mb: f64,
}

/// Runs one repetition of `workload` on `data` with seed `rep`, its batches cut into
/// `shards` (default: [`Shards::default_count`]).
///
/// # Errors
/// When the data set does not fit the workload's net (784 inputs, 10 classes).
pub fn run(
    workload: Workload,
    data: &Dataset,
    rep: u64,
    load_s: f64,
    shards: Option<usize>,
) -> Result<BenchResult> {
    let (net, optimizer, batch, iters, eval_every) = workload.schedule();
    let net = net.build::<f32>(rep)?;
    let shards = shards.unwrap_or_else(|| Shards::default_count(&net, batch));
    let config = TrainConfig {
        iters,
        batch,
        eval_every,
        sampling: Sampling::WithReplacement,
        seed: rep,
        shards,
    };
    let mut trainer = Trainer::new(net, optimizer.build(), data, config)?;
    let mut eval_s = 0.0;
    let mut step_done = Instant::now();
    let started = Instant::now();
    trainer.run(|event| match event {
        Event::Step { .. } => step_done = Instant::now(),
        Event::Evaluated(_) => eval_s += step_done.elapsed().as_secs_f64(),
        Event::Weights(_) => {}
    })?;
    let wall_s = started.elapsed().as_secs_f64();
    let losses = trainer.losses();
    let last10 = &losses[losses.len().saturating_sub(10)..];
    let history = trainer.history();
    Ok(BenchResult {
        peer: "backprop",
        workload: workload.name(),
        rep,
        load_s,
        threads: backprop::machinery::parallel::threads(),
        shards,
        wall_s,
        iters,
        ms_per_iter: 1e3 * wall_s / iters as f64,
        loss_first: losses.first().copied().unwrap_or(f64::NAN),
        loss_last10: last10.iter().sum::<f64>() / last10.len().max(1) as f64,
        n_evals: history.len(),
        eval_s,
        final_train_acc: history.last().map(|r| r.train_acc),
        final_test_acc: history.last().map(|r| r.test_acc),
        evals: history
            .iter()
            .map(|r| (r.iter, r.train_acc, r.test_acc))
            .collect(),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// `VmHWM` of `/proc/self/status` in MB; 0 where it is not available.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        })
        .unwrap_or(0.0)
}
