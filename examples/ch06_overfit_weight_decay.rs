//! The book's `ch06/overfit_weight_decay.py` (§6.4.2): a 784-100-100-100-100-100-100-10 net
//! on only 300 MNIST images, 201 epochs of SGD 0.01 with the L2 term ½λ‖W‖² (λ = 0.1) in the
//! loss. Prints train and test accuracy each epoch: the gap stays far smaller than without
//! weight decay (`backprop experiment overfit` draws both).
//!
//! `cargo run --release --example ch06_overfit_weight_decay`

use backprop::experiments::overfitting;
use backprop::net::MultiLayerNet;

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?.subset(300, usize::MAX);
    let net = MultiLayerNet {
        weight_decay: 0.1,
        ..MultiLayerNet::new("784-100-100-100-100-100-100-10".parse()?)
    };
    let runs = overfitting(&mnist, &[("weight decay 0.1".into(), net)], 201, 0)?;
    for r in &runs[0].history {
        println!(
            "epoch:{}, train acc:{}, test acc:{}",
            r.epoch, r.train_acc, r.test_acc
        );
    }
    Ok(())
}
