//! §6.2.2: the distribution of activations in the hidden layers of a deep net fed random
//! data, for different initial weight scales (the book's `weight_init_activation_histogram.py`).
//!
//! ```text
//! x ~ N(0, 1)  (1000, 100)
//! for each of 5 layers:  a = x · W,  W = std · randn(100, 100);   x = activation(a)
//! ```
//!
//! With std 1 sigmoid outputs pile up at 0 and 1 (vanishing gradients); with std 0.01 they
//! bunch at 0.5 (every unit alike); Xavier (std √(1/100)) spreads them out.

use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::functions::{randn, sigmoid};
use crate::machinery::linalg::matmul;
use crate::net::{Activation, Init};

/// The activations of one hidden layer, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationStats {
    /// Every activation value of the layer (samples × nodes).
    pub values: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their standard deviation.
    pub std: f64,
    /// The fraction within 0.01 of 0 (dead or saturated-low units).
    pub near_zero: f64,
    /// The fraction within 0.01 of 1 (saturated sigmoid units).
    pub near_one: f64,
}

/// The activations of `layers` hidden layers of `nodes` units each, for `samples` random
/// inputs, weights scaled by `init` (a fan-in of `nodes`), everything drawn from a ChaCha8
/// RNG seeded with `seed`.
pub fn activation_histograms(
    activation: Activation,
    init: Init,
    (samples, nodes, layers): (usize, usize, usize),
    seed: u64,
) -> Vec<ActivationStats> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |shape: (usize, usize), std: f64| -> Array2<f64> { randn(shape, std, &mut rng) };
    let mut x = draw((samples, nodes), 1.0);
    let std = init.std(nodes);
    let mut stats = Vec::with_capacity(layers);
    for _ in 0..layers {
        let w = draw((nodes, nodes), std);
        let mut a = Array2::zeros((samples, nodes));
        matmul(x.view(), w.view(), a.view_mut(), false);
        match activation {
            Activation::Sigmoid => a.mapv_inplace(sigmoid),
            Activation::Relu => a.mapv_inplace(|v| v.max(0.0)),
        }
        stats.push(summarise(a.iter().copied().collect()));
        x = a;
    }
    stats
}

fn summarise(values: Vec<f64>) -> ActivationStats {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let share = |pred: &dyn Fn(f64) -> bool| values.iter().filter(|&&v| pred(v)).count() as f64 / n;
    ActivationStats {
        mean,
        std: var.sqrt(),
        near_zero: share(&|v| v.abs() < 0.01),
        near_one: share(&|v| (v - 1.0).abs() < 0.01),
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_books_three_pictures() {
        let run = |init| activation_histograms(Activation::Sigmoid, init, (1000, 100, 5), 0);
        // std 1: saturated, a U shape: over 40% of values within 0.01 of 0 or 1 and a spread
        // near that of a coin flip's 0.5.
        let last = &run(Init::Std(1.0))[4];
        assert!(
            last.near_zero + last.near_one > 0.4 && last.std > 0.4,
            "{} {}",
            last.near_zero + last.near_one,
            last.std
        );
        // std 0.01: everything near 0.5, with almost no spread.
        let last = &run(Init::Std(0.01))[4];
        assert!(
            (last.mean - 0.5).abs() < 0.01 && last.std < 0.02,
            "{} {}",
            last.mean,
            last.std
        );
        // Xavier: spread out, not saturated.
        let last = &run(Init::Xavier)[4];
        assert!(last.std > 0.05 && last.near_zero + last.near_one < 0.05);
    }
}
