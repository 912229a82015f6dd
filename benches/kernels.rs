//! Criterion benches of the hot kernels: matrix products, the affine layer's forward and
//! backward, softmax-with-loss, batch gathering, im2col, and the convolution and pooling
//! layers; and of whole passes, where kernels slow each other down (a product that leaves the
//! CPU's vector state dirty slows the softmax after it): a step of the trainer on W2 and an
//! evaluation of the 10,000 test images. Shapes are those of the benchmark workloads (W1/W2:
//! batch 100, 784 → 50 → 10; W3: batch 128, 784 → 1000 → 1000 → 10; W4: SimpleConvNet, batch 100) and of
//! DeepConvNet's widest convolution.
//!
//! `cargo bench --bench kernels`

use std::time::Duration;

use backprop::data::{Batch, Known, Sampler, Sampling};
use backprop::functions::Targets;
use backprop::layers::{
    Affine, Convolution, Layer, Mode, Pooling, SoftmaxWithLoss, Window, im2col,
};
use backprop::machinery::linalg::matmul;
use backprop::net::NetSpec;
use backprop::optim::Sgd;
use backprop::train::{TrainConfig, Trainer, evaluate};
use criterion::{Criterion, criterion_group};
use ndarray::Array2;
use rand::SeedableRng;

fn mnist_batch(size: usize) -> Batch<f32> {
    let data = backprop::data::load(Some(Known::Mnist), None).expect("MNIST is built in");
    let mut sampler = Sampler::new(Sampling::WithReplacement, data.train.len(), 0);
    let mut indices = Vec::new();
    sampler.next_batch(size, &mut indices);
    let mut batch = Batch::default();
    batch.gather(&data.train, &indices);
    batch
}

fn products(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    let x = mnist_batch(100).x;
    let w1 = backprop::gradient::standard_normal::<f32>(&[784, 50], 1)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let dy = backprop::gradient::standard_normal::<f32>(&[100, 50], 2)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let (mut y, mut dw) = (
        Array2::<f32>::zeros((100, 50)),
        Array2::<f32>::zeros((784, 50)),
    );
    group.bench_function("X·W 100x784x50", |b| {
        b.iter(|| matmul(x.view(), w1.view(), y.view_mut(), false))
    });
    group.bench_function("Xt·dY 784x100x50", |b| {
        b.iter(|| matmul(x.t(), dy.view(), dw.view_mut(), false))
    });
    let a = backprop::gradient::standard_normal::<f32>(&[128, 1000], 3)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let w = backprop::gradient::standard_normal::<f32>(&[1000, 1000], 4)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let mut y = Array2::<f32>::zeros((128, 1000));
    group.bench_function("X·W 128x1000x1000", |b| {
        b.iter(|| matmul(a.view(), w.view(), y.view_mut(), false))
    });
    group.finish();
}

fn affine(c: &mut Criterion) {
    let mut group = c.benchmark_group("affine");
    let x = mnist_batch(100).x.into_dyn();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut layer = Affine::<f32>::randn(784, 50, 0.01, &mut rng);
    let dout = backprop::gradient::standard_normal::<f32>(&[100, 50], 4);
    group.bench_function("784x50 forward+backward, batch 100", |b| {
        b.iter(|| {
            let _ = layer.forward(x.clone(), Mode::Train);
            layer.backward(dout.clone())
        })
    });
    group.finish();
}

fn loss_and_gather(c: &mut Criterion) {
    let scores = backprop::gradient::standard_normal::<f32>(&[100, 10], 5)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let t = Targets::Indices((0..100).map(|i| i % 10).collect());
    let mut layer = SoftmaxWithLoss::new();
    c.bench_function("softmax_with_loss forward+backward 100x10", |b| {
        b.iter(|| {
            let _ = layer.forward(scores.clone(), &t);
            layer.backward(1.0)
        })
    });
    let data = backprop::data::load(Some(Known::Mnist), None).expect("MNIST is built in");
    let mut sampler = Sampler::new(Sampling::WithReplacement, data.train.len(), 0);
    let (mut indices, mut batch) = (Vec::new(), Batch::<f32>::default());
    c.bench_function("sample+gather batch 100 of MNIST", |b| {
        b.iter(|| {
            sampler.next_batch(100, &mut indices);
            batch.gather(&data.train, &indices);
        })
    });
}

fn passes(c: &mut Criterion) {
    let mut group = c.benchmark_group("pass");
    let data = backprop::data::load(Some(Known::Mnist), None).expect("MNIST is built in");
    let net = "784-50-10"
        .parse::<NetSpec>()
        .expect("a valid spec")
        .build::<f32>(0.01, 0);
    // The trainer's own step (sample, gather, prefetch, gradient, SGD) on a fresh batch each
    // time: one batch over and over would drive its gradients into subnormal arithmetic.
    let config = TrainConfig {
        iters: usize::MAX,
        eval_every: None,
        ..TrainConfig::book(data.train.len())
    };
    let mut trainer = Trainer::new(net, Sgd::new(0.1), &data, config).expect("the net fits");
    group.bench_function("W2 step of the trainer, 784-50-10, batch 100", |b| {
        b.iter(|| {
            let next = trainer.iteration() + 1;
            trainer.run_until(next, |_| {}).expect("a finite loss");
        })
    });
    group.bench_function("evaluate 784-50-10 on 10,000 test images", |b| {
        b.iter(|| evaluate(&mut trainer.net, &data.test, 10).accuracy)
    });
    group.finish();
}

fn convolution(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let x = mnist_batch(100)
        .x
        .into_shape_with_order((100, 1, 28, 28))
        .unwrap();
    let window = Window {
        height: 5,
        width: 5,
        stride: 1,
        pad: 0,
    };
    group.bench_function("im2col 100x1x28x28, 5x5", |b| {
        b.iter(|| im2col(x.view(), window))
    });
    // W4's layers: Conv 30×5×5 → Pool 2×2 on a batch of 100 digits.
    let mut conv = Convolution::<f32>::randn((30, 1, 5, 5), (1, 0), 0.01, &mut rng);
    let dout = backprop::gradient::standard_normal::<f32>(&[100, 30, 24, 24], 1);
    group.bench_function("W4 conv 30x5x5 forward+backward, batch 100", |b| {
        b.iter(|| {
            let _ = conv.forward(x.clone().into_dyn(), Mode::Train);
            conv.backward(dout.clone())
        })
    });
    let mut pool = Pooling::new(2, 2, 2, 0);
    let maps = backprop::gradient::standard_normal::<f32>(&[100, 30, 24, 24], 2);
    let dpool = backprop::gradient::standard_normal::<f32>(&[100, 30, 12, 12], 3);
    group.bench_function("W4 pool 2x2 forward+backward, batch 100", |b| {
        b.iter(|| {
            let _ = pool.forward(maps.clone(), Mode::Train);
            pool.backward(dpool.clone())
        })
    });
    // DeepConvNet's costliest layer: 32 → 32 channels, 3×3, pad 2, on 14×14 maps.
    let mut deep = Convolution::<f32>::randn((32, 32, 3, 3), (1, 2), 0.08, &mut rng);
    let x = backprop::gradient::standard_normal::<f32>(&[100, 32, 14, 14], 4);
    let dout = backprop::gradient::standard_normal::<f32>(&[100, 32, 16, 16], 5);
    group.bench_function(
        "DeepConvNet conv4 32x32x3x3 forward+backward, batch 100",
        |b| {
            b.iter(|| {
                let _ = deep.forward(x.clone(), Mode::Train);
                deep.backward(dout.clone())
            })
        },
    );
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = products, affine, loss_and_gather, passes, convolution }
/// As the CLI runs its commands: on a thread of rayon's pool, so that parallel products use
/// the calling thread as `backprop bench` does (`machinery::parallel::on_thread_pool`).
fn main() {
    backprop::machinery::parallel::on_thread_pool(|| {
        benches();
        Criterion::default().configure_from_args().final_summary();
    });
}
