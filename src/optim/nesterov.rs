//! Nesterov's accelerated gradient (§6.1.7, the book's `Nesterov`): momentum that looks ahead
//! along its velocity, in the form that needs only the gradient at the current `W`.
//!
//! ```text
//! v ← α·v − η·∂L/∂W                      v starts at 0, α = 0.9
//! W ← W + α²·v − (1 + α)·η·∂L/∂W
//! ```
//!
//! Its hyper-parameters and state are [`Momentum`]'s; only the update of `W` differs.

use ndarray::NdFloat;

use super::{Momentum, Optimizer, State, scalar, state_in_slots};
use crate::error::Result;
use crate::net::NamedParam;

/// Nesterov momentum `α` with learning rate `η`; state `v/<param>`.
#[derive(Debug, Clone)]
pub struct Nesterov<A> {
    /// Its learning rate `η`, momentum `α` and velocities `v`: those of a [`Momentum`].
    pub base: Momentum<A>,
}

impl<A: NdFloat> Nesterov<A> {
    /// Nesterov with learning rate `lr` and momentum `momentum` (the book: 0.01 and 0.9).
    pub fn new(lr: f64, momentum: f64) -> Self {
        Nesterov {
            base: Momentum::new(lr, momentum),
        }
    }
}

impl<A: NdFloat> Optimizer<A> for Nesterov<A> {
    fn update_param(&mut self, param: NamedParam<'_, A>) {
        let Momentum { lr, momentum, v } = &mut self.base;
        let (lr, alpha) = (scalar::<A>(*lr), scalar::<A>(*momentum));
        v.update(param, |w, v, g| {
            *v = alpha * *v - lr * g;
            *w += alpha * alpha * *v - (A::one() + alpha) * lr * g;
        });
    }

    state_in_slots!(base.v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::step;

    #[test]
    fn first_step_by_hand() {
        // g = [1, 0], η = 0.1, α = 0.5: v = [−0.1, 0];
        // W = 1 + 0.25·(−0.1) − 1.5·0.1·1 = 0.825
        let w = step(&mut Nesterov::new(0.1, 0.5), [1.0, 0.0]);
        assert!((w[0] - 0.825).abs() < 1e-15 && w[1] == -2.0, "{w:?}");
    }
}
