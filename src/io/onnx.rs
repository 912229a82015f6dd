//! ONNX export (`backprop export --onnx OUT.onnx --model FILE`): a trained net as a standard
//! ONNX graph (opset 13) that onnxruntime, OpenCV or a browser runs without this crate.
//!
//! The graph takes **raw pixels**, 0 to 255 as `float32`, and divides them by 255 itself (this
//! crate's `pixel/255`), so a caller feeds images as they are. It gives the scores before the
//! softmax (`logits`) and the class probabilities (`probabilities`):
//!
//! | net | input `pixels` | outputs |
//! |---|---|---|
//! | MLP | `(N, D)`, each row an image's `D` pixels in row-major order | `logits (N, classes)`, `probabilities (N, classes)` |
//! | SimpleConvNet, DeepConvNet | `(N, C, H, W)` | the same |
//!
//! Each layer becomes the ONNX operators of its inference form:
//!
//! | layer | ONNX |
//! |---|---|
//! | Affine `Y = X·W + b` | `Flatten` (when `X` has more than 2 axes), `Gemm(X, W, b)` |
//! | ReLU, Sigmoid | `Relu`, `Sigmoid` |
//! | BatchNorm `y = γ·(x − μ)/√(σ² + ε) + β` | `BatchNormalization` with the running `μ`, `σ²` |
//! | Dropout `y = x·(1 − r)` (the book's inference form) | `Mul` by `1 − r` |
//! | Convolution | `Conv` (kernel, strides, pads) |
//! | max Pooling | `MaxPool`; with padding, a `Pad` of zeros first (this crate's pooling counts padding as 0) |
//! | Softmax-with-Loss | the loss is training's: `logits` is its input, `Softmax` gives `probabilities` |
//!
//! The weights are stored as initializers named after their layer (`Affine1.W`, `Conv1.b`),
//! and the class names and normalisation in the model's metadata (`classes`, `normalisation`).

use ndarray::ArrayView;

use super::ModelInfo;
use super::model::PIXEL_NORMALISATION;
use crate::error::{Error, Result};
use crate::layers::{Affine, BatchNorm, Convolution, Dropout, Layer, Pooling, Relu, Sigmoid};
use crate::net::{Architecture, Sequential};

/// The ONNX operator set the graph is written for.
pub const OPSET: i64 = 13;

/// The ONNX IR version of opset 13's release (ONNX 1.8).
const IR_VERSION: i64 = 7;

/// The protocol buffer messages written: the subset of `onnx.proto3` that is used, with its
/// field numbers.
mod proto {
    /// `onnx.ModelProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Model {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(string, tag = "6")]
        pub doc_string: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<Graph>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetId>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntry>,
    }

    /// `onnx.OperatorSetIdProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetId {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    /// `onnx.StringStringEntryProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `onnx.GraphProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Graph {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<Node>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<Tensor>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfo>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfo>,
    }

    /// `onnx.NodeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<Attribute>,
    }

    /// `onnx.AttributeProto`: `type` 1 = FLOAT, 2 = INT, 7 = INTS.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Attribute {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    /// `onnx.TensorProto`: `data_type` 1 = FLOAT, 7 = INT64; values little-endian in `raw_data`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }

    /// `onnx.ValueInfoProto` of a float tensor.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfo {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<Type>,
        #[prost(string, tag = "3")]
        pub doc_string: String,
    }

    /// `onnx.TypeProto` (its `tensor_type`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Type {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorType>,
    }

    /// `onnx.TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorType {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<Shape>,
    }

    /// `onnx.TensorShapeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Shape {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    /// `onnx.TensorShapeProto.Dimension`: a size or a name (`N`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }
}

/// `TensorProto.DataType`s written.
const FLOAT: i32 = 1;
const INT64: i32 = 7;

/// `AttributeProto.AttributeType`s written.
const ATTRIBUTE_FLOAT: i32 = 1;
const ATTRIBUTE_INT: i32 = 2;
const ATTRIBUTE_INTS: i32 = 7;

/// Attributes of a node: a list of integers, an integer, a float.
fn ints(name: &str, values: &[usize]) -> proto::Attribute {
    proto::Attribute {
        name: name.into(),
        ints: values.iter().map(|&v| v as i64).collect(),
        r#type: ATTRIBUTE_INTS,
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> proto::Attribute {
    proto::Attribute {
        name: name.into(),
        i: value,
        r#type: ATTRIBUTE_INT,
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> proto::Attribute {
    proto::Attribute {
        name: name.into(),
        f: value,
        r#type: ATTRIBUTE_FLOAT,
        ..Default::default()
    }
}

/// A graph being written: nodes in order, the weights, and the value the next node reads.
struct GraphBuilder {
    nodes: Vec<proto::Node>,
    initializers: Vec<proto::Tensor>,
    /// The name of the last output, and its number of axes.
    current: (String, usize),
}

impl GraphBuilder {
    /// A float initializer `name` of `values`.
    fn weights<D: ndarray::Dimension>(
        &mut self,
        name: String,
        values: ArrayView<'_, f32, D>,
    ) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, values.shape(), FLOAT, raw)
    }

    /// An INT64 initializer `name` of `values`, a vector.
    fn int64s(&mut self, name: String, values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, &[values.len()], INT64, raw)
    }

    /// An initializer `name` of shape `dims` and `data_type`, its values little-endian in `raw`.
    fn initializer(
        &mut self,
        name: String,
        dims: &[usize],
        data_type: i32,
        raw: Vec<u8>,
    ) -> String {
        self.initializers.push(proto::Tensor {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.clone(),
            raw_data: raw,
        });
        name
    }

    /// Appends `op` reading the current value (then `extra` inputs), named `name`, whose
    /// output becomes the current value with `rank` axes.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        extra: Vec<String>,
        attribute: Vec<proto::Attribute>,
        rank: usize,
    ) {
        let input = std::iter::once(self.current.0.clone())
            .chain(extra)
            .collect();
        self.nodes.push(proto::Node {
            input,
            output: vec![name.to_string()],
            name: name.to_string(),
            op_type: op.to_string(),
            attribute,
        });
        self.current = (name.to_string(), rank);
    }

    /// The ONNX nodes of one layer of the net.
    fn layer(&mut self, name: &str, layer: &dyn Layer<f32>) -> Result<()> {
        let any = layer.as_any();
        let rank = self.current.1;
        if let Some(affine) = any.downcast_ref::<Affine<f32>>() {
            if rank > 2 {
                self.node(
                    "Flatten",
                    &format!("{name}.flatten"),
                    vec![],
                    vec![int("axis", 1)],
                    2,
                );
            }
            let w = self.weights(format!("{name}.W"), affine.weights().view());
            let b = self.weights(format!("{name}.b"), affine.bias().view());
            self.node("Gemm", name, vec![w, b], vec![], 2);
        } else if any.is::<Relu>() {
            self.node("Relu", name, vec![], vec![], rank);
        } else if any.is::<Sigmoid<f32>>() {
            self.node("Sigmoid", name, vec![], vec![], rank);
        } else if let Some(bn) = any.downcast_ref::<BatchNorm<f32>>() {
            if rank != 2 {
                return Err(unsupported(
                    name,
                    "batch norm of images (its statistics are per value, ONNX's per channel)",
                ));
            }
            let ((gamma, beta), (mean, var)) = (bn.scale_and_shift(), bn.running_statistics());
            let inputs = vec![
                self.weights(format!("{name}.gamma"), gamma.view()),
                self.weights(format!("{name}.beta"), beta.view()),
                self.weights(format!("{name}.running_mean"), mean.view()),
                self.weights(format!("{name}.running_var"), var.view()),
            ];
            let eps = float("epsilon", bn.epsilon() as f32);
            self.node("BatchNormalization", name, inputs, vec![eps], 2);
        } else if let Some(dropout) = any.downcast_ref::<Dropout>() {
            let keep = (1.0 - dropout.ratio()) as f32;
            let scale = self.weights(format!("{name}.keep"), ndarray::arr0(keep).view());
            self.node("Mul", name, vec![scale], vec![], rank);
        } else if let Some(conv) = any.downcast_ref::<Convolution<f32>>() {
            let window = conv.window();
            let w = self.weights(format!("{name}.W"), conv.filters().view());
            let b = self.weights(format!("{name}.b"), conv.bias().view());
            let attributes = vec![
                ints("kernel_shape", &[window.height, window.width]),
                ints("strides", &[window.stride, window.stride]),
                ints("pads", &[window.pad; 4]),
            ];
            self.node("Conv", name, vec![w, b], attributes, 4);
        } else if let Some(pool) = any.downcast_ref::<Pooling>() {
            let window = pool.window();
            if window.pad > 0 {
                let p = window.pad as i64;
                let pads = self.int64s(format!("{name}.pads"), &[0, 0, p, p, 0, 0, p, p]);
                self.node("Pad", &format!("{name}.pad"), vec![pads], vec![], 4);
            }
            let attributes = vec![
                ints("kernel_shape", &[window.height, window.width]),
                ints("strides", &[window.stride, window.stride]),
            ];
            self.node("MaxPool", name, vec![], attributes, 4);
        } else {
            return Err(unsupported(name, layer.kind()));
        }
        Ok(())
    }
}

fn unsupported(name: &str, what: &str) -> Error {
    Error::Invalid(format!(
        "layer {name} ({what}) has no ONNX form in this export"
    ))
}

/// A float tensor's description: `dims`, `None` for the batch axis `N`.
fn value_info(name: &str, dims: &[Option<usize>], doc: &str) -> proto::ValueInfo {
    let dim = dims
        .iter()
        .map(|d| proto::Dimension {
            dim_value: d.map(|v| v as i64),
            dim_param: d.is_none().then(|| "N".to_string()),
        })
        .collect();
    proto::ValueInfo {
        name: name.into(),
        r#type: Some(proto::Type {
            tensor_type: Some(proto::TensorType {
                elem_type: FLOAT,
                shape: Some(proto::Shape { dim }),
            }),
        }),
        doc_string: doc.into(),
    }
}

/// The ONNX model of `net`, whose file said `info`.
///
/// # Errors
/// When the net has a layer with no ONNX form here, or normalises images otherwise than
/// `pixel/255`.
pub fn export(net: &Sequential<f32>, info: &ModelInfo) -> Result<Vec<u8>> {
    if info.normalisation != PIXEL_NORMALISATION {
        return Err(Error::Invalid(format!(
            "the model's images are normalised as {:?}; the ONNX export writes {PIXEL_NORMALISATION} only",
            info.normalisation
        )));
    }
    let input: Vec<Option<usize>> = match &info.net {
        Architecture::Mlp(mlp) => vec![None, Some(mlp.sizes.inputs())],
        Architecture::SimpleConv(c) => {
            vec![None, Some(c.input.0), Some(c.input.1), Some(c.input.2)]
        }
        Architecture::DeepConv(c) => vec![None, Some(c.input.0), Some(c.input.1), Some(c.input.2)],
    };
    let mut graph = GraphBuilder {
        nodes: Vec::new(),
        initializers: Vec::new(),
        current: ("pixels".into(), input.len()),
    };
    let scale = graph.weights("pixel_scale".into(), ndarray::arr0(255.0f32).view());
    graph.node("Div", "x", vec![scale], vec![], input.len());
    for (name, layer, _) in net.layers() {
        graph.layer(name, layer)?;
    }
    // The last layer's output, which nothing reads yet, is the graph's output `logits`.
    if let Some(last) = graph.nodes.last_mut() {
        last.output = vec!["logits".into()];
        graph.current.0 = "logits".into();
    }
    graph.node("Softmax", "probabilities", vec![], vec![int("axis", 1)], 2);
    let classes = Some(info.net.outputs());
    let model = proto::Model {
        ir_version: IR_VERSION,
        producer_name: "backprop".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "{}, exported by backprop; input: raw pixels 0–255",
            info.net
        ),
        graph: Some(proto::Graph {
            node: graph.nodes,
            name: info.net.name().into(),
            initializer: graph.initializers,
            input: vec![value_info(
                "pixels",
                &input,
                "raw pixels, 0 to 255 (divided by 255 in the graph)",
            )],
            output: vec![
                value_info("logits", &[None, classes], "scores before the softmax"),
                value_info("probabilities", &[None, classes], "softmax of the logits"),
            ],
        }),
        opset_import: vec![proto::OperatorSetId {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![
            proto::StringStringEntry {
                key: "classes".into(),
                value: serde_json::to_string(&info.class_names).unwrap_or_default(),
            },
            proto::StringStringEntry {
                key: "normalisation".into(),
                value: "raw pixels in; pixel/255 inside the graph".into(),
            },
        ],
    };
    Ok(prost::Message::encode_to_vec(&model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{MultiLayerNet, NetSpec, SimpleConvNet};

    fn info(net: Architecture) -> ModelInfo {
        ModelInfo::mnist(net)
    }

    fn decoded(net: &Sequential<f32>, info: &ModelInfo) -> proto::Graph {
        let bytes = export(net, info).unwrap();
        let model: proto::Model = prost::Message::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            (model.ir_version, model.opset_import[0].version),
            (IR_VERSION, OPSET)
        );
        model.graph.unwrap()
    }

    fn ops(graph: &proto::Graph) -> Vec<&str> {
        graph.node.iter().map(|n| n.op_type.as_str()).collect()
    }

    /// Every layer of a batch-normalised MLP with dropout becomes its operators, in order,
    /// each reading the previous one's output, the last renamed `logits`.
    #[test]
    fn an_mlps_layers_become_their_operators_in_order() {
        let mut mlp = MultiLayerNet::new(NetSpec::new(vec![784, 20, 10]).unwrap());
        (mlp.batch_norm, mlp.dropout) = (true, Some(0.25));
        let net = mlp.build::<f32>(1);
        let graph = decoded(&net, &info(Architecture::Mlp(mlp)));
        let expected = [
            "Div",
            "Gemm",
            "BatchNormalization",
            "Relu",
            "Mul",
            "Gemm",
            "Softmax",
        ];
        assert_eq!(ops(&graph), expected);
        for pair in graph.node.windows(2) {
            assert_eq!(pair[1].input[0], pair[0].output[0]);
        }
        assert_eq!(graph.node[5].output, ["logits"]);
        let keep = graph
            .initializer
            .iter()
            .find(|t| t.name.ends_with(".keep"))
            .unwrap();
        assert_eq!(keep.raw_data, 0.75f32.to_le_bytes());
        let w1 = &graph
            .initializer
            .iter()
            .find(|t| t.name == "Affine1.W")
            .unwrap();
        assert_eq!(w1.dims, [784, 20]);
        let input = graph.input[0]
            .r#type
            .as_ref()
            .unwrap()
            .tensor_type
            .as_ref()
            .unwrap();
        let dims: Vec<_> = input
            .shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| d.dim_value)
            .collect();
        assert_eq!(dims, [None, Some(784)]);
    }

    /// A convolutional net flattens before its first Affine layer; a pooling window with
    /// padding is preceded by a zero `Pad`, as this crate's pooling counts padding as 0.
    #[test]
    fn images_flatten_before_affine_and_padded_pooling_pads_with_zeros() {
        let conv = SimpleConvNet::new((1, 28, 28), 10);
        let mut net = conv.build::<f32>(3).unwrap();
        let graph = decoded(&net, &info(Architecture::SimpleConv(conv.clone())));
        assert_eq!(
            ops(&graph),
            [
                "Div", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Softmax"
            ]
        );
        net = Sequential::new();
        net.push(Pooling::new(2, 2, 2, 1));
        let padded = decoded(&net, &info(Architecture::SimpleConv(conv)));
        assert_eq!(ops(&padded), ["Div", "Pad", "MaxPool", "Softmax"]);
        let pads = padded
            .initializer
            .iter()
            .find(|t| t.name.ends_with(".pads"))
            .unwrap();
        let values: Vec<i64> = pads
            .raw_data
            .chunks(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(values, [0, 0, 1, 1, 0, 0, 1, 1]);
    }

    /// A normalisation the graph does not do is refused, not exported wrong.
    #[test]
    fn another_normalisation_is_refused() {
        let mlp = MultiLayerNet::new(NetSpec::new(vec![784, 10]).unwrap());
        let net = mlp.build::<f32>(1);
        let mut info = info(Architecture::Mlp(mlp));
        info.normalisation = "(pixel - 33) / 78".into();
        let err = export(&net, &info).unwrap_err().to_string();
        assert!(err.contains("writes pixel/255 only"), "{err}");
    }
}
