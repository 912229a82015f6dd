//! Model files in the safetensors format, and atomic writes.
//!
//! A model file holds one tensor per parameter, named as in the book (`W1`, `b1`, `W2`, …,
//! with `W` of shape `(in, out)`), in `F32` (`F64` is read too), and string metadata:
//!
//! | key | value |
//! |---|---|
//! | `format` | `backprop` |
//! | `net` | the net spec, e.g. `784-50-10` |
//! | `activation` | `relu` |
//! | `normalisation` | `pixel/255`: how images become inputs |
//! | `input_shape` | `28x28` |
//! | `classes` | the class names as a JSON list |
//! | `dataset` | the data set trained on |
//!
//! Such a file loads in numpy or PyTorch with the `safetensors` package
//! (`safetensors.numpy.load_file`), and a file written there with the book's names loads here:
//! without metadata, an MLP with ReLU hidden layers is inferred from the shapes of `W1…Wk`.
//!
//! Every file is written to a temporary name in the same folder, synced, and renamed into
//! place, so a crash leaves either the old file or the new one, never a torn one.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::net::{NetSpec, Sequential};

/// The normalisation this crate applies to images: `x = pixel / 255`.
pub const PIXEL_NORMALISATION: &str = "pixel/255";

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
///
/// # Errors
/// When the folder is not writable or the disk is full; `path` is then untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    // tempfile's 0600 would make results unreadable to other users; use a regular file's mode.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// What a model file says besides its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The architecture.
    pub spec: NetSpec,
    /// How images become inputs (`pixel/255`).
    pub normalisation: String,
    /// The image shape `(rows, cols)` the net was trained on, when known.
    pub input_shape: Option<(usize, usize)>,
    /// Class names, index 0 first.
    pub class_names: Vec<String>,
    /// The data set trained on, when known.
    pub dataset: Option<String>,
}

impl ModelInfo {
    /// The metadata map stored in the file.
    pub(crate) fn to_metadata(&self) -> HashMap<String, String> {
        let mut meta = HashMap::new();
        meta.insert("format".into(), "backprop".into());
        meta.insert("net".into(), self.spec.to_string());
        meta.insert("activation".into(), "relu".into());
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
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
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
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = &bytes[8..8 + header_len];
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(header) else {
        return bytes;
    };
    if let Some(serde_json::Value::Object(meta)) = json.get_mut("__metadata__") {
        meta.sort_keys();
    }
    let mut sorted = serde_json::to_vec(&json).expect("a JSON value serialises");
    if sorted.len() > header_len {
        return bytes;
    }
    sorted.resize(header_len, b' ');
    bytes[8..8 + header_len].copy_from_slice(&sorted);
    bytes
}

/// The parameters of `net` as `(name, value)` pairs in the net's order.
pub fn named_params(net: &mut Sequential<f32>) -> Vec<(String, ArrayD<f32>)> {
    net.params_mut()
        .into_iter()
        .map(|p| (p.name, p.param.value.to_owned()))
        .collect()
}

/// Saves `net` with `info` to `path` atomically.
///
/// # Errors
/// When the file cannot be written; an existing file at `path` is then untouched.
pub fn save_model(path: &Path, net: &mut Sequential<f32>, info: &ModelInfo) -> Result<()> {
    let params = named_params(net);
    let views: Vec<(String, ArrayViewD<'_, f32>)> =
        params.iter().map(|(n, a)| (n.clone(), a.view())).collect();
    write_atomically(path, &encode_tensors(&views, &[], info.to_metadata()))
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
    let meta = &file.metadata;
    let spec = match meta.get("net") {
        Some(text) => text
            .parse::<NetSpec>()
            .map_err(|e| invalid(e.to_string()))?,
        None => infer_spec(&file, path)?,
    };
    if let Some(act) = meta.get("activation").filter(|a| a.as_str() != "relu") {
        return Err(invalid(format!(
            "activation {act:?} is not supported; expected relu"
        )));
    }
    let class_names: Vec<String> = match meta.get("classes") {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| invalid(format!("metadata classes: {e}")))?
        }
        None => (0..spec.outputs()).map(|c| c.to_string()).collect(),
    };
    if class_names.len() != spec.outputs() {
        return Err(invalid(format!(
            "metadata lists {} classes but the net has {} outputs",
            class_names.len(),
            spec.outputs()
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
        spec,
        input_shape,
        class_names,
    };
    let mut net = info.spec.build::<f32>(0.0, 0);
    for p in net.params_mut() {
        let mut value = p.param.value;
        let stored = file
            .take(&p.name)
            .ok_or_else(|| invalid(format!("tensor {} is missing (net {})", p.name, info.spec)))?;
        if stored.shape() != value.shape() {
            return Err(invalid(format!(
                "tensor {} has shape {:?} but net {} needs {:?}",
                p.name,
                stored.shape(),
                info.spec,
                value.shape()
            )));
        }
        if stored.iter().any(|v| !v.is_finite()) {
            return Err(invalid(format!(
                "tensor {} holds NaN or infinite values: the weights are unusable (saved from a diverged run?)",
                p.name
            )));
        }
        value.zip_mut_with(&stored, |v, &s| *v = s as f32);
    }
    if !file.tensors.is_empty() {
        let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
        return Err(invalid(format!(
            "unexpected tensors {}: a model holds W1, b1, W2, b2, … only",
            names.join(", ")
        )));
    }
    Ok((net, info))
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
        return Err(invalid(
            "no tensor W1: a model file names its weights W1, b1, W2, b2, … as in the book".into(),
        ));
    }
    NetSpec::new(sizes).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_of_names() {
        let mut names = vec!["W10", "b1", "W2", "W1"];
        names.sort_by_key(|a| natural_key(a));
        assert_eq!(names, ["W1", "W2", "W10", "b1"]);
    }
}
