//! The checkpoint format: a model file (the net's parameters and [`ModelInfo`]) that also
//! holds the optimizer's state (`optimizer/…` tensors), the loss of every iteration
//! (`train/losses`), the trainer's position (metadata `trainer`: schedule, iteration, sampler,
//! history, dropout generators, training passes) and the run's settings (metadata `run`: net,
//! optimizer, data, checkpoint cadence). A run checkpoints into its output folder and resumes
//! from it bit-identically, with any number of threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::NdFloat;

use super::{Event, Record, TrainConfig, Trainer};
use crate::data::{Dataset, Sampler};
use crate::error::{Error, Result};
use crate::io::{ModelInfo, RunPosition, TensorFile, write_atomically};
use crate::net::{Architecture, Sequential};
use crate::optim::{Optimizer, OptimizerSpec};

/// The checkpoint's file name in a run's output folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// The metadata key of the run's settings.
const RUN_KEY: &str = "run";

/// The settings of a run that a checkpoint must remember to continue it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunSettings {
    /// The net, as built from the seed or from a file.
    pub net: Architecture,
    /// The update rule and its hyper-parameters.
    pub optimizer: OptimizerSpec,
    /// The data set's name (`mnist`, `fashion-mnist`), `None` for the built-in default.
    pub dataset: Option<String>,
    /// A folder with the four IDX files instead.
    pub data_dir: Option<PathBuf>,
    /// Iterations between checkpoints (`--checkpoint-every`); a resumed run keeps it unless
    /// given again.
    #[serde(default)]
    pub checkpoint_every: Option<usize>,
    /// The TensorBoard run folder (`--tensorboard`); a resumed run keeps writing there unless
    /// given another.
    #[serde(default)]
    pub tensorboard: Option<PathBuf>,
}

impl RunSettings {
    /// The settings in the checkpoint of the run folder `dir`, with the checkpoint file and
    /// its path.
    ///
    /// # Errors
    /// When the file cannot be read or is not a checkpoint of a run.
    pub fn of_checkpoint(dir: &Path) -> Result<(RunSettings, TensorFile, PathBuf)> {
        let path = dir.join(CHECKPOINT_FILE);
        let file = TensorFile::read(&path)?;
        let settings = RunSettings::of_file(&file, &path)?;
        Ok((settings, file, path))
    }

    /// The settings in `file`, a checkpoint read from `path`.
    ///
    /// # Errors
    /// When it is not a checkpoint of a run.
    pub fn of_file(file: &TensorFile, path: &Path) -> Result<RunSettings> {
        match file.metadata.get(RUN_KEY) {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| Error::model(path, format!("run settings: {e}"))),
            None => Err(Error::model(
                path,
                "not a checkpoint of `backprop train`: no run settings in its metadata",
            )),
        }
    }
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
    /// The generators of the net's dropout layers (their keys).
    rngs: Vec<rand_chacha::ChaCha8Rng>,
    /// The net's training passes so far, which with the keys set dropout's masks;
    /// checkpoints from before masks were keyed by pass lack it, and resume from the
    /// iteration.
    #[serde(default)]
    passes: Option<u64>,
}

impl<'d, O: Optimizer<f32>> Trainer<'d, f32, O> {
    /// A checkpoint: the net's parameters, the optimizer's state (`optimizer/…`), the loss of
    /// every iteration (`train/losses`), and as metadata the model `info`, the position
    /// (iteration, sampler state, history) and the run's `settings` (which a checkpoint needs
    /// to be resumed by `backprop train --resume`). Restoring it with
    /// [`resume`](Self::resume) continues bit-identically.
    pub fn checkpoint(&mut self, info: &ModelInfo, settings: Option<&RunSettings>) -> Vec<u8> {
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
            passes: Some(self.net.training_passes()),
        };
        let info = ModelInfo {
            checkpoint: Some(RunPosition {
                iteration: self.iter,
                iters: self.config.iters,
            }),
            test_accuracy: self.test_accuracy_now(),
            ..info.clone()
        };
        let mut meta = info.to_metadata();
        if let Some(settings) = settings {
            let json = serde_json::to_string(settings).expect("the settings serialise");
            meta.insert(RUN_KEY.into(), json);
        }
        meta.insert(
            crate::io::TRAINER_KEY.into(),
            serde_json::to_string(&position).expect("the position serialises"),
        );
        crate::io::encode_tensors(&f32_tensors, &f64_tensors, meta)
    }

    /// Runs the rest of the schedule, writing a checkpoint into the run folder `dir` after
    /// every `settings.checkpoint_every` iterations (atomically, so that a kill leaves the
    /// last whole one), except after the last iteration, whose results are the run's own.
    ///
    /// # Errors
    /// As [`run`](Self::run), and when a checkpoint cannot be written.
    pub fn run_checkpointed(
        &mut self,
        dir: &Path,
        info: &ModelInfo,
        settings: &RunSettings,
        mut observe: impl FnMut(Event<'_, f32>),
    ) -> Result<()> {
        let every = settings.checkpoint_every.unwrap_or(usize::MAX);
        let iters = self.config().iters;
        while self.iteration() < iters {
            let next = (self.iteration() / every + 1).saturating_mul(every);
            self.run_until(next, &mut observe)?;
            if self.iteration() < iters && self.iteration() % every == 0 {
                let bytes = self.checkpoint(info, Some(settings));
                write_atomically(&dir.join(CHECKPOINT_FILE), &bytes)?;
            }
        }
        Ok(())
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
        let position: Position = match file.metadata.get(crate::io::TRAINER_KEY) {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| Error::model(path, format!("trainer state: {e}")))?,
            None => {
                return Err(Error::model(
                    path,
                    "not a checkpoint: no trainer state in its metadata",
                ));
            }
        };
        let losses = file
            .take("train/losses")
            .ok_or_else(|| Error::model(path, "not a checkpoint: no tensor train/losses"))?;
        let state: crate::optim::State = file
            .tensors
            .iter()
            .filter_map(|(n, a)| Some((n.strip_prefix("optimizer/")?.to_string(), a.clone())))
            .collect();
        file.tensors.retain(|(n, _)| !n.starts_with("optimizer/"));
        let (mut net, _) = crate::io::model_from(file, path, crate::io::LoadOptions::default())?;
        check_state_fits(&state, &mut net).map_err(|what| Error::model(path, what))?;
        optimizer
            .load_state(state)
            .map_err(|e| Error::model(path, e.to_string()))?;
        if !net.set_rngs(&position.rngs) {
            return Err(Error::model(
                path,
                format!(
                    "the checkpoint has {} dropout generators but the net has {}",
                    position.rngs.len(),
                    net.rngs().len()
                ),
            ));
        }
        net.set_training_passes(position.passes.unwrap_or(position.iter as u64));
        let mut trainer = Trainer::new(net, optimizer, data, position.config)?;
        if position.sampler.len() != data.train.len() {
            return Err(Error::model(
                path,
                format!(
                    "the checkpoint samples from {} training images but {} has {}",
                    position.sampler.len(),
                    data.name,
                    data.train.len()
                ),
            ));
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
