//! Model files: a net's tensors with the metadata that says what net they are, written and
//! read back (checkpoints too), and the errors that say what a file that does not fit is.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{ArrayD, Dimension, IxDyn};

use ndarray::ArrayViewD;

use super::recognise::{LoadOptions, architecture};
use super::tensors::{TensorFile, encode_tensors};
use super::write_atomically;
use crate::error::{Error, Result};
use crate::net::{Architecture, Sequential};

/// Values (64 MB of `f32`) that a model file's metadata may make the loader allocate even
/// when the file holds fewer, so that a file with a tensor missing gets a message naming it.
const SMALL_NET: usize = 1 << 24;

/// The normalisation this crate applies to images: `x = pixel / 255`.
pub const PIXEL_NORMALISATION: &str = "pixel/255";

/// What a model file says besides its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The architecture.
    pub net: Architecture,
    /// How images become inputs (`pixel/255`).
    pub normalisation: String,
    /// The image shape `(rows, cols)` the net was trained on, when known.
    pub input_shape: Option<(usize, usize)>,
    /// Class names, index 0 first.
    pub class_names: Vec<String>,
    /// The data set trained on, when known.
    pub dataset: Option<String>,
    /// The test accuracy of these weights, when the run evaluated them.
    pub test_accuracy: Option<f64>,
    /// Where in its run the file was taken, when it is a checkpoint (metadata `checkpoint`,
    /// written by [`crate::train::Trainer::checkpoint`]).
    pub checkpoint: Option<RunPosition>,
    /// What the loader had to assume because the file does not say it (a file without
    /// metadata: the activation, the input size), each to be said to the user.
    pub assumed: Vec<String>,
}

/// Where in a training run a checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPosition {
    /// Iterations done.
    pub iteration: usize,
    /// Iterations the run was to do.
    pub iters: usize,
}

/// The metadata key of a checkpoint's trainer state.
pub const TRAINER_KEY: &str = "trainer";

/// The tensors of a checkpoint that are the trainer's, not the net's.
fn is_trainer_tensor(name: &str) -> bool {
    name.starts_with("optimizer/") || name.starts_with("train/")
}

/// The metadata key of a checkpoint's position, `ITERATION/ITERS` (`2000/3000`).
const CHECKPOINT_KEY: &str = "checkpoint";

/// The position `ITERATION/ITERS` of a checkpoint's metadata.
fn parse_position(text: &str) -> Option<RunPosition> {
    let (iteration, iters) = text.split_once('/')?;
    Some(RunPosition {
        iteration: iteration.parse().ok()?,
        iters: iters.parse().ok()?,
    })
}

impl ModelInfo {
    /// The metadata of `net` trained on MNIST-shaped data: 28×28 images normalised
    /// `pixel/255`, classes `0`–`9`, nothing else known (a net built in code, to save or
    /// export).
    pub fn mnist(net: Architecture) -> Self {
        ModelInfo {
            net,
            normalisation: PIXEL_NORMALISATION.into(),
            input_shape: Some((28, 28)),
            class_names: (0..10).map(|c| c.to_string()).collect(),
            dataset: None,
            test_accuracy: None,
            checkpoint: None,
            assumed: Vec::new(),
        }
    }

    /// The metadata map stored in the file.
    #[allow(
        clippy::expect_used,
        reason = "an architecture and a list of strings always serialise to JSON"
    )]
    pub(crate) fn to_metadata(&self) -> HashMap<String, String> {
        let mut meta = HashMap::new();
        meta.insert("format".into(), "backprop".into());
        meta.insert("model".into(), self.net.name().into());
        match &self.net {
            Architecture::Mlp(net) => {
                meta.insert("net".into(), net.sizes.to_string());
                meta.insert("activation".into(), net.activation.to_string());
                if net.batch_norm {
                    meta.insert("batch_norm".into(), "true".into());
                }
                if let Some(ratio) = net.dropout {
                    meta.insert("dropout".into(), ratio.to_string());
                }
                if net.weight_decay > 0.0 {
                    meta.insert("weight_decay".into(), net.weight_decay.to_string());
                }
            }
            conv => {
                meta.insert(
                    "architecture".into(),
                    serde_json::to_string(conv).expect("an architecture serialises"),
                );
            }
        }
        meta.insert("normalisation".into(), self.normalisation.clone());
        if let Some((rows, cols)) = self.input_shape {
            meta.insert("input_shape".into(), format!("{rows}x{cols}"));
        }
        meta.insert(
            "classes".into(),
            serde_json::to_string(&self.class_names).expect("strings serialise"),
        );
        if let Some(dataset) = &self.dataset {
            meta.insert("dataset".into(), dataset.clone());
        }
        if let Some(accuracy) = self.test_accuracy {
            meta.insert("test_accuracy".into(), accuracy.to_string());
        }
        if let Some(at) = self.checkpoint {
            meta.insert(
                CHECKPOINT_KEY.into(),
                format!("{}/{}", at.iteration, at.iters),
            );
        }
        meta
    }
}

/// What a model file stores of `net`: the parameters, then the buffers (batch norm's running
/// statistics), as `(name, value)` pairs in the net's order.
pub fn named_params(net: &mut Sequential<f32>) -> Vec<(String, ArrayD<f32>)> {
    let mut tensors: Vec<(String, ArrayD<f32>)> = net
        .params_mut()
        .into_iter()
        .map(|p| (p.name.to_string(), p.param.value.to_owned()))
        .collect();
    tensors.extend(
        net.buffers_mut()
            .into_iter()
            .map(|(name, value)| (name, value.to_owned())),
    );
    tensors
}

/// Saves `net` with `info` to `path` atomically.
///
/// # Errors
/// When the file cannot be written; an existing file at `path` is then untouched.
pub fn save_model(path: &Path, net: &mut Sequential<f32>, info: &ModelInfo) -> Result<()> {
    write_atomically(path, &encode_model(net, info))
}

/// The model file of `net` with `info`, as bytes.
pub fn encode_model(net: &mut Sequential<f32>, info: &ModelInfo) -> Vec<u8> {
    let params = named_params(net);
    let views: Vec<(String, ArrayViewD<'_, f32>)> =
        params.iter().map(|(n, a)| (n.clone(), a.view())).collect();
    encode_tensors(&views, &[], info.to_metadata())
}

/// Loads a model file (safetensors, or the book's pickle): the net with its weights, and
/// what the file says about it. A file without metadata is recognised from its shapes
/// ([`LoadOptions`] fills in what shapes cannot tell; [`ModelInfo::assumed`] says the rest).
///
/// # Errors
/// When the file is not a valid model: neither safetensors nor a pickle of numpy arrays, a
/// tensor missing or unexpected, a shape that fits no net, a non-finite weight, bad metadata,
/// metadata that contradicts `options`.
pub fn load_model(path: &Path, options: LoadOptions) -> Result<(Sequential<f32>, ModelInfo)> {
    let file = TensorFile::read(path)?;
    model_from(file, path, options)
}

/// Builds the net and info of a parsed model (or checkpoint) file, taking its parameters.
///
/// # Errors
/// As [`load_model`].
pub fn model_from(
    mut file: TensorFile,
    path: &Path,
    options: LoadOptions,
) -> Result<(Sequential<f32>, ModelInfo)> {
    if file.metadata.contains_key(TRAINER_KEY) {
        // The optimizer's state and the losses are for resuming; the weights are the model.
        file.tensors.retain(|(name, _)| !is_trainer_tensor(name));
    }
    let info = info_from(&file, path, options)?;
    let net = net_from(file, &info, path, options.seed)?;
    Ok((net, info))
}

/// What the file says of itself, and what its tensors' shapes tell where it says nothing.
fn info_from(file: &TensorFile, path: &Path, options: LoadOptions) -> Result<ModelInfo> {
    let meta = &file.metadata;
    // Checkpoints written before the position was recorded load as plain models.
    let checkpoint = metadata(
        meta,
        path,
        CHECKPOINT_KEY,
        "ITERATION/ITERS",
        parse_position,
    )?;
    let (net, assumed) = architecture(file, path, options)?;
    let outputs = net.outputs();
    let class_names: Vec<String> = match meta.get("classes") {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| Error::model(path, format!("metadata classes: {e}")))?,
        None => (0..outputs).map(|c| c.to_string()).collect(),
    };
    if class_names.len() != outputs {
        return Err(Error::model(
            path,
            format!(
                "metadata lists {} classes but the net has {outputs} outputs",
                class_names.len(),
            ),
        ));
    }
    let input_shape = metadata(meta, path, "input_shape", "ROWSxCOLS", parse_shape)?;
    let test_accuracy = metadata(meta, path, "test_accuracy", "a number", |t| t.parse().ok())?;
    Ok(ModelInfo {
        normalisation: meta
            .get("normalisation")
            .cloned()
            .unwrap_or_else(|| PIXEL_NORMALISATION.into()),
        dataset: meta.get("dataset").cloned(),
        test_accuracy,
        checkpoint,
        input_shape,
        assumed,
        net,
        class_names,
    })
}

/// The metadata entry `key` of `meta`, parsed, or an error saying it is not `form`; `None`
/// when absent.
fn metadata<T>(
    meta: &HashMap<String, String>,
    path: &Path,
    key: &str,
    form: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    meta.get(key)
        .map(|text| {
            parse(text)
                .ok_or_else(|| Error::model(path, format!("metadata {key} {text:?} is not {form}")))
        })
        .transpose()
}

/// The net of `info`, its parameters and buffers taken from `file`, which must hold them
/// all and nothing else.
fn net_from(
    mut file: TensorFile,
    info: &ModelInfo,
    path: &Path,
    seed: u64,
) -> Result<Sequential<f32>> {
    // Metadata may claim any size: build at most what the file's own values could fill, or
    // a small net (whose missing tensors are then named one by one below).
    let held: usize = file.tensors.iter().map(|(_, a)| a.len()).sum();
    match info.net.param_count() {
        Some(needed) if needed <= held.max(SMALL_NET) => {}
        needed => {
            return Err(Error::model(
                path,
                format!(
                    "the metadata describes a net ({}) of {} values but the file holds {held}",
                    info.net.layout(),
                    needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
                ),
            ));
        }
    }
    let mut net = info
        .net
        .build::<f32>(seed)
        .map_err(|e| Error::model(path, e.to_string()))?;
    let mut shapes: Vec<(String, IxDyn)> = net
        .params_mut()
        .into_iter()
        .map(|p| (p.name.to_string(), p.param.value.raw_dim()))
        .collect();
    shapes.extend(
        net.buffers_mut()
            .into_iter()
            .map(|(name, value)| (name, value.raw_dim())),
    );
    let mut values = Vec::with_capacity(shapes.len());
    for (name, shape) in shapes {
        let value = take_tensor(&mut file, &name, &shape, info, path)?;
        values.push((name, value));
    }
    set_tensors(&mut net, values);
    if !file.tensors.is_empty() {
        let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Error::model(
            path,
            format!(
                "unexpected tensors {}: net {} holds {} only; {}",
                names.join(", "),
                info.net.layout(),
                named_params(&mut net)
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                what_extra_tensors_mean(&names)
            ),
        ));
    }
    Ok(net)
}

/// What a file whose tensors include `extra` (names the net does not have) seems to be, and
/// what to do with it.
pub(super) fn what_extra_tensors_mean(extra: &[&str]) -> String {
    if extra.iter().any(|n| is_trainer_tensor(n)) {
        "they look like a checkpoint's optimizer state, but the file has no trainer state in its \
         metadata (was it re-saved by another tool?); resume from the original checkpoint.safetensors, \
         or save only the net's tensors"
            .into()
    } else if extra.iter().any(|n| looks_like_pytorch(n)) {
        PYTORCH_ADVICE.into()
    } else {
        "the file seems to hold a bigger net than its metadata (or its W1…Wk) describe, or other \
         tensors besides; save only the net's tensors, named as in the book"
            .into()
    }
}

/// Whether a tensor name is in the style of a PyTorch `state_dict` (`fc1.weight`, `0.bias`).
pub(super) fn looks_like_pytorch(name: &str) -> bool {
    [".weight", ".bias", ".running_mean", ".running_var"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// What to do with a PyTorch `state_dict`.
pub(super) const PYTORCH_ADVICE: &str = "they look like a PyTorch state_dict; name the tensors W1, b1, W2, b2, … \
     as in the book, with each W of shape (in, out) (Linear.weight transposed)";

/// Takes tensor `name` out of `file`, checking its shape and that its values are finite.
fn take_tensor(
    file: &mut TensorFile,
    name: &str,
    shape: &IxDyn,
    info: &ModelInfo,
    path: &Path,
) -> Result<ArrayD<f32>> {
    let stored = file.take(name).ok_or_else(|| {
        Error::model(
            path,
            format!("tensor {name} is missing (net {})", info.net.layout()),
        )
    })?;
    if stored.shape() != shape.slice() {
        return Err(Error::model(
            path,
            format!(
                "tensor {name} has shape {:?} but net {} needs {:?}",
                stored.shape(),
                info.net.layout(),
                shape.slice()
            ),
        ));
    }
    // Finite as f32 too: 1e300 in a float64 file would become infinite.
    if stored.iter().any(|&v| !(v as f32).is_finite()) {
        return Err(Error::model(
            path,
            format!(
                "tensor {name} holds NaN or infinite values: the weights are unusable (saved from a diverged run?)"
            ),
        ));
    }
    Ok(stored.mapv(|v| v as f32))
}

/// Copies `(name, value)` pairs into the parameters and buffers of `net` with those names.
fn set_tensors(net: &mut Sequential<f32>, mut values: Vec<(String, ArrayD<f32>)>) {
    let mut put = |name: &str, mut target: ndarray::ArrayViewMutD<'_, f32>| {
        if let Some(k) = values.iter().position(|(n, _)| n == name) {
            target.assign(&values.swap_remove(k).1);
        }
    };
    for p in net.params_mut() {
        put(p.name, p.param.value);
    }
    for (name, value) in net.buffers_mut() {
        put(&name, value);
    }
}

fn parse_shape(text: &str) -> Option<(usize, usize)> {
    let (rows, cols) = text.split_once('x')?;
    Some((rows.parse().ok()?, cols.parse().ok()?))
}
