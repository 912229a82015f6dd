//! Adam (§6.1.6): momentum and RMSprop combined, with the bias of their zero start corrected.
//!
//! ```text
//! t ← t + 1                                  t counts updates
//! m ← m + (1 − β₁)(∂L/∂W − m)               first moment,  β₁ = 0.9
//! v ← v + (1 − β₂)(∂L/∂W ⊙ ∂L/∂W − v)       second moment, β₂ = 0.999
//! ηₜ = η · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
//! W ← W − ηₜ · m / (√v + 10⁻⁷)
//! ```
//!
//! This is the book's form, which folds the bias corrections into `ηₜ`.

use ndarray::{ArrayD, NdFloat, Zip};

use super::adagrad::EPS;
use super::{Optimizer, Slots, State, for_each_element, reject_leftovers, scalar};
use crate::error::{Error, Result};
use crate::net::NamedParam;

/// Adam with learning rate `η` and decay rates `β₁`, `β₂`; state `m/<param>`, `v/<param>`
/// and the step count `t`.
#[derive(Debug, Clone)]
pub struct Adam<A> {
    /// The learning rate `η`.
    pub lr: f64,
    /// The first-moment decay `β₁`.
    pub beta1: f64,
    /// The second-moment decay `β₂`.
    pub beta2: f64,
    t: u64,
    /// The step size `η·√(1 − β₂ᵗ)/(1 − β₁ᵗ)` of step `t`, set by `begin_step`.
    lr_t: f64,
    m: Slots<A>,
    v: Slots<A>,
}

impl<A: NdFloat> Adam<A> {
    /// Adam with learning rate `lr` and decays `beta1`, `beta2` (the book: 0.001, 0.9, 0.999).
    pub fn new(lr: f64, beta1: f64, beta2: f64) -> Self {
        Adam {
            lr,
            beta1,
            beta2,
            t: 0,
            lr_t: 0.0,
            m: Slots::new("m"),
            v: Slots::new("v"),
        }
    }
}

impl<A: NdFloat> Optimizer<A> for Adam<A> {
    fn begin_step(&mut self) {
        self.t += 1;
        let t = self.t as f64;
        self.lr_t = self.lr * (1.0 - self.beta2.powf(t)).sqrt() / (1.0 - self.beta1.powf(t));
    }

    fn update_param(&mut self, p: NamedParam<'_, A>) {
        let (lr_t, b1, b2, eps) = (
            scalar::<A>(self.lr_t),
            scalar::<A>(self.beta1),
            scalar::<A>(self.beta2),
            scalar::<A>(EPS),
        );
        let mut param = p.param;
        let m = self.m.get(p.name, param.value.raw_dim());
        let v = self.v.get(p.name, param.value.raw_dim());
        let zip = Zip::from(&mut param.value).and(m).and(v).and(&param.grad);
        for_each_element!(zip, 4, |w: &mut A, m: &mut A, v: &mut A, &g: &A| {
            *m += (A::one() - b1) * (g - *m);
            *v += (A::one() - b2) * (g * g - *v);
            *w -= lr_t * *m / (v.sqrt() + eps);
        });
    }

    fn state(&self) -> State {
        let mut out = vec![("t".to_string(), ArrayD::from_elem(vec![], self.t as f64))];
        self.m.export(&mut out);
        self.v.export(&mut out);
        out
    }

    fn load_state(&mut self, mut state: State) -> Result<()> {
        self.t = 0;
        if let Some(k) = state.iter().position(|(name, _)| name == "t") {
            let (_, t) = state.swap_remove(k);
            self.t = match t.iter().next() {
                Some(&t) if t >= 0.0 && t.fract() == 0.0 && t < 2f64.powi(53) => t as u64,
                _ => {
                    return Err(Error::Invalid(format!(
                        "optimizer state \"t\" is {t}, not a step count"
                    )));
                }
            };
        }
        self.m.import(&mut state);
        self.v.import(&mut state);
        reject_leftovers(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::step;

    #[test]
    fn the_first_step_is_about_the_learning_rate_in_the_gradients_direction() {
        // t = 1: m = 0.1g, v = 0.001g², ηₜ = η·√0.001/0.1, so the step is
        // ηₜ·m/(√v + 1e-7) = η·sign(g)/(1 + 1e-7/(√0.001·|g|)) ≈ η·sign(g).
        let mut adam = Adam::new(0.01, 0.9, 0.999);
        let w = step(&mut adam, [3.0, -0.2]);
        let by_hand = |g: f64| 0.01 / (1.0 + 1e-7 / (0.001f64.sqrt() * g));
        assert!((w[0] - (1.0 - by_hand(3.0))).abs() < 1e-15, "{w:?}");
        assert!((w[1] - (-2.0 + by_hand(0.2))).abs() < 1e-15, "{w:?}");
        assert_eq!(adam.t, 1);
    }
}
