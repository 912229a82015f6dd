//! The book's `ch05/gradient_check.py`: backprop gradients against numerical ones on the
//! first three MNIST training images, in f64 (§5.7.3).
//!
//! `cargo run --release --example ch05_gradient_check` prints the mean absolute difference
//! per parameter, e.g. `W1: 2.259e-13` (the book shows 1e-10 to 1e-13).

use backprop::data::{Batch, one_hot};
use backprop::functions::Targets;
use backprop::net::TwoLayerNet;

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?;
    let mut network = TwoLayerNet::<f64>::new(784, 50, 10, 0.01, 0);

    let mut batch = Batch::<f64>::default();
    batch.gather(&mnist.train, &[0, 1, 2]);
    let x_batch = batch.x.view().into_dyn();
    let t_batch = Targets::OneHot(one_hot(&batch.t, 10));

    let grad_numerical = network.numerical_gradient(x_batch.view(), &t_batch);
    network.gradient(x_batch, &t_batch);
    let grad_backprop = network.grads();

    for ((key, backprop), (_, numerical)) in grad_backprop.iter().zip(&grad_numerical) {
        let diff = (backprop - numerical)
            .mapv(f64::abs)
            .mean()
            .unwrap_or(f64::NAN);
        println!("{key}: {diff:.3e}");
    }
    Ok(())
}
