//! Sigmoid (§5.5.2): `y = σ(x) = 1 / (1 + e⁻ˣ)`; backward `∂L/∂x = ∂L/∂y · y(1 − y)`.
//!
//! Any shape. Caches the output `y`, from which the derivative follows without `exp`.
//!
//! ```
//! use backprop::layers::{Layer, Mode, Sigmoid};
//! use ndarray::array;
//! let mut sigmoid = Sigmoid::new();
//! let y = sigmoid.forward(array![0.0].into_dyn(), Mode::Train);
//! assert_eq!(y, array![0.5].into_dyn());
//! // σ'(0) = 0.5 · (1 − 0.5) = 0.25
//! assert_eq!(sigmoid.backward(array![1.0].into_dyn()), array![0.25].into_dyn());
//! ```

use ndarray::{ArrayD, NdFloat, Zip};

use super::{Layer, Mode, cached, check_dout_shape};
use crate::machinery::scratch::keep_copy;
use crate::machinery::sigmoid_lanes::sigmoid_in_place;

/// The logistic sigmoid activation.
#[derive(Debug, Clone)]
pub struct Sigmoid<A> {
    /// `y = σ(x)` from the last forward pass.
    out: Option<ArrayD<A>>,
}

impl<A> Default for Sigmoid<A> {
    fn default() -> Self {
        Sigmoid { out: None }
    }
}

impl<A> Sigmoid<A> {
    /// A sigmoid with nothing cached yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<A: NdFloat> Layer<A> for Sigmoid<A> {
    fn kind(&self) -> &'static str {
        "Sigmoid"
    }

    /// `y = 1 / (1 + e⁻ˣ)`, remembering `y`
    fn forward(&mut self, mut x: ArrayD<A>, _mode: Mode) -> ArrayD<A> {
        sigmoid_in_place(&mut x); // crate::functions::sigmoid on every element, f32 in SIMD lanes
        keep_copy(&mut self.out, &x);
        x
    }

    /// `∂L/∂x = ∂L/∂y · y(1 − y)`
    #[track_caller]
    fn backward(&mut self, mut dout: ArrayD<A>) -> ArrayD<A> {
        let y = cached(&self.out, "Sigmoid");
        check_dout_shape("Sigmoid", y.shape(), dout.shape());
        Zip::from(&mut dout)
            .and(y)
            .for_each(|d, &y| *d = *d * y * (A::one() - y));
        dout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::check_layer;
    use crate::gradient::standard_normal as test_input;

    #[test]
    fn gradient_matches_finite_differences() {
        let x = test_input::<f64>(&[3, 5], 2);
        check_layer(&mut Sigmoid::new(), &x, 3).assert_below(1e-6);
    }

    #[test]
    fn forward_matches_hand_values() {
        // σ(2) = 0.8807970779778823, σ(−2) = 0.11920292202211755
        let y = Sigmoid::new().forward(ndarray::arr1(&[2.0, -2.0]).into_dyn(), Mode::Eval);
        assert!((y[0] - 0.880_797_077_977_882_3f64).abs() < 1e-15);
        assert!((y[1] - 0.119_202_922_022_117_55f64).abs() < 1e-15);
    }
}
