//! ReLU (§5.5.1): `y = max(0, x)`; backward `∂L/∂x = ∂L/∂y · [x > 0]`.
//!
//! Any shape. Caches the mask `[x > 0]`, one `bool` per unit; works in place on the arrays
//! it is given.
//!
//! ```
//! use backprop::layers::{Layer, Mode, Relu};
//! use ndarray::array;
//! let mut relu = Relu::new();
//! let y = relu.forward(array![[1.0, -0.5], [-2.0, 3.0]].into_dyn(), Mode::Train);
//! assert_eq!(y, array![[1.0, 0.0], [0.0, 3.0]].into_dyn());
//! let dx = relu.backward(array![[5.0, 5.0], [5.0, 5.0]].into_dyn());
//! assert_eq!(dx, array![[5.0, 0.0], [0.0, 5.0]].into_dyn());
//! ```

use ndarray::{ArrayD, NdFloat, Zip};

use super::{Layer, Mode, cached, check_dout_shape};
use crate::machinery::parallel::zip_for_each;
use crate::machinery::scratch::reuse_like;

/// Rectified linear unit.
#[derive(Debug, Clone, Default)]
pub struct Relu {
    /// `[x > 0]` from the last forward pass, shape of `x`.
    active: Option<ArrayD<bool>>,
}

impl Relu {
    /// A ReLU with nothing cached yet.
    pub fn new() -> Self {
        Relu { active: None }
    }
}

impl<A: NdFloat> Layer<A> for Relu {
    fn kind(&self) -> &'static str {
        "Relu"
    }

    /// `y = max(0, x)`, remembering `[x > 0]`
    fn forward(&mut self, mut x: ArrayD<A>, _mode: Mode) -> ArrayD<A> {
        let mut active = reuse_like(&mut self.active, &x, false);
        let (x_and_mask, bytes) = (Zip::from(&mut x).and(&mut active), 2 * size_of::<A>() + 1);
        zip_for_each!(x_and_mask, bytes, |v: &mut A, on: &mut bool| {
            // As the book's `mask = (x <= 0)`, NaN counts as active: it passes through
            // instead of being silently zeroed.
            *on = (*v > A::zero()) | v.is_nan();
            *v = if *on { *v } else { A::zero() };
        });
        self.active = Some(active);
        x
    }

    /// `∂L/∂x = ∂L/∂y · [x > 0]`
    #[track_caller]
    fn backward(&mut self, mut dout: ArrayD<A>) -> ArrayD<A> {
        let active = cached(&self.active, "Relu");
        check_dout_shape("Relu", active.shape(), dout.shape());
        let (dout_and_mask, bytes) = (Zip::from(&mut dout).and(active), 2 * size_of::<A>() + 1);
        zip_for_each!(dout_and_mask, bytes, |d: &mut A, &on: &bool| {
            *d = if on { *d } else { A::zero() };
        });
        dout
    }

    fn branches(&self) -> Option<ArrayD<bool>> {
        self.active.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::check_layer;
    use crate::gradient::standard_normal as test_input;

    #[test]
    fn gradient_matches_finite_differences_away_from_the_kink() {
        let x = test_input(&[4, 6], 1).mapv(|v: f64| if v.abs() < 0.1 { v + 0.3 } else { v });
        let report = check_layer(&mut Relu::new(), &x, 7);
        report.assert_below(1e-6);
    }

    #[test]
    #[should_panic(
        expected = "Relu::backward: dout has shape [3], but the forward output had shape [2]"
    )]
    fn backward_with_the_wrong_shape_names_both() {
        let mut relu = Relu::new();
        let _ = relu.forward(ndarray::arr1(&[1.0, 2.0]).into_dyn(), Mode::Train);
        let _ = relu.backward(ndarray::arr1(&[1.0, 2.0, 3.0]).into_dyn());
    }
}
