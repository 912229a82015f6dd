//! Which net a file's tensors are: from its metadata when it has some (every file `backprop`
//! writes), else from the shapes of its weights (the book's pickles, files written in numpy),
//! saying what had to be assumed.
//!
//! | the weights | the net |
//! |---|---|
//! | 2-D `W1 (d0, d1)`, `W2 (d1, d2)`, … | an MLP `d0-d1-d2-…`, batch-normalised when there is a `gamma1` |
//! | a 4-D `W1 (FN, C, FH, FW)`, then 2-D `W2`, `W3` | SimpleConvNet (§7.5) |
//! | six 4-D `W1…W6`, then 2-D `W7`, `W8` | DeepConvNet (§8.1), with its dropout in inference form |
//!
//! Shapes cannot tell an MLP's hidden activation, nor the images' size: without metadata the
//! first is [`LoadOptions::activation`] or ReLU, the second 28×28, and both are said.

use std::path::Path;

use super::tensors::TensorFile;
use crate::error::{Error, Result};
use crate::layers::Window;
use crate::net::{
    Activation, Architecture, DeepConvNet, Init, MultiLayerNet, NetSpec, SimpleConvNet,
};

/// What a user tells the loader about a file that may not say it itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadOptions {
    /// The hidden activation of a fully connected net, for a file whose metadata does not
    /// name it (`--activation`). A file that names another one is refused.
    pub activation: Option<Activation>,
    /// Seeds the dropout masks of the net built (what training from its weights draws).
    pub seed: u64,
}

/// The side of the images assumed for a convolutional net found without metadata: MNIST's.
const ASSUMED_SIDE: usize = 28;

/// The net that `file`'s tensors make, and what was assumed to find it (empty when its
/// metadata said everything).
pub(super) fn architecture(
    file: &TensorFile,
    path: &Path,
    options: LoadOptions,
) -> Result<(Architecture, Vec<String>)> {
    let meta = &file.metadata;
    if let Some(json) = meta.get("architecture") {
        let net = serde_json::from_str::<Architecture>(json)
            .map_err(|e| Error::model(path, format!("metadata architecture: {e}")))?;
        conv_activation(options, &net, path)?;
        return Ok((net, Vec::new()));
    }
    let four_d = |k: usize| shape_of(file, &format!("W{k}")).is_some_and(|s| s.len() == 4);
    if !meta.contains_key("net") && four_d(1) {
        let net = conv_from_shapes(file, path)?;
        conv_activation(options, &net, path)?;
        let assumed = vec![format!(
            "no metadata: recognised {} from the tensor shapes; images assumed {ASSUMED_SIDE}×{ASSUMED_SIDE}, inputs pixel/255",
            described(&net)
        )];
        return Ok((net, assumed));
    }
    let (net, assumed) = mlp_from(file, path, options)?;
    Ok((Architecture::Mlp(net), assumed))
}

/// A convolutional net as recognised, in words.
fn described(net: &Architecture) -> String {
    match net {
        Architecture::SimpleConv(n) => format!(
            "SimpleConvNet ({} filters of {}×{}, stride {}, pad {}; {} hidden units; {} classes)",
            n.filters, n.filter_size, n.filter_size, n.stride, n.pad, n.hidden, n.classes
        ),
        Architecture::DeepConv(n) => format!(
            "DeepConvNet ({} hidden units; {} classes; its dropout in inference form, scaling by 0.5)",
            n.hidden, n.classes
        ),
        mlp => mlp.layout(),
    }
}

/// Refuses `--activation` other than ReLU for the convolutional nets, which have ReLU.
fn conv_activation(options: LoadOptions, net: &Architecture, path: &Path) -> Result<()> {
    match (options.activation, net) {
        (Some(Activation::Sigmoid), Architecture::SimpleConv(_) | Architecture::DeepConv(_)) => {
            Err(Error::model(
                path,
                format!(
                    "the file holds a {} (ReLU by design); --activation sigmoid applies to fully connected nets only",
                    net.name()
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The fully connected net described by a file's metadata (`net`, `activation`, `batch_norm`,
/// `dropout`, `weight_decay`), or inferred from its tensors when it has none.
fn mlp_from(
    file: &TensorFile,
    path: &Path,
    options: LoadOptions,
) -> Result<(MultiLayerNet, Vec<String>)> {
    let meta = &file.metadata;
    let sizes = match meta.get("net") {
        Some(text) => text
            .parse::<NetSpec>()
            .map_err(|e| Error::model(path, e.to_string()))?,
        None => infer_spec(file, path)?,
    };
    let flag = |key: &str| -> Result<bool> {
        match meta.get(key).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(Error::model(
                path,
                format!("metadata {key} is {other:?}; expected true or false"),
            )),
        }
    };
    let number = |key: &str| -> Result<Option<f64>> {
        meta.get(key)
            .map(|text| {
                text.parse::<f64>().map_err(|_| {
                    Error::model(path, format!("metadata {key} {text:?} is not a number"))
                })
            })
            .transpose()
    };
    const SIGMOID_HINT: &str = "for a sigmoid net, such as the book's chapter-3 sample_weight.pkl, pass --activation sigmoid";
    let activation = match (meta.get("activation"), options.activation) {
        (Some(text), given) => {
            let stored = text
                .parse::<Activation>()
                .map_err(|e| Error::model(path, e.to_string()))?;
            if given.is_some_and(|given| given != stored) {
                return Err(Error::model(
                    path,
                    format!(
                        "its metadata says the activation is {stored}; leave out --activation or give {stored}"
                    ),
                ));
            }
            stored
        }
        (None, given) => given.unwrap_or(Activation::Relu),
    };
    let activation_said = match (meta.contains_key("activation"), options.activation) {
        (true, _) => None,
        (false, Some(given)) => Some(format!("hidden activation {given}, as --activation says")),
        (false, None) => Some(format!("hidden activation assumed relu ({SIGMOID_HINT})")),
    };
    let assumed = match (meta.contains_key("net"), activation_said) {
        (true, None) => Vec::new(),
        (true, Some(said)) => vec![format!("its metadata does not name the activation: {said}")],
        (false, said) => vec![format!(
            "no metadata: recognised the MLP {sizes} from the tensor shapes{}; inputs assumed pixel/255",
            said.map(|s| format!(", {s}")).unwrap_or_default()
        )],
    };
    let net = MultiLayerNet {
        activation,
        init: Init::Std(0.0),
        batch_norm: flag("batch_norm")? || (!meta.contains_key("net") && has(file, "gamma1")),
        dropout: number("dropout")?,
        weight_decay: number("weight_decay")?.unwrap_or(0.0),
        sizes,
    };
    net.validate()
        .map_err(|e| Error::model(path, e.to_string()))?;
    Ok((net, assumed))
}

/// Whether `file` holds a tensor `name`.
fn has(file: &TensorFile, name: &str) -> bool {
    file.tensors.iter().any(|(n, _)| n == name)
}

/// The shape of tensor `name` in `file`.
fn shape_of<'f>(file: &'f TensorFile, name: &str) -> Option<&'f [usize]> {
    file.tensors
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| a.shape())
}

/// The MLP spec implied by the shapes of `W1 (d0, d1)`, `W2 (d1, d2)`, …
fn infer_spec(file: &TensorFile, path: &Path) -> Result<NetSpec> {
    let mut sizes = Vec::new();
    for k in 1.. {
        let Some(shape) = shape_of(file, &format!("W{k}")) else {
            break;
        };
        let &[rows, cols] = shape else {
            return Err(Error::model(
                path,
                format!(
                    "W{k} has shape {shape:?}; expected (in, out) as W1…W{} before it",
                    k - 1
                ),
            ));
        };
        match sizes.last() {
            None => sizes.extend([rows, cols]),
            Some(&prev) if prev == rows => sizes.push(cols),
            Some(&prev) => {
                return Err(Error::model(
                    path,
                    format!(
                        "W{k} has shape ({rows}, {cols}) but W{} has {prev} outputs; W must be (in, out) as in the book \
                     (PyTorch's Linear.weight is (out, in): transpose it)",
                        k - 1
                    ),
                ));
            }
        }
    }
    if sizes.is_empty() {
        let pytorch = file
            .tensors
            .iter()
            .any(|(n, _)| super::model::looks_like_pytorch(n));
        return Err(Error::model(
            path,
            if pytorch {
                format!("no tensor W1: {}", super::model::PYTORCH_ADVICE)
            } else {
                "no tensor W1: a model file names its weights W1, b1, W2, b2, … as in the book"
                    .into()
            },
        ));
    }
    NetSpec::new(sizes).map_err(|e| Error::model(path, e.to_string()))
}

/// SimpleConvNet or DeepConvNet, from a file whose `W1` is 4-D.
fn conv_from_shapes(file: &TensorFile, path: &Path) -> Result<Architecture> {
    let weights: Vec<&[usize]> = (1..)
        .map_while(|k| shape_of(file, &format!("W{k}")))
        .collect();
    let convs = weights.iter().take_while(|s| s.len() == 4).count();
    let affines = &weights[convs..];
    if let Some(k) = affines.iter().position(|s| s.len() != 2) {
        return Err(Error::model(
            path,
            format!(
                "W{} has shape {:?}; after the convolutions' 4-D weights come Affine weights (in, out)",
                convs + k + 1,
                affines[k]
            ),
        ));
    }
    let Some(&[filters, channels, fh, fw]) = weights.first().copied() else {
        return Err(Error::model(path, "W1 is not a convolution's 4-D weight"));
    };
    if filters == 0 || channels == 0 || fh == 0 || fh > ASSUMED_SIDE || fw > ASSUMED_SIDE {
        return Err(Error::model(
            path,
            format!(
                "W1 has shape {:?}: filters of at least one channel, at most {ASSUMED_SIDE}×{ASSUMED_SIDE}, as (FN, C, FH, FW)",
                weights[0]
            ),
        ));
    }
    let input = (channels, ASSUMED_SIDE, ASSUMED_SIDE);
    match (convs, affines) {
        (1, [w2, w3]) => simple_conv_from(weights[0], (w2, w3), input, path),
        (6, [w7, w8]) => deep_conv_from(&weights[..6], (w7, w8), input, path),
        _ => Err(Error::model(
            path,
            format!(
                "W1 is a convolution's 4-D weight, but the weights ({convs} 4-D, then {} 2-D) fit neither SimpleConvNet \
             (one convolution, then W2 and W3) nor DeepConvNet (six convolutions, then W7 and W8)",
                affines.len()
            ),
        )),
    }
}

/// SimpleConvNet from the shapes of its filters `W1 (FN, C, FH, FW)` and Affine weights.
fn simple_conv_from(
    w1: &[usize],
    (w2, w3): (&[usize], &[usize]),
    input: (usize, usize, usize),
    path: &Path,
) -> Result<Architecture> {
    let (filters, fh, fw) = (w1[0], w1[2], w1[3]);
    if fh != fw {
        return Err(Error::model(
            path,
            format!("W1 has filters of {fh}×{fw}; SimpleConvNet's are square"),
        ));
    }
    // Stride 1 as in the book; the padding is the one whose pooled maps give W2's rows.
    let pooled = |pad: usize| {
        let conv = Window {
            height: fh,
            width: fw,
            stride: 1,
            pad,
        };
        let (h, w) = conv.output_size((ASSUMED_SIDE, ASSUMED_SIDE))?;
        Some(filters * (h / 2) * (w / 2))
    };
    let pad = (0..fh.min(ASSUMED_SIDE))
        .find(|&p| pooled(p) == Some(w2[0]))
        .ok_or_else(|| {
        Error::model(path, format!(
            "W2 has {} rows but SimpleConvNet's {filters} filters of {fh}×{fw} (stride 1, no padding) \
             pooled 2×2 over {ASSUMED_SIDE}×{ASSUMED_SIDE} images give {}",
            w2[0],
            pooled(0).unwrap_or(0)
        ))
    })?;
    if w3[0] != w2[1] {
        return Err(Error::model(
            path,
            format!("W3 has shape {w3:?} but W2 has {} outputs", w2[1]),
        ));
    }
    Ok(Architecture::SimpleConv(SimpleConvNet {
        filters,
        filter_size: fh,
        pad,
        hidden: w2[1],
        ..SimpleConvNet::new(input, w3[1])
    }))
}

/// DeepConvNet from the shapes of its six convolutions' filters and two Affine weights.
fn deep_conv_from(
    convs: &[&[usize]],
    (w7, w8): (&[usize], &[usize]),
    (channels, h, w): (usize, usize, usize),
    path: &Path,
) -> Result<Architecture> {
    let deep = DeepConvNet::new((channels, h, w), w8[1]);
    let expected = [16, 16, 32, 32, 64, 64];
    let mut previous = channels;
    for (k, (&shape, &n)) in convs.iter().zip(&expected).enumerate() {
        let want = [n, previous, 3, 3];
        if shape != want {
            return Err(Error::model(
                path,
                format!(
                    "W{} has shape {shape:?} but DeepConvNet's convolution {} is {want:?}",
                    k + 1,
                    k + 1
                ),
            ));
        }
        previous = n;
    }
    if w8[0] != w7[1] {
        return Err(Error::model(
            path,
            format!("W8 has shape {w8:?} but W7 has {} outputs", w7[1]),
        ));
    }
    Ok(Architecture::DeepConv(DeepConvNet {
        hidden: w7[1],
        ..deep
    }))
}
