//! The book's `ch05/train_neuralnet.py`: mini-batch SGD on MNIST with the two-layer net,
//! printing train and test accuracy once per epoch (§5.7.4). Ends near 97% test accuracy.
//!
//! `cargo run --release --example ch05_train_neuralnet`. The same run, with a progress bar,
//! a log, saved model and plots, is `backprop train`.

use backprop::data::{Batch, Sampler, Sampling};
use backprop::functions::Targets;
use backprop::net::TwoLayerNet;
use backprop::optim::{Optimizer, Sgd};
use backprop::train::evaluate;

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?;
    let mut network = TwoLayerNet::<f32>::new(784, 50, 10, 0.01, 0);

    let iters_num = 10_000;
    let train_size = mnist.train.len();
    let batch_size = 100;
    let mut optimizer = Sgd::new(0.1);
    let iter_per_epoch = (train_size / batch_size).max(1);

    let mut sampler = Sampler::new(Sampling::WithReplacement, train_size, 0);
    let mut batch_mask = Vec::with_capacity(batch_size);
    let mut batch = Batch::<f32>::default();
    for i in 0..iters_num {
        sampler.next_batch(batch_size, &mut batch_mask);
        batch.gather(&mnist.train, &batch_mask);
        let t_batch = Targets::Indices(batch.t.clone());

        network.gradient(batch.x.view().into_dyn(), &t_batch);
        optimizer.update(network.params_mut());

        if i % iter_per_epoch == 0 {
            let train_acc = evaluate(&mut network, &mnist.train, 10).accuracy;
            let test_acc = evaluate(&mut network, &mnist.test, 10).accuracy;
            println!("{train_acc:.4} {test_acc:.4}");
        }
    }
    Ok(())
}
