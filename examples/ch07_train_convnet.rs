//! The book's `ch07/train_convnet.py` (§7.5): SimpleConvNet (conv 30×5×5 → ReLU → pool →
//! Affine 100 → ReLU → Affine 10) trained 20 epochs with Adam (0.001) on MNIST, printing train
//! and test accuracy each epoch, then its weights saved as the book saves them: `params.pkl`,
//! a pickled dict of numpy arrays (`pickle.load` reads it; so does `ch07_visualize_filter`).
//! Ends near 98.9% test accuracy; about 5 minutes on 2 cores.
//!
//! `cargo run --release --example ch07_train_convnet`; with checkpoints, a progress bar and
//! plots: `backprop train --model simple-conv --epochs 20`.

use backprop::data::Sampling;
use backprop::io::pickle;
use backprop::net::{Architecture, ModelKind, SimpleConvNet};
use backprop::train::{Event, Recipe, TrainConfig, Trainer, evaluate};

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?;
    let network = Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10)).build::<f32>(0)?;
    let epochs = 20;
    let iter_per_epoch = mnist.train.len() / 100;
    let config = TrainConfig {
        iters: epochs * iter_per_epoch,
        batch: 100,
        eval_every: Some(iter_per_epoch),
        sampling: Sampling::WithReplacement,
        seed: 0,
        shards: 1,
    };
    // The book trains it with Adam at 0.001.
    let adam = Recipe::book(ModelKind::SimpleConv).optimizer.build::<f32>();
    let mut trainer = Trainer::new(network, adam, &mnist, config)?;
    trainer.run(|event| {
        if let Event::Evaluated(r) = event {
            println!(
                "=== epoch:{}, train acc:{:.4}, test acc:{:.4} ===",
                r.epoch + 1,
                r.train_acc,
                r.test_acc
            );
        }
    })?;
    let test_acc = evaluate(&mut trainer.net, &mnist.test, 10).accuracy;
    println!("=============== Final Test Accuracy ===============");
    println!("test acc:{test_acc}");

    pickle::save_net("params.pkl".as_ref(), &mut trainer.net)?;
    println!("Saved Network Parameters!");
    Ok(())
}
