//! Stochastic gradient descent (§6.1.2): `W ← W − η · ∂L/∂W`.

use ndarray::{NdFloat, Zip};

use super::{Optimizer, for_each_element, scalar};
use crate::net::NamedParam;

/// Plain SGD with learning rate `η` (`lr`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    /// The learning rate `η`.
    pub lr: f64,
}

impl Sgd {
    /// SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Sgd { lr }
    }
}

impl<A: NdFloat> Optimizer<A> for Sgd {
    fn update_param(&mut self, param: NamedParam<'_, A>) {
        let lr = scalar::<A>(self.lr);
        let mut p = param.param;
        let zip = Zip::from(&mut p.value).and(&p.grad);
        for_each_element!(zip, 2, |w: &mut A, &g: &A| *w -= lr * g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::step;

    #[test]
    fn moves_against_the_gradient_by_the_learning_rate() {
        // W = [1, −2], g = [0.5, −1]: W − 0.1·g = [0.95, −1.9]
        let w = step(&mut Sgd::new(0.1), [0.5, -1.0]);
        assert!(
            (w[0] - 0.95).abs() < 1e-15 && (w[1] + 1.9).abs() < 1e-15,
            "{w:?}"
        );
    }
}
