//! The book's `ch06/overfit_dropout.py` (§6.4.3): the same over-sized net on 300 MNIST images,
//! with dropout (ratio 0.2) after every hidden activation, 301 epochs of SGD 0.01. Prints
//! train and test accuracy each epoch: the training accuracy no longer reaches 100%, and the
//! gap to the test accuracy narrows.
//!
//! `cargo run --release --example ch06_overfit_dropout`

use backprop::experiments::overfitting;
use backprop::net::MultiLayerNet;

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?.subset(300, usize::MAX);
    let net = MultiLayerNet {
        dropout: Some(0.2),
        ..MultiLayerNet::new("784-100-100-100-100-100-100-10".parse()?)
    };
    let runs = overfitting(&mnist, &[("dropout 0.2".into(), net)], 301, 0)?;
    for r in &runs[0].history {
        println!(
            "epoch:{}, train acc:{}, test acc:{}",
            r.epoch, r.train_acc, r.test_acc
        );
    }
    Ok(())
}
