//! Softmax-with-Loss (§5.6.3): the output layer, softmax followed by cross-entropy.
//!
//! ```text
//! forward   yₙ = softmax(xₙ)                          x, y (N, C)
//!           L  = −(1/N) Σₙ Σₖ tₙₖ log max(yₙₖ, δ)      a scalar; δ = 1e-7
//! backward  ∂L/∂x = (y − t) / N                        (N, C), times the upstream dout (1)
//! ```
//!
//! Targets `t` are one-hot rows or class indices ([`Targets`]); with indices, `y − t` subtracts
//! 1 at each example's class. Caches `y` and `t`.
//!
//! ```
//! use backprop::{functions::Targets, layers::SoftmaxWithLoss};
//! use ndarray::array;
//! let mut loss_layer = SoftmaxWithLoss::new();
//! // Equal scores: y = [1/2, 1/2], L = −log(1/2) = ln 2
//! let loss = loss_layer.forward(array![[0.0, 0.0]], &Targets::Indices(vec![1]));
//! assert!((loss - std::f64::consts::LN_2).abs() < 1e-15);
//! // (y − t) / N = [0.5 − 0, 0.5 − 1] / 1
//! assert_eq!(loss_layer.backward(1.0), array![[0.5, -0.5]]);
//! ```

use ndarray::{Array2, NdFloat, Zip};

use super::cached;
use crate::functions::{Targets, cross_entropy_error, softmax_in_place};
use crate::machinery::scratch::reuse;

/// Softmax followed by the cross-entropy error.
#[derive(Debug, Clone)]
pub struct SoftmaxWithLoss<A> {
    /// Softmax output `y` `(N, C)` of the last forward pass.
    y: Option<Array2<A>>,
    /// Its targets.
    t: Option<Targets<A>>,
    /// The `y` of the pass before, the buffer for the next `∂L/∂x`.
    spare: Option<Array2<A>>,
}

impl<A> Default for SoftmaxWithLoss<A> {
    fn default() -> Self {
        SoftmaxWithLoss {
            y: None,
            t: None,
            spare: None,
        }
    }
}

impl<A: NdFloat> SoftmaxWithLoss<A> {
    /// A loss layer with nothing cached yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean loss of scores `x` `(N, C)` against targets `t`.
    ///
    /// # Panics
    /// When `t` does not have `N` entries, a class index is `≥ C`, or one-hot targets are not
    /// `(N, C)`.
    #[track_caller]
    pub fn forward(&mut self, mut x: Array2<A>, t: &Targets<A>) -> A {
        softmax_in_place(&mut x); // y = softmax(x)
        let loss = cross_entropy_error(x.view(), t);
        self.spare = self.y.replace(x); // the y before: the next ∂L/∂x's buffer
        self.t.get_or_insert_with(|| t.clone()).clone_from(t);
        loss
    }

    /// The probabilities `y = softmax(x)` of the last forward pass, `(N, C)`.
    pub fn probabilities(&self) -> Option<&Array2<A>> {
        self.y.as_ref()
    }

    /// `∂L/∂x = dout · (y − t) / N`; `dout` is 1 when this is the last node.
    ///
    /// # Panics
    /// When called before [`forward`](Self::forward).
    #[track_caller]
    pub fn backward(&mut self, dout: A) -> Array2<A> {
        let (y, t) = (
            cached(&self.y, "SoftmaxWithLoss"),
            cached(&self.t, "SoftmaxWithLoss"),
        );
        let scale = dout / A::from(y.nrows().max(1)).expect("batch size fits the float type");
        let mut dx = reuse(&mut self.spare, y.raw_dim(), A::zero());
        y_minus_t(&mut dx, y, t, scale);
        dx
    }
}

/// `dx ← (y − t) · scale`, subtracting 1 at each example's class for index targets.
fn y_minus_t<A: NdFloat>(dx: &mut Array2<A>, y: &Array2<A>, t: &Targets<A>, scale: A) {
    match t {
        Targets::Indices(t) => {
            for ((mut dx, y), &k) in dx.rows_mut().into_iter().zip(y.rows()).zip(t) {
                Zip::indexed(&mut dx).and(&y).for_each(|j, d, &y| {
                    *d = if j == k { y - A::one() } else { y } * scale;
                });
            }
        }
        Targets::OneHot(t) => Zip::from(dx)
            .and(y)
            .and(t)
            .for_each(|d, &y, &t| *d = (y - t) * scale),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::numerical_gradient;
    use crate::gradient::standard_normal as test_input;
    use ndarray::array;

    #[test]
    fn forward_and_backward_match_hand_values() {
        // x = [[ln 1, ln 3], [ln 2, ln 2]] gives y = [[1/4, 3/4], [1/2, 1/2]].
        // t = [1, 0]: L = −(ln 3/4 + ln 1/2)/2 = 0.4904146265058631
        // dx = (y − t)/2 = [[1/8, −1/8], [−1/4, 1/4]]
        let x = array![[0.0, 3f64.ln()], [2f64.ln(), 2f64.ln()]];
        let mut layer = SoftmaxWithLoss::new();
        let loss = layer.forward(x, &Targets::Indices(vec![1, 0]));
        assert!((loss - 0.490_414_626_505_863_1).abs() < 1e-15);
        let dx = layer.backward(1.0);
        let expected = array![[0.125, -0.125], [-0.25, 0.25]];
        assert!((dx - expected).iter().all(|d| d.abs() < 1e-15));
    }

    #[test]
    fn one_hot_and_index_targets_agree() {
        let x = test_input(&[4, 5], 3).into_dimensionality().unwrap();
        let indices = Targets::Indices(vec![0, 4, 2, 2]);
        let one_hot = Targets::OneHot(indices.to_one_hot(5));
        let (mut a, mut b) = (SoftmaxWithLoss::new(), SoftmaxWithLoss::new());
        assert_eq!(a.forward(x.clone(), &indices), b.forward(x, &one_hot));
        assert_eq!(a.backward(1.0), b.backward(1.0));
    }

    #[test]
    fn gradient_matches_finite_differences_and_large_scores_stay_finite() {
        let mut x: ndarray::ArrayD<f64> = test_input(&[3, 4], 5);
        x[[0, 0]] += 1000.0; // would overflow exp without the max shift
        let t = Targets::Indices(vec![0, 3, 1]);
        let mut layer = SoftmaxWithLoss::new();
        let loss = layer.forward(x.clone().into_dimensionality().unwrap(), &t);
        assert!(loss.is_finite());
        let analytic = layer.backward(1.0).into_dyn();
        let numeric = numerical_gradient(
            |x| SoftmaxWithLoss::new().forward(x.clone().into_dimensionality().unwrap(), &t),
            &mut x,
        );
        let cmp = crate::gradient::Comparison::of(analytic.view(), numeric.view());
        assert!(cmp.max_rel_err < 1e-6, "{cmp:?}");
    }
}
