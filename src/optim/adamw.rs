//! AdamW (Loshchilov & Hutter): Adam with weight decay applied to the weights directly
//! instead of through the gradient, so that it is not rescaled by Adam's `1/√v`.
//!
//! ```text
//! W ← W − η·λ·W          weight matrices only (parameters named W), as the book decays
//! then the Adam step
//! ```
//!
//! The order (decay, then Adam) is PyTorch's `AdamW`. With `λ = 0` this is [`Adam`].

use ndarray::NdFloat;

use super::{Adam, Optimizer, State, scalar};
use crate::error::Result;
use crate::net::NamedParam;

/// Adam with decoupled weight decay `λ`; state as [`Adam`]'s.
#[derive(Debug, Clone)]
pub struct AdamW<A> {
    /// The Adam step.
    pub adam: Adam<A>,
    /// The decoupled weight decay `λ`.
    pub weight_decay: f64,
}

impl<A: NdFloat> AdamW<A> {
    /// AdamW with Adam's `lr`, `beta1`, `beta2` and decay `weight_decay` (PyTorch: 0.01).
    pub fn new(lr: f64, beta1: f64, beta2: f64, weight_decay: f64) -> Self {
        AdamW {
            adam: Adam::new(lr, beta1, beta2),
            weight_decay,
        }
    }
}

impl<A: NdFloat> Optimizer<A> for AdamW<A> {
    fn begin_step(&mut self) {
        Optimizer::<A>::begin_step(&mut self.adam);
    }

    fn update_param(&mut self, mut param: NamedParam<'_, A>) {
        if param.param.name == "W" {
            let keep = A::one() - scalar::<A>(self.adam.lr * self.weight_decay);
            param.param.value.mapv_inplace(|w| w * keep);
        }
        self.adam.update_param(param);
    }

    fn state(&self) -> State {
        Optimizer::<A>::state(&self.adam)
    }

    fn load_state(&mut self, state: State) -> Result<()> {
        self.adam.load_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::step;

    #[test]
    fn decays_the_weights_before_the_adam_step() {
        // With g = 0 Adam does not move W, so only the decay acts: W·(1 − 0.1·0.5).
        let w = step(&mut AdamW::new(0.1, 0.9, 0.999, 0.5), [0.0, 0.0]);
        assert!(
            (w[0] - 0.95).abs() < 1e-15 && (w[1] + 1.9).abs() < 1e-15,
            "{w:?}"
        );
    }
}
