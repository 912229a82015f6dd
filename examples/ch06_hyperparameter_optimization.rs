//! The book's `ch06/hyperparameter_optimization.py` (§6.5.3): 100 trials of a
//! 784-100-100-100-100-100-100-10 net on 400 of 500 MNIST images (100 held out for
//! validation), each with a learning rate drawn from 10⁻⁶…10⁻² and a weight decay from
//! 10⁻⁸…10⁻⁴, 50 epochs each. Prints every trial's validation accuracy, then the best 20.
//!
//! `cargo run --release --example ch06_hyperparameter_optimization`; with the plot:
//! `backprop experiment hyperparameter-search`.

use backprop::experiments::{SearchConfig, random_search};

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?;
    let trials = random_search(&mnist, &SearchConfig::book(), &|t| {
        println!(
            "val acc:{} | lr:{}, weight decay:{}",
            t.val_acc, t.lr, t.weight_decay
        );
    })?;
    println!("=========== Hyper-Parameter Optimization Result ===========");
    for (rank, t) in trials.iter().take(20).enumerate() {
        println!(
            "Best-{}(val acc:{}) | lr:{}, weight decay:{}",
            rank + 1,
            t.val_acc,
            t.lr,
            t.weight_decay
        );
    }
    Ok(())
}
