//! The book's `ch06/weight_init_activation_histogram.py` (§6.2.2): 1,000 random inputs
//! through five sigmoid layers of 100 units. With weights of standard deviation 1 the
//! activations pile up at 0 and 1 (vanishing gradients); with 0.01 they all sit near 0.5 (no
//! expressiveness); Xavier's 1/√n keeps them spread. Prints each layer's spread.
//!
//! `cargo run --release --example ch06_weight_init_activation_histogram`; with histograms:
//! `backprop experiment activation-histogram`.

use backprop::experiments::activation_histograms;
use backprop::net::{Activation, Init};

fn main() {
    for (name, init) in [
        ("std 1", Init::Std(1.0)),
        ("std 0.01", Init::Std(0.01)),
        ("Xavier", Init::Xavier),
    ] {
        println!("weights: {name}");
        let layers = activation_histograms(Activation::Sigmoid, init, (1000, 100, 5), 0);
        for (i, layer) in layers.iter().enumerate() {
            println!(
                "  {}-layer: mean {:.3}, std {:.3}, within 0.01 of 0: {:5.1}%, of 1: {:5.1}%",
                i + 1,
                layer.mean,
                layer.std,
                100.0 * layer.near_zero,
                100.0 * layer.near_one
            );
        }
    }
}
