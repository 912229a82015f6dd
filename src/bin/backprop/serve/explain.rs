//! The lab's views of a net at work: a batch of one image traced through every layer and
//! back (`/api/trace`), each layer's activations (`/api/predict?layers`), and the gradient
//! check of `backprop gradcheck` with both gradients side by side (`/api/gradcheck`).

use backprop::data::Dataset;
use backprop::functions::Targets;
use backprop::layers::Mode;
use backprop::net::{Architecture, MultiLayerNet, Sequential, TwoLayerNet};
use ndarray::{ArrayD, ArrayViewD};
use serde_json::{Value, json};

use super::api::{Refusal, refuse};
use crate::gradcheck;

/// Each layer's formula: the header of its file in `src/layers/`, the very text a learner
/// reads there.
const LAYER_FILES: [(&str, &str); 8] = [
    ("Affine", include_str!("../../../layers/affine.rs")),
    ("Relu", include_str!("../../../layers/relu.rs")),
    ("Sigmoid", include_str!("../../../layers/sigmoid.rs")),
    ("Dropout", include_str!("../../../layers/dropout.rs")),
    ("BatchNorm", include_str!("../../../layers/batch_norm.rs")),
    ("Conv", include_str!("../../../layers/convolution.rs")),
    ("Pool", include_str!("../../../layers/pooling.rs")),
    (
        "SoftmaxWithLoss",
        include_str!("../../../layers/softmax_with_loss.rs"),
    ),
];

/// Tensors larger than this are sent as their shape and summary alone (an Affine weight of a
/// convolutional net has 432,000).
const MOST_VALUES: usize = 1 << 16;

/// The most parameters a gradient check from the lab may have: each costs two forward passes.
const MOST_CHECKED: usize = 100_000;

/// The most images a gradient check from the lab takes (each forward pass is over all of them).
const MOST_CHECKED_IMAGES: usize = 100;

/// The formula of a layer of `kind`: its file's first line and its `text` block.
pub fn formula(kind: &str) -> Vec<String> {
    let Some((_, source)) = LAYER_FILES.iter().find(|(k, _)| *k == kind) else {
        return Vec::new();
    };
    let doc: Vec<&str> = source
        .lines()
        .map_while(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect();
    let block = doc
        .iter()
        .skip_while(|line| **line != "```text")
        .skip(1)
        .take_while(|line| **line != "```");
    doc.first()
        .into_iter()
        .chain(block)
        .map(|line| line.to_string())
        .collect()
}

/// A tensor as `{"shape", "values"}`, or for a large one `{"shape", "mean_abs", "max_abs"}`.
fn tensor(a: ArrayViewD<'_, f32>) -> Value {
    if a.len() <= MOST_VALUES {
        json!({ "shape": a.shape(), "values": a.iter().collect::<Vec<_>>() })
    } else {
        let sum = a.iter().map(|v| f64::from(v.abs())).sum::<f64>();
        let most = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        json!({ "shape": a.shape(), "mean_abs": sum / a.len() as f64, "max_abs": most })
    }
}

/// `POST /api/trace`: `{"image": i}` (test image `i` and its label) or `{"pixels": [...],
/// "label": c}` through `net` (or, with `"fresh": seed`, a fresh TwoLayerNet) and back.
pub fn trace(
    net: &mut Sequential<f32>,
    data: &Dataset,
    body: &[u8],
    pixels_of: impl Fn(&[f64]) -> Result<Vec<u8>, Refusal>,
) -> Result<Value, Refusal> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Request {
        image: Option<usize>,
        pixels: Option<Vec<f64>>,
        label: Option<usize>,
        fresh: Option<u64>,
    }
    let request: Request = serde_json::from_slice(body).map_err(|e| {
        refuse(
            400,
            format!("the body is not {{\"image\": i}} or {{\"pixels\": [...], \"label\": c}}: {e}"),
        )
    })?;
    let (pixels, label, index) = match (request.image, request.pixels) {
        (Some(i), None) => {
            let (pixels, label) = test_image(data, i)?;
            (pixels, request.label.unwrap_or(label), Some(i))
        }
        (None, Some(values)) => {
            let label = request.label.ok_or_else(|| {
                refuse(
                    400,
                    "pixels need a \"label\": the class the loss compares with",
                )
            })?;
            (pixels_of(&values)?, label, None)
        }
        _ => {
            return Err(refuse(
                400,
                "give \"image\" (a test image's index) or \"pixels\", not both",
            ));
        }
    };
    let mut fresh;
    let net = match request.fresh {
        Some(seed) => {
            fresh =
                TwoLayerNet::new(data.input_size(), 50, data.classes(), 0.01, seed).into_inner();
            &mut fresh
        }
        None => net,
    };
    let classes = net.io_widths().map_or(0, |(_, outputs)| outputs);
    if label >= classes {
        return Err(refuse(
            400,
            format!(
                "label {label}: the net has {classes} classes, 0 to {}",
                classes.saturating_sub(1)
            ),
        ));
    }
    let x = ArrayD::from_shape_fn(vec![1, pixels.len()], |i| f32::from(pixels[i[1]]) / 255.0);
    let trace = net
        .trace(x.view(), &Targets::Indices(vec![label]))
        .map_err(|e| {
            // The library's reason, with what the lab offers instead of a larger batch.
            let lab = "in the lab: trace a fresh TwoLayerNet, or serve a model without batch norm";
            refuse(422, format!("{e} ({lab})"))
        })?;
    let layers: Vec<Value> = trace
        .layers
        .iter()
        .map(|layer| {
            json!({
                "name": layer.name,
                "kind": layer.kind,
                "formula": formula(layer.kind),
                "x": tensor(layer.x.view()),
                "y": tensor(layer.y.view()),
                "dout": tensor(layer.dout.view()),
                "dx": tensor(layer.dx.view()),
                "branches": layer.branches.as_ref().map(|b| {
                    json!({ "shape": b.shape(), "taken": b.iter().filter(|&&t| t).count() })
                }),
                "params": layer.params.iter().map(|(name, value, grad)| json!({
                    "name": name,
                    "value": tensor(value.view()),
                    "grad": tensor(grad.view()),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "image": index,
        "label": label,
        "pixels": pixels,
        "fresh": request.fresh,
        "layers": layers,
        "loss": {
            "name": "SoftmaxWithLoss",
            "formula": formula("SoftmaxWithLoss"),
            "scores": tensor(trace.scores.view().into_dyn()),
            "probabilities": tensor(trace.probabilities.view().into_dyn()),
            "loss": trace.loss,
            "dscores": tensor(trace.dscores.view().into_dyn()),
        },
    }))
}

/// `GET /api/image?index=i`: test image `i` and its label.
pub fn image(data: &Dataset, query: &str) -> Result<Value, Refusal> {
    let text = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("index="))
        .ok_or_else(|| refuse(400, "give ?index=i, a test image's index"))?;
    let index = text
        .parse::<usize>()
        .map_err(|_| refuse(400, format!("index={text:?} is not a whole number")))?;
    let (pixels, label) = test_image(data, index)?;
    Ok(json!({
        "index": index,
        "label": label,
        "class": data.class_names[label],
        "pixels": pixels,
        "images": data.test.len(),
    }))
}

fn test_image(data: &Dataset, index: usize) -> Result<(Vec<u8>, usize), Refusal> {
    let count = data.test.len();
    if index >= count {
        if count == 0 {
            return Err(refuse(400, format!("{} has no test images", data.name)));
        }
        return Err(refuse(
            400,
            format!(
                "there is no test image {index}: {} has {count}, 0 to {}",
                data.name,
                count - 1
            ),
        ));
    }
    Ok((
        data.test.images.row(index).to_vec(),
        usize::from(data.test.labels[index]),
    ))
}

/// Each layer's name and output, for `/api/predict?layers`: the inference the answer comes
/// from.
pub fn activations(net: &mut Sequential<f32>, x: ArrayViewD<'_, f32>) -> Value {
    let names: Vec<String> = net.layer_names().iter().map(|n| n.to_string()).collect();
    let outputs = net.activations(x, Mode::Eval);
    names
        .iter()
        .zip(&outputs)
        .map(|(name, y)| json!({ "name": name, "y": tensor(y.view()) }))
        .collect::<Vec<_>>()
        .into()
}

/// `GET /api/gradcheck?net=784-50-10&seed=0&weight_init_std=0.01&images=3`: `backprop
/// gradcheck` with the same settings (its flags, its defaults), each parameter's two
/// gradients side by side.
pub fn gradcheck(data: &Dataset, query: &str) -> Result<Value, Refusal> {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        setup: gradcheck::Setup,
    }
    let flags = super::api::query_flags(query)?;
    let Flags { setup } = <Flags as clap::Parser>::try_parse_from(
        std::iter::once("gradcheck".to_string()).chain(flags),
    )
    .map_err(|e| refuse(400, super::api::clap_line(&e)))?;
    if setup.images > MOST_CHECKED_IMAGES {
        return Err(refuse(
            422,
            format!(
                "{} images: the lab checks on up to {MOST_CHECKED_IMAGES}; run `backprop gradcheck --images {}`",
                setup.images, setup.images
            ),
        ));
    }
    let params = Architecture::Mlp(MultiLayerNet::new(setup.net.clone()))
        .param_count()
        .unwrap_or(usize::MAX);
    if params > MOST_CHECKED {
        return Err(refuse(
            422,
            format!(
                "the net {} has {params} parameters, each checked by two forward passes; the lab checks up to {MOST_CHECKED}: run `backprop gradcheck --net {}`",
                setup.net, setup.net
            ),
        ));
    }
    let (report, sides) = gradcheck::check(&setup, data).map_err(|e| refuse(422, e.to_string()))?;
    let entries: Vec<Value> = report
        .entries
        .iter()
        .zip(&sides)
        .map(|((name, comparison), (_, backprop, numerical))| {
            // The elements with the largest gradients, where a mistake would show most.
            let flat = |a: &ArrayD<f64>| a.iter().copied().collect::<Vec<f64>>();
            let (b, n) = (flat(backprop), flat(numerical));
            let mut order: Vec<usize> = (0..b.len()).collect();
            order.sort_by(|&i, &j| b[j].abs().total_cmp(&b[i].abs()).then(i.cmp(&j)));
            let largest: Vec<Value> = order
                .iter()
                .take(8)
                .map(|&i| json!({ "index": unravel(i, backprop.shape()), "backprop": b[i], "numerical": n[i] }))
                .collect();
            json!({
                "name": name,
                "shape": backprop.shape(),
                "mean_abs_diff": comparison.mean_abs_diff,
                "max_rel_err": comparison.max_rel_err,
                "largest": largest,
            })
        })
        .collect();
    Ok(json!({
        "net": setup.net.to_string(),
        "entries": entries,
        "kinks": report.kinks,
    }))
}

/// The multi-index of element `i` of a standard-layout array of `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &n) in index.iter_mut().zip(shape).rev() {
        *slot = i % n.max(1);
        i /= n.max(1);
    }
    index
}

#[cfg(test)]
mod tests {
    use backprop::net::{Activation, Architecture, Init, MultiLayerNet, NetSpec, SimpleConvNet};

    /// Every kind of layer a net can have shows its file's formula: its section of the book,
    /// then its backward rule.
    #[test]
    fn every_layer_kind_has_its_files_formula() -> Result<(), backprop::Error> {
        let mlp = MultiLayerNet {
            sizes: NetSpec::book(),
            activation: Activation::Sigmoid,
            init: Init::Std(0.01),
            batch_norm: true,
            dropout: Some(0.1),
            weight_decay: 0.0,
        };
        let mut kinds = vec!["SoftmaxWithLoss"];
        for net in [
            Architecture::Mlp(mlp),
            Architecture::Mlp(MultiLayerNet::new(NetSpec::book())),
            Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10)),
        ] {
            let net = net.build::<f32>(0)?;
            kinds.extend(net.layers().map(|(_, layer, _)| layer.kind()));
        }
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        for kind in kinds {
            let formula = super::formula(kind);
            assert!(
                formula[0].contains('§') && formula.concat().contains("∂L/∂"),
                "{kind}: {formula:?}"
            );
        }
        Ok(())
    }
}
