//! The book's `ch06/weight_init_compare.py` (§6.2.4): the same 784-100-100-100-100-10 ReLU
//! net trained with SGD from weights of standard deviation 0.01, Xavier's and He's; the loss
//! of each every 100 iterations. With 0.01 nothing is learned; He learns fastest.
//!
//! `cargo run --release --example ch06_weight_init_compare`; with the plot:
//! `backprop experiment weight-init-compare`.

use backprop::experiments::{LossRace, compare_inits};
use backprop::net::Init;

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?;
    let race = LossRace::book();
    let curves = compare_inits(&mnist, &race, &[Init::Std(0.01), Init::Xavier, Init::He])?;
    for i in (0..race.iters).step_by(100) {
        println!("===========iteration:{i}===========");
        for curve in &curves {
            println!("{}:{}", curve.name, curve.losses[i]);
        }
    }
    Ok(())
}
