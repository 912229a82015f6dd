//! burn peer of `bench/grid.json` ("burn-flex"): burn 0.22.1 on its Flex CPU backend, autodiff,
//! `nn::Linear` / `BatchNorm` / `Dropout` / `Conv2d` / `MaxPool2d`, `CrossEntropyLoss`,
//! burn-optim SGD (with or without momentum) / Adam. float32.
//!
//! Usage: peer-burn --grid bench/grid.json --cell ID [--reps R] [--threads T] --data-dir DIR
//! Prints one JSON line per repetition.

use std::fs;
use std::path::Path;
use std::time::Instant;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Initializer, Linear, LinearConfig,
    PaddingConfig2d,
};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use serde_json::{json, Value};

/// Eval cells run their pass over the test images in blocks of this many rows.
const EVAL_BLOCK: usize = 1000;

struct Args {
    grid: String,
    cell: String,
    reps: usize,
    threads: usize,
    data_dir: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        grid: String::new(),
        cell: String::new(),
        reps: 3,
        threads: 2,
        data_dir: String::new(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let val = pair
            .get(1)
            .cloned()
            .unwrap_or_else(|| panic!("{} needs a value", pair[0]));
        match pair[0].as_str() {
            "--grid" => a.grid = val,
            "--cell" => a.cell = val,
            "--reps" => a.reps = val.parse().expect("--reps"),
            "--threads" => a.threads = val.parse().expect("--threads"),
            "--data-dir" => a.data_dir = val,
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        !a.grid.is_empty() && !a.cell.is_empty() && !a.data_dir.is_empty(),
        "--grid, --cell and --data-dir are required"
    );
    a
}

/// Images (n·784, in [0, 1]) and labels of one raw IDX split.
fn load_split(dir: &str, images: &str, labels: &str) -> (Vec<f32>, Vec<u8>) {
    let read = |name: &str| {
        let raw =
            fs::read(Path::new(dir).join(name)).unwrap_or_else(|e| panic!("{dir}/{name}: {e}"));
        raw[4 + 4 * raw[3] as usize..].to_vec()
    };
    (
        read(images).iter().map(|&p| p as f32 / 255.0).collect(),
        read(labels),
    )
}

/// SplitMix64, for batch indices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as u128 * n as u128 >> 53) as usize
    }
}

fn zero_bias(bias: &mut Option<Param<Tensor<1>>>, n: usize, device: &Device) {
    *bias = Some(Param::from_tensor(Tensor::zeros([n], device)));
}

fn linear(i: usize, o: usize, std: f64, device: &Device) -> Linear {
    let mut l = LinearConfig::new(i, o)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    zero_bias(&mut l.bias, o, device);
    l
}

fn conv(c_in: usize, c_out: usize, k: usize, pad: usize, std: f64, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([c_in, c_out], [k, k])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    zero_bias(&mut c.bias, c_out, device);
    c
}

fn pool() -> MaxPool2d {
    MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init()
}

/// A model of the grid: logits of a batch of flattened images.
trait Net: Module {
    fn forward(&self, x: Tensor<2>) -> Tensor<2>;
}

#[derive(Module, Debug)]
struct Hidden {
    linear: Linear,
    bn: Option<BatchNorm>,
    dropout: Option<Dropout>,
}

/// Linear -> [BatchNorm] -> ReLU|Sigmoid -> [Dropout] per hidden layer, then Linear.
#[derive(Module, Debug)]
struct Mlp {
    hidden: Vec<Hidden>,
    out: Linear,
    sigmoid: bool,
}

impl Mlp {
    fn new(cell: &Value, device: &Device) -> Mlp {
        let sizes: Vec<usize> = cell["net"]
            .as_str()
            .unwrap()
            .split('-')
            .map(|s| s.parse().unwrap())
            .collect();
        let sigmoid = cell["activation"] == "sigmoid";
        let std = |fan_in: usize| ((if sigmoid { 1.0 } else { 2.0 }) / fan_in as f64).sqrt(); // Xavier | He
        let dropout = cell["dropout"].as_f64().unwrap();
        let hidden = sizes[..sizes.len() - 1]
            .windows(2)
            .map(|w| Hidden {
                linear: linear(w[0], w[1], std(w[0]), device),
                bn: (cell["batch_norm"] == true).then(|| BatchNormConfig::new(w[1]).init(device)),
                dropout: (dropout > 0.0).then(|| DropoutConfig::new(dropout).init()),
            })
            .collect();
        let last = sizes[sizes.len() - 2];
        Mlp {
            hidden,
            out: linear(last, 10, std(last), device),
            sigmoid,
        }
    }
}

impl Net for Mlp {
    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for h in &self.hidden {
            x = h.linear.forward(x);
            if let Some(bn) = &h.bn {
                x = bn.forward(x);
            }
            x = if self.sigmoid { sigmoid(x) } else { relu(x) };
            if let Some(d) = &h.dropout {
                x = d.forward(x);
            }
        }
        self.out.forward(x)
    }
}

fn images(x: Tensor<2>) -> Tensor<4> {
    let n = x.dims()[0];
    x.reshape([n, 1, 28, 28])
}

/// The book's SimpleConvNet: Conv 30x5x5 -> ReLU -> MaxPool 2 -> Linear 4320-100 -> ReLU -> Linear 100-10.
#[derive(Module, Debug)]
struct SimpleConv {
    conv: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
}

impl SimpleConv {
    fn new(device: &Device) -> SimpleConv {
        SimpleConv {
            conv: conv(1, 30, 5, 0, 0.01, device),
            pool: pool(),
            fc1: linear(4320, 100, 0.01, device),
            fc2: linear(100, 10, 0.01, device),
        }
    }
}

impl Net for SimpleConv {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv.forward(images(x))));
        self.fc2.forward(relu(self.fc1.forward(x.flatten(1, 3))))
    }
}

/// The book's DeepConvNet: three (conv 3x3 -> ReLU -> conv 3x3 -> ReLU -> MaxPool 2) stages of
/// 16, 32, 64 channels, Linear 1024-50 -> ReLU -> Dropout 0.5 -> Linear 50-10 -> Dropout 0.5; He init.
#[derive(Module, Debug)]
struct DeepConv {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

impl DeepConv {
    fn new(device: &Device) -> DeepConv {
        let he = |fan_in: usize| (2.0 / fan_in as f64).sqrt();
        let spec = [
            (1, 16, 1),
            (16, 16, 1),
            (16, 32, 1),
            (32, 32, 2),
            (32, 64, 1),
            (64, 64, 1),
        ];
        DeepConv {
            convs: spec
                .iter()
                .map(|&(i, o, pad)| conv(i, o, 3, pad, he(i * 9), device))
                .collect(),
            pool: pool(),
            fc1: linear(1024, 50, he(1024), device),
            fc2: linear(50, 10, he(50), device),
            dropout: DropoutConfig::new(0.5).init(),
        }
    }
}

impl Net for DeepConv {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = images(x);
        for (i, c) in self.convs.iter().enumerate() {
            x = relu(c.forward(x));
            if i % 2 == 1 {
                x = self.pool.forward(x);
            }
        }
        let x = self
            .dropout
            .forward(relu(self.fc1.forward(x.flatten(1, 3))));
        self.dropout.forward(self.fc2.forward(x))
    }
}

fn labels(y: &[u8], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = y.iter().map(|&c| c as i64).collect();
    Tensor::from_data(TensorData::new(v, [y.len()]), device)
}

fn optimizer(name: &str) -> (ModuleOptimizer, f64) {
    match name {
        "sgd" => (SgdConfig::new().init(), 0.1),
        "momentum" => {
            let m = MomentumConfig::new().with_momentum(0.9).with_dampening(0.0);
            (SgdConfig::new().with_momentum(Some(m)).init(), 0.01)
        }
        "adam" => (
            AdamConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.999)
                .with_epsilon(1e-8)
                .init(),
            0.001,
        ),
        o => panic!("unknown optimizer {o}"),
    }
}

fn train<M: Net>(
    mut model: M,
    cell: &Value,
    data: &(Vec<f32>, Vec<u8>),
    device: &Device,
    seed: u64,
) -> Value {
    let (x, y) = data;
    let [batch, warmup, iters] =
        ["batch", "warmup", "iters"].map(|k| cell[k].as_u64().unwrap() as usize);
    let (mut optim, lr) = optimizer(cell["optimizer"].as_str().unwrap());
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut losses = Vec::with_capacity(warmup + iters);
    let mut t0 = Instant::now();
    for i in 0..warmup + iters {
        if i == warmup {
            t0 = Instant::now();
        }
        let idx: Vec<usize> = (0..batch).map(|_| rng.below(y.len())).collect();
        let xb: Vec<f32> = idx
            .iter()
            .flat_map(|&r| x[r * 784..(r + 1) * 784].iter().copied())
            .collect();
        let yb: Vec<u8> = idx.iter().map(|&r| y[r]).collect();
        let xb = Tensor::<2>::from_data(TensorData::new(xb, [batch, 784]), device);
        let loss = loss_fn.forward(model.forward(xb), labels(&yb, device));
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    let wall = t0.elapsed().as_secs_f64();
    json!({"ms_per_step": 1000.0 * wall / iters as f64, "loss_first": losses[warmup], "loss_last": losses.last()})
}

fn evaluate<M: Net>(model: M, data: &(Vec<f32>, Vec<u8>), device: &Device) -> Value {
    let (x, y) = data;
    let blocks: Vec<(Tensor<2>, Tensor<1, Int>)> = (0..y.len())
        .step_by(EVAL_BLOCK)
        .map(|s| {
            let e = (s + EVAL_BLOCK).min(y.len());
            (
                Tensor::from_data(
                    TensorData::new(x[s * 784..e * 784].to_vec(), [e - s, 784]),
                    device,
                ),
                labels(&y[s..e], device),
            )
        })
        .collect();
    let correct = || -> i64 {
        blocks
            .iter()
            .map(|(xb, yb)| {
                let n = yb.dims()[0];
                let pred = model.forward(xb.clone()).argmax(1).reshape([n]);
                pred.equal(yb.clone()).int().sum().into_scalar::<i64>()
            })
            .sum()
    };
    correct(); // untimed, as backprop warms up too
    let t0 = Instant::now();
    let right = correct();
    let wall = t0.elapsed().as_secs_f64();
    let n = y.len() as f64;
    json!({"images_per_s": n / wall, "accuracy": right as f64 / n, "eval_block": EVAL_BLOCK})
}

/// Builds the cell's model on `device` and trains or evaluates it.
fn run(cell: &Value, data: &(Vec<f32>, Vec<u8>), device: &Device, seed: u64) -> Value {
    device.seed(seed);
    let training = cell["mode"] == "train";
    macro_rules! go {
        ($model:expr) => {
            if training {
                train($model, cell, data, device, seed)
            } else {
                evaluate($model, data, device)
            }
        };
    }
    match cell["net"].as_str().unwrap() {
        "simple-conv" => go!(SimpleConv::new(device)),
        "deep-conv" => go!(DeepConv::new(device)),
        _ => go!(Mlp::new(cell, device)),
    }
}

fn main() {
    let args = parse_args();
    std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string()); // before rayon starts
    let grid: Value =
        serde_json::from_str(&fs::read_to_string(&args.grid).expect("--grid")).expect("grid JSON");
    let cell = grid["cells"]
        .as_array()
        .and_then(|cells| cells.iter().find(|c| c["id"] == args.cell.as_str()))
        .unwrap_or_else(|| panic!("no cell {} in {}", args.cell, args.grid))
        .clone();
    let training = cell["mode"] == "train";
    let data = if training {
        load_split(
            &args.data_dir,
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
        )
    } else {
        load_split(
            &args.data_dir,
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    };
    // Training runs on the autodiff device; evaluation on the plain one (inference mode:
    // BatchNorm uses its running statistics, Dropout passes through).
    let device = if training {
        Device::flex().autodiff()
    } else {
        Device::flex()
    };
    let kernel = json!({"burn": "0.22.1", "backend": "flex", "matmul": "gemm (rayon)", "rayon_threads": args.threads});
    for rep in 0..args.reps {
        let mut line =
            json!({"impl": "burn-flex", "cell": cell["id"], "rep": rep, "threads": args.threads});
        line.as_object_mut().unwrap().extend(
            run(&cell, &data, &device, rep as u64)
                .as_object()
                .unwrap()
                .clone(),
        );
        line["kernel"] = kernel.clone();
        println!("{line}");
    }
}
