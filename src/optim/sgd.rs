//! Stochastic gradient descent (§6.1.2): `W ← W − η · ∂L/∂W`.

use ndarray::{NdFloat, Zip};

use super::Optimizer;
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
    fn update(&mut self, params: Vec<NamedParam<'_, A>>) {
        let lr = A::from(self.lr).expect("the learning rate fits the float type");
        for p in params {
            let mut p = p.param;
            Zip::from(&mut p.value)
                .and(&p.grad)
                .for_each(|w, &g| *w -= lr * g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::Targets;
    use crate::net::TwoLayerNet;

    #[test]
    fn a_step_against_the_gradient_lowers_the_loss() {
        let mut net = TwoLayerNet::<f64>::new(4, 5, 3, 0.5, 1);
        let x = crate::gradient::standard_normal::<f64>(&[6, 4], 2);
        let t = Targets::Indices(vec![0, 1, 2, 0, 1, 2]);
        let before = net.gradient(x.view(), &t);
        // W ← W − η·dW moves each weight by exactly −η·dW.
        let (w0, dw0) = {
            let p = &net.params_mut()[0].param;
            (p.value[[0, 0]], p.grad[[0, 0]])
        };
        Sgd::new(0.1).update(net.params_mut());
        assert!((net.params_mut()[0].param.value[[0, 0]] - (w0 - 0.1 * dw0)).abs() < 1e-15);
        assert!(net.loss(x.view(), &t, crate::layers::Mode::Train) < before);
    }
}
