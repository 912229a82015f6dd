//! The book's `ch06/optimizer_compare_mnist.py` (§6.1.8): SGD, Momentum, AdaGrad and Adam
//! train the same 784-100-100-100-100-10 net on MNIST (batch 128, 2,000 iterations); the loss
//! of each is printed every 100 iterations. Adam and AdaGrad fall fastest, SGD slowest.
//!
//! `cargo run --release --example ch06_optimizer_compare_mnist`; with the plot:
//! `backprop experiment optimizer-compare`.

use backprop::experiments::{LossRace, compare_optimizers};
use backprop::optim::OptimizerKind;

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?;
    let race = LossRace::book();
    let optimizers = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::AdaGrad,
        OptimizerKind::Adam,
    ];
    let curves = compare_optimizers(&mnist, &race, &optimizers)?;
    for i in (0..race.iters).step_by(100) {
        println!("===========iteration:{i}===========");
        for curve in &curves {
            println!("{}:{}", curve.name, curve.losses[i]);
        }
    }
    Ok(())
}
