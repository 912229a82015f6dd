//! Model files in the safetensors format, and atomic writes.
//!
//! A model file holds one tensor per parameter, named as in the book (`W1`, `b1`, `W2`, …,
//! with `W` of shape `(in, out)`), in `F32` (`F64` is read too), and string metadata:
//!
//! | key | value |
//! |---|---|
//! | `format` | `backprop` |
//! | `model` | `mlp`, `simple-conv` or `deep-conv` |
//! | `architecture` | for convolutional nets, their settings as JSON |
//! | `net` | the layer sizes, e.g. `784-50-10` |
//! | `activation` | `relu` or `sigmoid` |
//! | `batch_norm` | `true` when hidden layers are batch-normalised (tensors `gammaK`, `betaK`, `running_meanK`, `running_varK`) |
//! | `dropout` | the dropout ratio, when the net has dropout |
//! | `weight_decay` | the L2 `λ` it was trained with, when not 0 |
//! | `normalisation` | `pixel/255`: how images become inputs |
//! | `input_shape` | `28x28` |
//! | `classes` | the class names as a JSON list |
//! | `dataset` | the data set trained on |
//! | `test_accuracy` | the test accuracy of the run's last evaluation, when it had one |
//!
//! A checkpoint (`checkpoint.safetensors` of `backprop train --checkpoint-every`) is such a
//! file with the trainer's state besides: the optimizer's tensors (`optimizer/…`), the loss
//! of every iteration (`train/losses`) and the position in the run (metadata `trainer`).
//! [`load_model`] reads its weights like a model's and says in [`ModelInfo::checkpoint`]
//! at which iteration it was taken.
//!
//! Such a file loads in numpy or PyTorch with the `safetensors` package
//! (`safetensors.numpy.load_file`), and a file written there with the book's names loads here:
//! without metadata, an MLP with ReLU hidden layers is inferred from the shapes of `W1…Wk`
//! (with batch norm when it has `gamma1`).
//!
//! Every file is written to a temporary name in the same folder, synced, and renamed into
//! place, so a crash leaves either the old file or the new one, never a torn one.

// The bytes parsed here come from users: nothing about them is unwrapped or expected.
#![cfg_attr(not(test), deny(clippy::expect_used))]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::net::{Activation, Architecture, Init, MultiLayerNet, NetSpec, Sequential};
use crate::pause_points::pause;

/// Values (64 MB of `f32`) that a model file's metadata may make the loader allocate even
/// when the file holds fewer, so that a file with a tensor missing gets a message naming it.
const SMALL_NET: usize = 1 << 24;

/// The normalisation this crate applies to images: `x = pixel / 255`.
pub const PIXEL_NORMALISATION: &str = "pixel/255";

/// The prefix of the temporary files [`write_together`] writes next to their targets.
pub const TEMP_PREFIX: &str = ".backprop-tmp-";

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
///
/// # Errors
/// When the folder is not writable or the disk is full; `path` is then untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_together(&[(path, bytes)])
}

/// Writes several files as one: each goes to a temporary file beside its target and is
/// synced to disk; only when all of them are there are they renamed into place. A failed
/// write (a full disk, a read-only folder) therefore changes none of the targets, and a
/// process killed at any moment leaves each target either old or new, never torn. The
/// temporaries of a failed write are removed; those of a killed process are named
/// [`TEMP_PREFIX`]`…` and removed by [`remove_stale_temporaries`].
///
/// # Errors
/// When a folder is not writable or the disk is full; no target is changed then.
pub fn write_together(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut staged = Staged::default();
    for (path, bytes) in files {
        staged.add(path, bytes)?;
    }
    staged.commit()
}

/// Files written to synced temporaries, waiting to be renamed into place.
#[derive(Default)]
struct Staged {
    files: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl Staged {
    /// Writes `bytes` to a synced temporary file beside `path`.
    fn add(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(TEMP_PREFIX);
        // tempfile's 0600 would make results unreadable to other users; use a regular file's mode.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let dir = folder_of(path);
        let mut tmp = builder
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, without_temp_name(e)))?;
        pause(|| format!("temporary {}", file_name(path)));
        let file = tmp.as_file_mut();
        let (first, second) = bytes.split_at(bytes.len() / 2);
        file.write_all(first).map_err(|e| Error::io(path, e))?;
        pause(|| format!("half {}", file_name(path)));
        file.write_all(second).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        pause(|| format!("synced {}", file_name(path)));
        self.files.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file into place, in the order added, and syncs their folders so
    /// the renames survive a power cut. A rename fails only if the folder changed under the
    /// process; the files renamed before it stay renamed.
    fn commit(self) -> Result<()> {
        let mut folders: Vec<PathBuf> = Vec::new();
        for (tmp, path) in self.files {
            tmp.persist(&path)
                .map_err(|e| Error::io(&path, without_temp_name(e.error)))?;
            pause(|| format!("renamed {}", file_name(&path)));
            let dir = folder_of(&path).to_path_buf();
            if !folders.contains(&dir) {
                folders.push(dir);
            }
        }
        for dir in folders {
            // Not every file system lets a folder be synced; the data itself already is.
            if let Ok(handle) = std::fs::File::open(&dir) {
                let _ = handle.sync_all();
            }
        }
        Ok(())
    }
}

/// The operating system's error without the temporary file's name that `tempfile` appends
/// to it: the messages name the file being written instead.
fn without_temp_name(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    match text.find(" at path \"") {
        Some(end) => std::io::Error::new(e.kind(), &text[..end]),
        None => e,
    }
}

/// The last part of `path`, as the pause points name it.
fn file_name(path: &Path) -> std::borrow::Cow<'_, str> {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes the temporary files that a killed process left in `dir` (named [`TEMP_PREFIX`]`…`);
/// returns how many there were.
///
/// # Errors
/// When `dir` cannot be listed or a temporary cannot be removed.
pub fn remove_stale_temporaries(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

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
    /// The test accuracy of the run's last evaluation, when known.
    pub test_accuracy: Option<f64>,
    /// Where in its run the file was taken, when it is a checkpoint (not saved by
    /// [`save_model`]: a model file is a finished run).
    pub checkpoint: Option<RunPosition>,
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

/// The position and the last test accuracy recorded in a checkpoint's trainer state (the
/// JSON of [`crate::train::Trainer::checkpoint`]); `None` when `json` is not one.
fn checkpoint_position(json: &str) -> Option<(RunPosition, Option<f64>)> {
    let state: serde_json::Value = serde_json::from_str(json).ok()?;
    let count = |v: &serde_json::Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
    let position = RunPosition {
        iteration: count(state.get("iter")?)?,
        iters: count(state.get("config")?.get("iters")?)?,
    };
    let accuracy = state
        .get("history")?
        .as_array()?
        .last()
        .and_then(|r| r.get("test_acc")?.as_f64());
    Some((position, accuracy))
}

impl ModelInfo {
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
        meta
    }
}

/// Tensors and metadata read from a safetensors file; `F32` and `F64` tensors both become
/// `f64` arrays, which hold every `f32` exactly.
#[derive(Debug)]
pub struct TensorFile {
    /// Tensors by name, in file order of names.
    pub tensors: Vec<(String, ArrayD<f64>)>,
    /// The string metadata (empty when the file has none).
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    /// Parses safetensors `bytes`; `path` names the file in errors.
    ///
    /// # Errors
    /// When the bytes are not a valid safetensors file or a tensor is not `F32`/`F64`.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let invalid = |what: String| Error::Model {
            path: path.to_path_buf(),
            what,
        };
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| invalid(format!("not a safetensors file: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| invalid(format!("not a safetensors file: {e}")))?;
        let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
        names.sort_by_key(|a| natural_key(a));
        let mut tensors = Vec::with_capacity(names.len());
        for name in names {
            let view = st
                .tensor(&name)
                .map_err(|e| invalid(format!("tensor {name}: {e}")))?;
            let values: Vec<f64> = match view.dtype() {
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
                Dtype::F64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
                other => {
                    return Err(invalid(format!(
                        "tensor {name} has dtype {other:?}; expected F32 or F64"
                    )));
                }
            };
            let array = ArrayD::from_shape_vec(IxDyn(view.shape()), values)
                .map_err(|e| invalid(format!("tensor {name}: {e}")))?;
            tensors.push((name, array));
        }
        Ok(TensorFile { tensors, metadata })
    }

    /// Reads and parses a safetensors file.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), and when the file cannot be read.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&bytes, path)
    }

    /// Takes the tensor `name` out of the file.
    pub fn take(&mut self, name: &str) -> Option<ArrayD<f64>> {
        let i = self.tensors.iter().position(|(n, _)| n == name)?;
        Some(self.tensors.remove(i).1)
    }
}

/// `W10` sorts after `W9`: the name split into its letters and its number.
fn natural_key(name: &str) -> (String, u64, String) {
    let digits_at = name
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(name.len());
    let (head, rest) = name.split_at(digits_at);
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let number = rest[..digits_end].parse().unwrap_or(0);
    (head.to_string(), number, rest[digits_end..].to_string())
}

/// Serialises `f32` tensors (`F32`) and `f64` tensors (`F64`) with metadata.
///
/// # Panics
/// Never for arrays built by this crate (their layout is standard).
#[allow(
    clippy::expect_used,
    reason = "each view's bytes are made here from its array, so they match its shape"
)]
pub fn encode_tensors(
    f32_tensors: &[(String, ArrayViewD<'_, f32>)],
    f64_tensors: &[(String, ArrayViewD<'_, f64>)],
    metadata: HashMap<String, String>,
) -> Vec<u8> {
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, a) in f32_tensors {
        let bytes = a.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), Dtype::F32, a.shape().to_vec(), bytes));
    }
    for (name, a) in f64_tensors {
        let bytes = a.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), Dtype::F64, a.shape().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            let view =
                TensorView::new(*dtype, shape.clone(), bytes).expect("shape and byte length agree");
            (name.clone(), view)
        })
        .collect();
    let bytes =
        safetensors::serialize(views, Some(metadata)).expect("in-memory serialisation cannot fail");
    with_sorted_metadata(bytes)
}

/// The same file with the `__metadata__` entries of its header in key order. safetensors
/// writes them in hash-map order, which differs from run to run; sorted, the same weights
/// always give the same bytes. The header keeps its length (compact JSON, same keys), so
/// the tensor offsets stay valid.
fn with_sorted_metadata(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(&[a, b, c, d, e, f, g, h]) = bytes.first_chunk::<8>() else {
        return bytes;
    };
    let header_len = u64::from_le_bytes([a, b, c, d, e, f, g, h]) as usize;
    let Some(header) = bytes.get(8..8 + header_len) else {
        return bytes;
    };
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(header) else {
        return bytes;
    };
    if let Some(serde_json::Value::Object(meta)) = json.get_mut("__metadata__") {
        meta.sort_keys();
    }
    let Ok(mut sorted) = serde_json::to_vec(&json) else {
        return bytes;
    };
    if sorted.len() > header_len {
        return bytes;
    }
    sorted.resize(header_len, b' ');
    bytes[8..8 + header_len].copy_from_slice(&sorted);
    bytes
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

/// Loads a model file: the net with its weights, and what the file says about it.
///
/// # Errors
/// When the file is not a valid model: not safetensors, a tensor missing or unexpected, a
/// shape that does not fit the net spec, a non-finite weight, bad metadata.
pub fn load_model(path: &Path) -> Result<(Sequential<f32>, ModelInfo)> {
    let file = TensorFile::read(path)?;
    model_from(file, path)
}

/// Builds the net and info of a parsed model (or checkpoint) file, taking its parameters.
///
/// # Errors
/// As [`load_model`].
pub fn model_from(mut file: TensorFile, path: &Path) -> Result<(Sequential<f32>, ModelInfo)> {
    let invalid = |what: String| Error::Model {
        path: path.to_path_buf(),
        what,
    };
    let checkpoint = match file.metadata.get(TRAINER_KEY) {
        Some(json) => Some(checkpoint_position(json).ok_or_else(|| {
            invalid("metadata trainer is not the state of a `backprop train` run".into())
        })?),
        None => None,
    };
    if checkpoint.is_some() {
        // The optimizer's state and the losses are for resuming; the weights are the model.
        file.tensors.retain(|(name, _)| !is_trainer_tensor(name));
    }
    let meta = &file.metadata;
    let net = match meta.get("architecture") {
        Some(json) => serde_json::from_str::<Architecture>(json)
            .map_err(|e| invalid(format!("metadata architecture: {e}")))?,
        None => Architecture::Mlp(mlp_from(&file, path)?),
    };
    let outputs = net.outputs();
    let class_names: Vec<String> = match meta.get("classes") {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| invalid(format!("metadata classes: {e}")))?
        }
        None => (0..outputs).map(|c| c.to_string()).collect(),
    };
    if class_names.len() != outputs {
        return Err(invalid(format!(
            "metadata lists {} classes but the net has {outputs} outputs",
            class_names.len(),
        )));
    }
    let input_shape =
        match meta.get("input_shape") {
            Some(text) => Some(parse_shape(text).ok_or_else(|| {
                invalid(format!("metadata input_shape {text:?} is not ROWSxCOLS"))
            })?),
            None => None,
        };
    let info = ModelInfo {
        normalisation: meta
            .get("normalisation")
            .cloned()
            .unwrap_or_else(|| PIXEL_NORMALISATION.into()),
        dataset: meta.get("dataset").cloned(),
        test_accuracy: match meta.get("test_accuracy") {
            Some(text) => Some(text.parse::<f64>().map_err(|_| {
                invalid(format!("metadata test_accuracy {text:?} is not a number"))
            })?),
            None => checkpoint.and_then(|(_, accuracy)| accuracy),
        },
        checkpoint: checkpoint.map(|(position, _)| position),
        net,
        input_shape,
        class_names,
    };
    // Metadata may claim any size: build at most what the file's own values could fill, or
    // a small net (whose missing tensors are then named one by one below).
    let held: usize = file.tensors.iter().map(|(_, a)| a.len()).sum();
    match info.net.param_count() {
        Some(needed) if needed <= held.max(SMALL_NET) => {}
        needed => {
            return Err(invalid(format!(
                "the metadata describes a net ({}) of {} values but the file holds {held}",
                info.net.layout(),
                needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            )));
        }
    }
    let mut net = info
        .net
        .build::<f32>(0)
        .map_err(|e| invalid(e.to_string()))?;
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
        let value = take_tensor(&mut file, &name, &shape, &info, path)?;
        values.push((name, value));
    }
    set_tensors(&mut net, values);
    if !file.tensors.is_empty() {
        let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
        return Err(invalid(format!(
            "unexpected tensors {}: net {} holds {} only; {}",
            names.join(", "),
            info.net.layout(),
            named_params(&mut net)
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            what_extra_tensors_mean(&names)
        )));
    }
    Ok((net, info))
}

/// What a file whose tensors include `extra` (names the net does not have) seems to be, and
/// what to do with it.
fn what_extra_tensors_mean(extra: &[&str]) -> String {
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
fn looks_like_pytorch(name: &str) -> bool {
    [".weight", ".bias", ".running_mean", ".running_var"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// What to do with a PyTorch `state_dict`.
const PYTORCH_ADVICE: &str = "they look like a PyTorch state_dict; name the tensors W1, b1, W2, b2, … \
     as in the book, with each W of shape (in, out) (Linear.weight transposed)";

/// The fully connected net described by a file's metadata (`net`, `activation`, `batch_norm`,
/// `dropout`, `weight_decay`), or inferred from its tensors when it has none.
fn mlp_from(file: &TensorFile, path: &Path) -> Result<MultiLayerNet> {
    let invalid = |what: String| Error::Model {
        path: path.to_path_buf(),
        what,
    };
    let meta = &file.metadata;
    let sizes = match meta.get("net") {
        Some(text) => text
            .parse::<NetSpec>()
            .map_err(|e| invalid(e.to_string()))?,
        None => infer_spec(file, path)?,
    };
    let flag = |key: &str| -> Result<bool> {
        match meta.get(key).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(invalid(format!(
                "metadata {key} is {other:?}; expected true or false"
            ))),
        }
    };
    let number = |key: &str| -> Result<Option<f64>> {
        meta.get(key)
            .map(|text| {
                text.parse::<f64>()
                    .map_err(|_| invalid(format!("metadata {key} {text:?} is not a number")))
            })
            .transpose()
    };
    let net = MultiLayerNet {
        activation: match meta.get("activation") {
            Some(text) => text
                .parse::<Activation>()
                .map_err(|e| invalid(e.to_string()))?,
            None => Activation::Relu,
        },
        init: Init::Std(0.0),
        batch_norm: flag("batch_norm")? || (!meta.contains_key("net") && has(file, "gamma1")),
        dropout: number("dropout")?,
        weight_decay: number("weight_decay")?.unwrap_or(0.0),
        sizes,
    };
    net.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(net)
}

/// Whether `file` holds a tensor `name`.
fn has(file: &TensorFile, name: &str) -> bool {
    file.tensors.iter().any(|(n, _)| n == name)
}

/// Takes tensor `name` out of `file`, checking its shape and that its values are finite.
fn take_tensor(
    file: &mut TensorFile,
    name: &str,
    shape: &IxDyn,
    info: &ModelInfo,
    path: &Path,
) -> Result<ArrayD<f32>> {
    let invalid = |what: String| Error::Model {
        path: path.to_path_buf(),
        what,
    };
    let stored = file.take(name).ok_or_else(|| {
        invalid(format!(
            "tensor {name} is missing (net {})",
            info.net.layout()
        ))
    })?;
    if stored.shape() != shape.slice() {
        return Err(invalid(format!(
            "tensor {name} has shape {:?} but net {} needs {:?}",
            stored.shape(),
            info.net.layout(),
            shape.slice()
        )));
    }
    if stored.iter().any(|v| !v.is_finite()) {
        return Err(invalid(format!(
            "tensor {name} holds NaN or infinite values: the weights are unusable (saved from a diverged run?)"
        )));
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

/// The MLP spec implied by the shapes of `W1 (d0, d1)`, `W2 (d1, d2)`, …
fn infer_spec(file: &TensorFile, path: &Path) -> Result<NetSpec> {
    let invalid = |what: String| Error::Model {
        path: path.to_path_buf(),
        what,
    };
    let shape_of = |name: &str| {
        file.tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.shape().to_vec())
    };
    let mut sizes = Vec::new();
    for k in 1.. {
        let Some(shape) = shape_of(&format!("W{k}")) else {
            break;
        };
        let &[rows, cols] = shape.as_slice() else {
            return Err(invalid(format!(
                "W{k} has shape {shape:?}; expected (in, out)"
            )));
        };
        match sizes.last() {
            None => sizes.extend([rows, cols]),
            Some(&prev) if prev == rows => sizes.push(cols),
            Some(&prev) => {
                return Err(invalid(format!(
                    "W{k} has shape ({rows}, {cols}) but W{} has {prev} outputs; W must be (in, out) as in the book \
                     (PyTorch's Linear.weight is (out, in): transpose it)",
                    k - 1
                )));
            }
        }
    }
    if sizes.is_empty() {
        let pytorch = file.tensors.iter().any(|(n, _)| looks_like_pytorch(n));
        return Err(invalid(if pytorch {
            format!("no tensor W1: {PYTORCH_ADVICE}")
        } else {
            "no tensor W1: a model file names its weights W1, b1, W2, b2, … as in the book".into()
        }));
    }
    NetSpec::new(sizes).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_of_a_set_changes_none_of_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("metrics.csv");
        std::fs::write(&first, "old").unwrap();
        let missing = dir.path().join("no-such-folder/model.safetensors");
        let err = write_together(&[(&first, b"new"), (&missing, b"model")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: No such file or directory (os error 2)",
                missing.parent().unwrap().display()
            )
        );
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["metrics.csv"], "a temporary was left behind");

        write_together(&[(&first, b"new")]).unwrap();
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "new");
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".backprop-tmp-abc",
            ".backprop-tmp-x1",
            "model.safetensors",
            ".tmp-other",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 2);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".tmp-other", "model.safetensors"]);
    }

    #[test]
    fn natural_order_of_names() {
        let mut names = vec!["W10", "b1", "W2", "W1"];
        names.sort_by_key(|a| natural_key(a));
        assert_eq!(names, ["W1", "W2", "W10", "b1"]);
    }
}
