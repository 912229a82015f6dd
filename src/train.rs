//! The training loop of §4.5 and §5.7.4: mini-batch SGD with an evaluation on the full
//! training and test sets at every epoch boundary.
//!
//! ```text
//! for i in 0..iters:
//!     batch ← sample(train, batch_size)            with replacement, as np.random.choice
//!     loss  ← net.gradient(batch)                  forward, then backward in reverse order
//!     optimizer.update(net.params)                 W ← W − η·∂L/∂W for SGD
//!     if i % eval_every == 0: record train and test accuracy
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use ndarray::NdFloat;

use crate::data::{Batch, Dataset, Sampler, Sampling, Split, prefetch};
use crate::error::{Error, Result};
use crate::functions::{Targets, argmax, cross_entropy_error, softmax_in_place};
use crate::io::{ModelInfo, RunPosition, TensorFile};
use crate::layers::Mode;
use crate::machinery::parallel;
use crate::net::Sequential;
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
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// An iteration finished with this mini-batch loss.
    Step {
        /// The iteration, from 0.
        iter: usize,
        /// Its mini-batch loss.
        loss: f64,
    },
    /// An evaluation finished.
    Evaluated(&'a Record),
}

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

/// Runs `net` in inference mode over all of `split` in blocks of [`Sequential::eval_rows`]
/// rows, and returns `f` of each block's scores `(rows, classes)` and labels, in order.
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
    let rows = net.eval_rows();
    let starts: Vec<usize> = (0..split.len()).step_by(rows).collect();
    let mut results: Vec<Option<R>> = starts.iter().map(|_| None).collect();
    let per_thread = starts.len().div_ceil(parallel::threads()).max(1);
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
    parallel::parallel_each(jobs, |(net, (starts, out))| {
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
struct Counts {
    /// `(true, predicted)` per example.
    pairs: Vec<(usize, usize)>,
    /// The sum of the examples' cross-entropies.
    loss_sum: f64,
}

/// Evaluates `net` on all of `split` (see [`map_blocks`]).
pub fn evaluate<A: NdFloat>(net: &mut Sequential<A>, split: &Split, classes: usize) -> Evaluation {
    let blocks = map_blocks(net, split, |y, labels| {
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
        }
    });
    let mut confusion = vec![vec![0; classes]; classes];
    let (mut loss_sum, mut correct) = (0.0, 0);
    for block in blocks {
        for (t, predicted) in block.pairs {
            confusion[t][predicted.min(classes - 1)] += 1;
            correct += usize::from(predicted == t);
        }
        loss_sum += block.loss_sum;
    }
    let n = split.len();
    Evaluation {
        accuracy: if n == 0 {
            f64::NAN
        } else {
            correct as f64 / n as f64
        },
        loss: loss_sum / n.max(1) as f64,
        n,
        confusion,
    }
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
}

/// Everything of a [`Trainer`] besides the net, the optimizer and the data: what a checkpoint
/// stores as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Position {
    config: TrainConfig,
    iter: usize,
    sampler: Sampler,
    history: Vec<Record>,
    loss_since_eval: (f64, usize),
    elapsed_s: f64,
    /// The generators of the net's dropout layers.
    rngs: Vec<rand_chacha::ChaCha8Rng>,
}

impl<'d, A: NdFloat, O: Optimizer<A>> Trainer<'d, A, O> {
    /// Prepares a run, checking that the net fits the data and the schedule makes sense.
    ///
    /// # Errors
    /// When the net's input or output width does not match the data set, or the batch size
    /// or evaluation interval is zero, or the batch is larger than the training set.
    pub fn new(
        mut net: Sequential<A>,
        optimizer: O,
        data: &'d Dataset,
        config: TrainConfig,
    ) -> Result<Self> {
        if config.batch == 0 || config.eval_every == Some(0) {
            return Err(Error::Invalid(
                "the batch size and evaluation interval must be at least 1".into(),
            ));
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
        })
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
    pub fn run(&mut self, observe: impl FnMut(Event<'_>)) -> Result<()> {
        self.run_until(self.config.iters, observe)
    }

    /// Runs iterations until `iteration() == until` (or the end of the schedule).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn run_until(&mut self, until: usize, mut observe: impl FnMut(Event<'_>)) -> Result<()> {
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
        observe: &mut impl FnMut(Event<'_>),
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
            let loss = self.net.gradient(self.batch.x.view().into_dyn(), &targets);
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
            if self.config.eval_every.is_some_and(|every| i % every == 0) {
                let record =
                    self.evaluate_now(self.elapsed_before + started.elapsed().as_secs_f64());
                self.history.push(record);
                observe(Event::Evaluated(self.history.last().expect("just pushed")));
                pause(|| format!("evaluated {i}"));
            }
        }
        Ok(())
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

impl<'d, O: Optimizer<f32>> Trainer<'d, f32, O> {
    /// A checkpoint: the net's parameters, the optimizer's state (`optimizer/…`), the loss of
    /// every iteration (`train/losses`), and as metadata the model `info`, the position
    /// (iteration, sampler state, history) and `extra` entries. Restoring it with
    /// [`resume`](Self::resume) continues bit-identically.
    pub fn checkpoint(&mut self, info: &ModelInfo, extra: &HashMap<String, String>) -> Vec<u8> {
        let params = crate::io::named_params(&mut self.net);
        let state = self.optimizer.state();
        let f32_tensors: Vec<(String, ndarray::ArrayViewD<'_, f32>)> =
            params.iter().map(|(n, a)| (n.clone(), a.view())).collect();
        let mut f64_tensors: Vec<(String, ndarray::ArrayViewD<'_, f64>)> = state
            .iter()
            .map(|(n, a)| (format!("optimizer/{n}"), a.view()))
            .collect();
        f64_tensors.push((
            "train/losses".into(),
            ndarray::ArrayView1::from(&self.losses[..]).into_dyn(),
        ));
        let position = Position {
            config: self.config,
            iter: self.iter,
            sampler: self.sampler.clone(),
            history: self.history.clone(),
            loss_since_eval: self.loss_since_eval,
            elapsed_s: self.elapsed_before,
            rngs: self.net.rngs(),
        };
        let info = ModelInfo {
            checkpoint: Some(RunPosition {
                iteration: self.iter,
                iters: self.config.iters,
            }),
            test_accuracy: accuracy_of_current_weights(self),
            ..info.clone()
        };
        let mut meta = info.to_metadata();
        meta.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        meta.insert(
            crate::io::TRAINER_KEY.into(),
            serde_json::to_string(&position).expect("the position serialises"),
        );
        crate::io::encode_tensors(&f32_tensors, &f64_tensors, meta)
    }

    /// Continues from a checkpoint made by [`checkpoint`](Self::checkpoint) on the same data.
    ///
    /// # Errors
    /// When the file is not a checkpoint, or does not fit `optimizer` or `data`.
    pub fn resume(
        mut file: TensorFile,
        path: &Path,
        mut optimizer: O,
        data: &'d Dataset,
    ) -> Result<Self> {
        let invalid = |what: String| Error::Model {
            path: path.to_path_buf(),
            what,
        };
        let position: Position = match file.metadata.get(crate::io::TRAINER_KEY) {
            Some(json) => {
                serde_json::from_str(json).map_err(|e| invalid(format!("trainer state: {e}")))?
            }
            None => {
                return Err(invalid(
                    "not a checkpoint: no trainer state in its metadata".into(),
                ));
            }
        };
        let losses = file
            .take("train/losses")
            .ok_or_else(|| invalid("not a checkpoint: no tensor train/losses".into()))?;
        let state: crate::optim::State = file
            .tensors
            .iter()
            .filter_map(|(n, a)| Some((n.strip_prefix("optimizer/")?.to_string(), a.clone())))
            .collect();
        file.tensors.retain(|(n, _)| !n.starts_with("optimizer/"));
        let (mut net, _) = crate::io::model_from(file, path, crate::io::LoadOptions::default())?;
        check_state_fits(&state, &mut net).map_err(invalid)?;
        optimizer
            .load_state(state)
            .map_err(|e| invalid(e.to_string()))?;
        if !net.set_rngs(&position.rngs) {
            return Err(invalid(format!(
                "the checkpoint has {} dropout generators but the net has {}",
                position.rngs.len(),
                net.rngs().len()
            )));
        }
        let mut trainer = Trainer::new(net, optimizer, data, position.config)?;
        if position.sampler.len() != data.train.len() {
            return Err(invalid(format!(
                "the checkpoint samples from {} training images but {} has {}",
                position.sampler.len(),
                data.name,
                data.train.len()
            )));
        }
        trainer.iter = position.iter;
        trainer.sampler = position.sampler;
        trainer.history = position.history;
        trainer.losses.extend(losses.iter().copied());
        trainer.loss_since_eval = position.loss_since_eval;
        trainer.elapsed_before = position.elapsed_s;
        Ok(trainer)
    }
}

/// The test accuracy of `trainer`'s net as it is now, when its last evaluation came after its
/// last update (otherwise unknown without evaluating).
pub fn accuracy_of_current_weights<A: NdFloat, O: Optimizer<A>>(
    trainer: &Trainer<'_, A, O>,
) -> Option<f64> {
    trainer
        .history()
        .last()
        .filter(|r| r.iter + 1 == trainer.iteration())
        .map(|r| r.test_acc)
}

/// Checks that every per-parameter optimizer tensor `kind/name` has the shape of parameter
/// `name`, so that a tampered checkpoint gives an error rather than a failed update.
fn check_state_fits<A: NdFloat>(
    state: &crate::optim::State,
    net: &mut Sequential<A>,
) -> std::result::Result<(), String> {
    let params: HashMap<String, Vec<usize>> = net
        .params_mut()
        .into_iter()
        .map(|p| (p.name.to_string(), p.param.value.shape().to_vec()))
        .collect();
    for (name, value) in state {
        let Some((_, param)) = name.split_once('/') else {
            continue;
        };
        match params.get(param) {
            Some(shape) if shape == value.shape() => {}
            Some(shape) => {
                return Err(format!(
                    "optimizer state {name} has shape {:?} but parameter {param} has {shape:?}",
                    value.shape()
                ));
            }
            None => {
                return Err(format!(
                    "optimizer state {name} is for no parameter of the net"
                ));
            }
        }
        if value.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "optimizer state {name} holds NaN or infinite values"
            ));
        }
    }
    Ok(())
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
