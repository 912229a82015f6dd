//! The training loop of §4.5 and §5.7.4: mini-batch SGD with an evaluation on the full
//! training and test sets at every epoch boundary.
//!
//! ```text
//! for i in 0..iters:
//!     batch ← sample(train, batch_size)            with replacement, as np.random.choice
//!     loss  ← net.gradient(batch)                  forward, then backward in reverse order
//!                                                  (shard by shard with --shards K > 1)
//!     optimizer.update(net.params)                 W ← W − η·∂L/∂W for SGD
//!     if i % eval_every == 0: record train and test accuracy
//! ```
//!
//! | file | idea |
//! |---|---|
//! | this one | the loop: [`Trainer`], its schedule [`TrainConfig`], what it reports ([`Event`], [`Record`]) |
//! | `evaluate.rs` | accuracy, loss and confusion on a whole split ([`evaluate`], [`predictions`]) |
//! | `checkpoint.rs` | the checkpoint format: [`Trainer::checkpoint`], [`Trainer::resume`], [`RunSettings`] |
//! | `results.rs` | the files a run leaves: `metrics.csv`, `curves.png`, `model.safetensors` ([`save_results`]) |
//! | `recipe.rs` | the book's defaults: which optimizer and learning rate, where weight decay goes ([`Recipe`]) |
//! | `tensorboard.rs` | what a run records for TensorBoard, and when ([`TensorBoard`]) |

mod checkpoint;
mod evaluate;
mod recipe;
mod results;
mod tensorboard;

pub use checkpoint::{CHECKPOINT_FILE, RunSettings};
pub use evaluate::{Evaluation, evaluate, evaluate_with_scores, map_blocks, predictions};
pub use recipe::Recipe;
pub use results::{CURVES_FILE, METRICS_FILE, MODEL_FILE, metrics_csv, model_info, save_results};
pub use tensorboard::TensorBoard;

use std::time::Instant;

use ndarray::{ArrayViewD, NdFloat};

use crate::data::{Batch, Dataset, Sampler, Sampling, prefetch};
use crate::error::{Error, Result};
use crate::functions::Targets;
use crate::net::{Ranks, Sequential, Shards, StepTimes};
use crate::optim::Optimizer;
use crate::pause_points::pause;

/// The schedule of a training run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Number of update steps.
    pub iters: usize,
    /// Examples per mini-batch.
    pub batch: usize,
    /// Evaluate after the update of every iteration `i` with `i % eval_every == 0`; `None`:
    /// never (for timing the training steps alone).
    pub eval_every: Option<usize>,
    /// How batches are drawn.
    pub sampling: Sampling,
    /// Seeds the batch sampler (the net is seeded where it is built).
    pub seed: u64,
    /// Shards `K` each mini-batch is cut into, their gradients computed side by side and
    /// summed in shard order ([`Shards`]): 1 computes the batch whole. Checkpoints from before
    /// shards existed computed it whole.
    #[serde(default = "one_shard")]
    pub shards: usize,
}

/// `K = 1`: a batch computed whole.
fn one_shard() -> usize {
    1
}

impl TrainConfig {
    /// The book's chapter-5 run on a training set of `train_size`: 10,000 iterations of
    /// batch 100 sampled with replacement, evaluated every epoch of `train_size / 100`
    /// iterations (600 on MNIST, so 17 evaluations).
    pub fn book(train_size: usize) -> Self {
        TrainConfig {
            iters: 10_000,
            batch: 100,
            eval_every: Some((train_size / 100).max(1)),
            sampling: Sampling::WithReplacement,
            seed: 0,
            shards: 1,
        }
    }
}

/// One evaluation during training: a line of the book's output and of the log file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Evaluations so far, counting from 0 (the book's epoch lines).
    pub epoch: usize,
    /// The iteration after whose update this was taken.
    pub iter: usize,
    /// The mean mini-batch loss since the previous evaluation.
    pub loss: f64,
    /// Accuracy on the whole training split.
    pub train_acc: f64,
    /// Accuracy on the whole test split.
    pub test_acc: f64,
    /// Seconds of training so far.
    pub elapsed_s: f64,
}

/// What a running training reports to its observer.
#[derive(Debug)]
pub enum Event<'a, A: NdFloat> {
    /// An iteration finished with this mini-batch loss.
    Step {
        /// The iteration, from 0.
        iter: usize,
        /// Its mini-batch loss.
        loss: f64,
    },
    /// An evaluation finished.
    Evaluated(&'a Record),
    /// Right after each evaluation: the net's parameters and the gradients of the last step,
    /// for an observer that records them (TensorBoard's histograms).
    Weights(Weights<'a, A>),
}

/// The parameters of the net being trained, read-only, at an evaluation.
pub struct Weights<'a, A: NdFloat> {
    /// The iteration of the evaluation.
    pub iter: usize,
    net: &'a mut Sequential<A>,
}

impl<A: NdFloat> Weights<'_, A> {
    /// Calls `visit` with each parameter's name (`W1`, `b1`, …), value and gradient, in the
    /// net's order.
    pub fn each(&mut self, mut visit: impl FnMut(&str, ArrayViewD<'_, A>, ArrayViewD<'_, A>)) {
        for p in self.net.params_mut() {
            visit(p.name, p.param.value.view(), p.param.grad.view());
        }
    }
}

impl<A: NdFloat> std::fmt::Debug for Weights<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Weights {{ iter: {} }}", self.iter)
    }
}

/// Room reserved up front for the losses of this many iterations (8 MB), so that a step
/// allocates nothing (`tests/allocations.rs`); longer runs grow the list by doubling, and an
/// absurd `--iters` reserves no more than this.
const LOSSES_RESERVED: usize = 1 << 20;

/// A training run in progress: net, optimizer, data, schedule and position.
pub struct Trainer<'d, A: NdFloat, O> {
    /// The net being trained.
    pub net: Sequential<A>,
    /// The update rule.
    pub optimizer: O,
    /// Computes each batch's gradient, whole or shard by shard.
    shards: Shards<A>,
    data: &'d Dataset,
    config: TrainConfig,
    sampler: Sampler,
    batch: Batch<A>,
    indices: Vec<usize>,
    /// The indices of the next batch, prefetched.
    upcoming: Vec<usize>,
    iter: usize,
    history: Vec<Record>,
    /// The mini-batch loss of every iteration so far (the book's `train_loss_list`).
    losses: Vec<f64>,
    loss_since_eval: (f64, usize),
    elapsed_before: f64,
    /// Whether this process evaluates (the rank that reports, of a run on several).
    evaluates: bool,
}

impl<'d, A: NdFloat + bytemuck::Pod, O: Optimizer<A>> Trainer<'d, A, O> {
    /// Prepares a run, checking that the net fits the data and the schedule makes sense.
    ///
    /// # Errors
    /// When the net's input or output width does not match the data set, or the batch size,
    /// shard count or evaluation interval is zero, or the batch is larger than the training
    /// set or smaller than the shard count.
    pub fn new(
        mut net: Sequential<A>,
        optimizer: O,
        data: &'d Dataset,
        config: TrainConfig,
    ) -> Result<Self> {
        if config.batch == 0 || config.shards == 0 || config.eval_every == Some(0) {
            return Err(Error::Invalid(
                "the batch size, shard count and evaluation interval must be at least 1".into(),
            ));
        }
        if config.shards > config.batch {
            return Err(Error::Invalid(format!(
                "{} shards of a batch of {} would leave some empty; use --shards {} or fewer",
                config.shards, config.batch, config.batch
            )));
        }
        if config.batch > data.train.len() {
            return Err(Error::Invalid(format!(
                "batch size {} is larger than the {} training images of {}",
                config.batch,
                data.train.len(),
                data.name
            )));
        }
        check_fits(&mut net, data)?;
        Ok(Trainer {
            net,
            optimizer,
            shards: Shards::new(config.shards),
            data,
            sampler: Sampler::new(config.sampling, data.train.len(), config.seed),
            config,
            batch: Batch::default(),
            indices: Vec::with_capacity(config.batch),
            upcoming: Vec::with_capacity(config.batch),
            iter: 0,
            history: Vec::new(),
            losses: Vec::with_capacity(config.iters.min(LOSSES_RESERVED)),
            loss_since_eval: (0.0, 0),
            elapsed_before: 0.0,
            evaluates: true,
        })
    }

    /// Spreads each batch's shards over `ranks`, processes that each hold this same trainer
    /// (as a checkpoint of one makes it) and run the same iterations: the same bits as on one
    /// process, for any number of ranks that divides the shard count. Every rank but 0 leaves
    /// out the evaluations, which rank 0 alone prints and saves.
    ///
    /// # Errors
    /// When the number of ranks does not divide the shard count, naming those that do.
    pub fn spread_over(&mut self, ranks: std::sync::Arc<dyn Ranks>) -> Result<()> {
        self.evaluates = ranks.rank() == 0;
        self.shards.spread_over(ranks)
    }

    /// What the training steps so far cost, summed from the second step of this process:
    /// compute, exchange between ranks, sum. On a rank that does not evaluate, the exchanges
    /// include the waits for the one that does.
    pub fn step_times(&self) -> StepTimes {
        self.shards.times()
    }

    /// The mini-batch loss of every iteration so far.
    pub fn losses(&self) -> &[f64] {
        &self.losses
    }

    /// The next iteration to run, from 0.
    pub fn iteration(&self) -> usize {
        self.iter
    }

    /// The evaluations so far.
    pub fn history(&self) -> &[Record] {
        &self.history
    }

    /// The schedule.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Runs the remaining iterations, reporting each step and evaluation to `observe`.
    ///
    /// # Errors
    /// [`Error::Diverged`] when a loss is NaN or infinite; the net is then left as it was
    /// after the last good update of the failing iteration's predecessor.
    pub fn run(&mut self, observe: impl FnMut(Event<'_, A>)) -> Result<()> {
        self.run_until(self.config.iters, observe)
    }

    /// Runs iterations until `iteration() == until` (or the end of the schedule).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn run_until(&mut self, until: usize, mut observe: impl FnMut(Event<'_, A>)) -> Result<()> {
        let started = Instant::now();
        let until = until.min(self.config.iters);
        let result = self.steps(until, started, &mut observe);
        self.elapsed_before += started.elapsed().as_secs_f64();
        result
    }

    /// Iterations up to `until`; `started` is when this stretch of training began.
    fn steps(
        &mut self,
        until: usize,
        started: Instant,
        observe: &mut impl FnMut(Event<'_, A>),
    ) -> Result<()> {
        while self.iter < until {
            let i = self.iter;
            self.sampler
                .next_batch(self.config.batch, &mut self.indices);
            self.batch.gather(&self.data.train, &self.indices);
            // The next batch's images load while this one is computed.
            self.sampler.upcoming(self.config.batch, &mut self.upcoming);
            prefetch(&self.data.train, &self.upcoming);
            // The labels lend their buffer to the targets and get it back: no copy.
            let targets = Targets::Indices(std::mem::take(&mut self.batch.t));
            let loss =
                self.shards
                    .gradient(&mut self.net, self.batch.x.view().into_dyn(), &targets);
            if let Targets::Indices(labels) = targets {
                self.batch.t = labels;
            }
            let loss = loss.to_f64().unwrap_or(f64::NAN);
            if !loss.is_finite() {
                return Err(Error::Diverged { iteration: i, loss });
            }
            self.optimizer.step(&mut self.net);
            self.iter += 1;
            self.losses.push(loss);
            self.loss_since_eval.0 += loss;
            self.loss_since_eval.1 += 1;
            observe(Event::Step { iter: i, loss });
            pause(|| format!("iter {i}"));
            if self.evaluates && self.config.eval_every.is_some_and(|every| i % every == 0) {
                let record =
                    self.evaluate_now(self.elapsed_before + started.elapsed().as_secs_f64());
                self.history.push(record);
                observe(Event::Evaluated(self.history.last().expect("just pushed")));
                observe(Event::Weights(Weights {
                    iter: i,
                    net: &mut self.net,
                }));
                pause(|| format!("evaluated {i}"));
            }
        }
        Ok(())
    }

    /// The test accuracy of the net as it is now, when the last evaluation came after the
    /// last update (otherwise unknown without evaluating).
    pub fn test_accuracy_now(&self) -> Option<f64> {
        self.history
            .last()
            .filter(|r| r.iter + 1 == self.iter)
            .map(|r| r.test_acc)
    }

    fn evaluate_now(&mut self, elapsed_s: f64) -> Record {
        let classes = self.data.classes();
        let train = evaluate(&mut self.net, &self.data.train, classes);
        let test = evaluate(&mut self.net, &self.data.test, classes);
        let (sum, count) = std::mem::take(&mut self.loss_since_eval);
        Record {
            epoch: self.history.len(),
            iter: self.iter - 1,
            loss: sum / count.max(1) as f64,
            train_acc: train.accuracy,
            test_acc: test.accuracy,
            elapsed_s,
        }
    }
}

/// Checks that `net` maps the data set's images to its classes.
///
/// # Errors
/// Naming both widths when they differ.
pub fn check_fits<A: NdFloat>(net: &mut Sequential<A>, data: &Dataset) -> Result<()> {
    let (inputs, outputs) = net
        .io_widths()
        .ok_or_else(|| Error::Invalid("the net has no layers with weights".into()))?;
    if inputs != data.input_size() {
        return Err(Error::Invalid(format!(
            "the net takes {inputs} inputs but {} images have {}×{} = {} pixels; use a net spec starting with {}",
            data.name,
            data.train.rows,
            data.train.cols,
            data.input_size(),
            data.input_size()
        )));
    }
    if outputs != data.classes() {
        return Err(Error::Invalid(format!(
            "the net has {outputs} outputs but {} has {} classes; use a net spec ending with {}",
            data.name,
            data.classes(),
            data.classes()
        )));
    }
    Ok(())
}
