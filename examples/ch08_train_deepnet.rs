//! The book's `ch08/train_deepnet.py` (§8.1): DeepConvNet (six 3×3 convolutions with ReLU,
//! three poolings, Affine 50, dropout, Affine 10, dropout) trained 20 epochs with Adam (0.001)
//! on MNIST, then saved as the book saves it: `deep_convnet_params.pkl`. Ends above 99% test
//! accuracy; the longest run of the book (about 45 minutes on 2 cores). Evaluations on the full
//! sets cost a minute each for this net, so they are taken at the start, every 10 epochs and
//! at the end.
//!
//! `cargo run --release --example ch08_train_deepnet`; with checkpoints to resume from:
//! `backprop train --model deep-conv --epochs 20 --checkpoint-every 600`.

use backprop::data::Sampling;
use backprop::io::pickle;
use backprop::net::{Architecture, DeepConvNet, ModelKind};
use backprop::train::{Event, Recipe, TrainConfig, Trainer, evaluate};

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?;
    let network = Architecture::DeepConv(DeepConvNet::new((1, 28, 28), 10)).build::<f32>(0)?;
    let iter_per_epoch = mnist.train.len() / 100;
    let config = TrainConfig {
        iters: 20 * iter_per_epoch,
        batch: 100,
        eval_every: Some(10 * iter_per_epoch),
        sampling: Sampling::WithReplacement,
        seed: 0,
        shards: 1,
    };
    // The book trains it with Adam at 0.001.
    let adam = Recipe::book(ModelKind::DeepConv).optimizer.build::<f32>();
    let mut trainer = Trainer::new(network, adam, &mnist, config)?;
    trainer.run(|event| match event {
        Event::Step { iter, loss } if iter % 100 == 0 => {
            println!("iter {iter}: train loss:{loss:.4}")
        }
        Event::Evaluated(r) => println!(
            "=== iter {}, train acc:{:.4}, test acc:{:.4} ===",
            r.iter, r.train_acc, r.test_acc
        ),
        Event::Step { .. } | Event::Weights(_) => {}
    })?;
    let test_acc = evaluate(&mut trainer.net, &mnist.test, 10).accuracy;
    println!("=============== Final Test Accuracy ===============");
    println!("test acc:{test_acc}");

    pickle::save_net("deep_convnet_params.pkl".as_ref(), &mut trainer.net)?;
    println!("Saved Network Parameters!");
    Ok(())
}
