//! RMSprop (§6.1.5, the book's `RMSprop`): AdaGrad with an exponentially decaying sum, so
//! old gradients are gradually forgotten.
//!
//! ```text
//! h ← ρ·h + (1 − ρ)·∂L/∂W ⊙ ∂L/∂W        h starts at 0, ρ = 0.99
//! W ← W − η · ∂L/∂W / (√h + 10⁻⁷)
//! ```

use ndarray::NdFloat;

use super::adagrad::EPS;
use super::{Optimizer, Slots, State, scalar, state_in_slots};
use crate::error::Result;
use crate::net::NamedParam;

/// RMSprop with learning rate `η` and decay rate `ρ`; state `h/<param>`.
#[derive(Debug, Clone)]
pub struct RmsProp<A> {
    /// The learning rate `η`.
    pub lr: f64,
    /// The decay rate `ρ`.
    pub decay_rate: f64,
    h: Slots<A>,
}

impl<A: NdFloat> RmsProp<A> {
    /// RMSprop with learning rate `lr` and decay rate `decay_rate` (the book: 0.01, 0.99).
    pub fn new(lr: f64, decay_rate: f64) -> Self {
        RmsProp {
            lr,
            decay_rate,
            h: Slots::new("h"),
        }
    }
}

impl<A: NdFloat> Optimizer<A> for RmsProp<A> {
    fn update_param(&mut self, param: NamedParam<'_, A>) {
        let (lr, rho, eps) = (
            scalar::<A>(self.lr),
            scalar::<A>(self.decay_rate),
            scalar::<A>(EPS),
        );
        self.h.update(param, |w, h, g| {
            *h = rho * *h + (A::one() - rho) * g * g;
            *w -= lr * g / (h.sqrt() + eps);
        });
    }

    state_in_slots!(h);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::step;

    #[test]
    fn first_step_by_hand() {
        // ρ = 0.75, g = 2: h = 0.25·4 = 1, W = 1 − 0.1·2/(1 + 1e-7)
        let w = step(&mut RmsProp::new(0.1, 0.75), [2.0, 0.0]);
        assert!((w[0] - (1.0 - 0.2 / (1.0 + 1e-7))).abs() < 1e-15, "{w:?}");
    }
}
