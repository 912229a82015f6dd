//! AdaGrad (§6.1.5): each parameter's step shrinks with the squares of its past gradients.
//!
//! ```text
//! h ← h + ∂L/∂W ⊙ ∂L/∂W                  h starts at 0
//! W ← W − η · ∂L/∂W / (√h + 10⁻⁷)
//! ```

use ndarray::NdFloat;

use super::{Optimizer, Slots, State, scalar, state_in_slots};
use crate::error::Result;
use crate::net::NamedParam;

/// `10⁻⁷` in `√h + 10⁻⁷`, the book's guard against dividing by zero.
pub(super) const EPS: f64 = 1e-7;

/// AdaGrad with learning rate `η`; state `h/<param>`.
#[derive(Debug, Clone)]
pub struct AdaGrad<A> {
    /// The learning rate `η`.
    pub lr: f64,
    h: Slots<A>,
}

impl<A: NdFloat> AdaGrad<A> {
    /// AdaGrad with learning rate `lr` (the book: 0.01).
    pub fn new(lr: f64) -> Self {
        AdaGrad {
            lr,
            h: Slots::new("h"),
        }
    }
}

impl<A: NdFloat> Optimizer<A> for AdaGrad<A> {
    fn update_param(&mut self, param: NamedParam<'_, A>) {
        let (lr, eps) = (scalar::<A>(self.lr), scalar::<A>(EPS));
        self.h.update(param, |w, h, g| {
            *h += g * g;
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
    fn steps_shrink_as_squared_gradients_add_up() {
        let mut a = AdaGrad::new(0.1);
        // step 1: h = g² so the step is η·g/|g| ≈ 0.1 whatever |g|.
        let w = step(&mut a, [4.0, -0.5]);
        assert!(
            (w[0] - 0.9).abs() < 1e-7 && (w[1] + 1.9).abs() < 1e-6,
            "{w:?}"
        );
        // step 2 with the same g: h = 2g², step 0.1/√2.
        let w = step(&mut a, [4.0, -0.5]);
        assert!((w[0] - (1.0 - 0.1 / 2f64.sqrt())).abs() < 1e-7, "{w:?}");
    }
}
