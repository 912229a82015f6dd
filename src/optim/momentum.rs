//! Momentum (§6.1.4): a velocity that accumulates gradients, like a ball rolling downhill.
//!
//! ```text
//! v ← α·v − η·∂L/∂W        v starts at 0, α = 0.9
//! W ← W + v
//! ```

use ndarray::NdFloat;

use super::{Optimizer, Slots, State, scalar, state_in_slots};
use crate::error::Result;
use crate::net::NamedParam;

/// SGD with momentum `α` and learning rate `η`; state `v/<param>`.
#[derive(Debug, Clone)]
pub struct Momentum<A> {
    /// The learning rate `η`.
    pub lr: f64,
    /// The momentum `α`.
    pub momentum: f64,
    pub(super) v: Slots<A>,
}

impl<A: NdFloat> Momentum<A> {
    /// Momentum with learning rate `lr` and momentum `momentum` (the book: 0.01 and 0.9).
    pub fn new(lr: f64, momentum: f64) -> Self {
        Momentum {
            lr,
            momentum,
            v: Slots::new("v"),
        }
    }
}

impl<A: NdFloat> Optimizer<A> for Momentum<A> {
    fn update_param(&mut self, param: NamedParam<'_, A>) {
        let (lr, alpha) = (scalar::<A>(self.lr), scalar::<A>(self.momentum));
        self.v.update(param, |w, v, g| {
            *v = alpha * *v - lr * g;
            *w += *v;
        });
    }

    state_in_slots!(v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::step;

    #[test]
    fn the_velocity_carries_over_to_the_next_step() {
        let mut m = Momentum::new(0.1, 0.9);
        // step 1: v = −0.1·g = [−0.1, 0.2]; W = [0.9, −1.8]
        let w = step(&mut m, [1.0, -2.0]);
        assert!(
            (w[0] - 0.9).abs() < 1e-15 && (w[1] + 1.8).abs() < 1e-15,
            "{w:?}"
        );
        // step 2 from W = [1, −2] with g = 0: v = 0.9·v = [−0.09, 0.18]
        let w = step(&mut m, [0.0, 0.0]);
        assert!(
            (w[0] - 0.91).abs() < 1e-15 && (w[1] + 1.82).abs() < 1e-15,
            "{w:?}"
        );
    }
}
