//! Named tensors and string metadata: safetensors files, and the book's pickles
//! ([`super::pickle`]) read into the same form.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};

/// Tensors and metadata read from a safetensors file (or a pickle); `F32` and `F64` tensors
/// both become `f64` arrays, which hold every `f32` exactly.
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
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::model(path, format!("not a safetensors file: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::model(path, format!("not a safetensors file: {e}")))?;
        let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
        if names.len() > super::MAX_TENSORS {
            return Err(Error::model(
                path,
                format!(
                    "it holds {} tensors; no net of this crate has more than {}",
                    names.len(),
                    super::MAX_TENSORS
                ),
            ));
        }
        names.sort_by_key(|a| natural_key(a));
        let mut tensors = Vec::with_capacity(names.len());
        for name in names {
            let view = st
                .tensor(&name)
                .map_err(|e| Error::model(path, format!("tensor {name}: {e}")))?;
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
                    return Err(Error::model(
                        path,
                        format!("tensor {name} has dtype {other:?}; expected F32 or F64"),
                    ));
                }
            };
            let array = ArrayD::from_shape_vec(IxDyn(view.shape()), values)
                .map_err(|e| Error::model(path, format!("tensor {name}: {e}")))?;
            tensors.push((name, array));
        }
        Ok(TensorFile { tensors, metadata })
    }

    /// Reads a safetensors file, or a pickle of numpy arrays ([`super::pickle`]), told apart
    /// by their first bytes.
    ///
    /// # Errors
    /// As [`parse`](Self::parse) or [`super::pickle::parse`], and when the file cannot be read.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        // A safetensors header is JSON right after its 8-byte length.
        if bytes.get(8) != Some(&b'{') && super::pickle::looks_like_pickle(path, &bytes) {
            return super::pickle::parse(&bytes, path);
        }
        Self::parse(&bytes, path)
    }

    /// Takes the tensor `name` out of the file.
    pub fn take(&mut self, name: &str) -> Option<ArrayD<f64>> {
        let i = self.tensors.iter().position(|(n, _)| n == name)?;
        Some(self.tensors.remove(i).1)
    }
}

/// `W10` sorts after `W9`: the name split into its letters and its number.
pub(super) fn natural_key(name: &str) -> (String, u64, String) {
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
