//! Affine (fully connected) layer (§5.6.2).
//!
//! ```text
//! forward   Y = X·W + b                 X (N, D), W (D, M), b (M,), Y (N, M)
//! backward  ∂L/∂X = ∂L/∂Y · Wᵀ           (N, D)   skipped for a net's first layer
//!           ∂L/∂W = Xᵀ · ∂L/∂Y           (D, M)
//!           ∂L/∂b = Σₙ ∂L/∂Y[n, :]        (M,)   the column sum over the batch
//! ```
//!
//! The products run on [`crate::linalg::matmul`] (faer's GEMM, transposes as strided views);
//! the gradients are written into buffers kept from step to step.
//!
//! An input with more than two axes, such as images `(N, C, H, W)`, is flattened to
//! `(N, C·H·W)` and `∂L/∂X` is reshaped back. Caches the flattened `X` and the input shape.
//!
//! ```
//! use backprop::layers::{Affine, Layer, Mode};
//! use ndarray::{array, Array1};
//! // Y = X·W + b with X = [1 2], W = [[1 0 1], [0 1 1]], b = [0.5 0.5 0.5]
//! let mut affine = Affine::new(array![[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], Array1::from_elem(3, 0.5));
//! let y = affine.forward(array![[1.0, 2.0]].into_dyn(), Mode::Train);
//! assert_eq!(y, array![[1.5, 2.5, 3.5]].into_dyn());
//! ```

use ndarray::{Array1, Array2, ArrayD, IxDyn, NdFloat};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Layer, Mode, Param, cached, check_dout_shape, two_params};
use crate::linalg::matmul;

/// A fully connected layer `Y = X·W + b`.
#[derive(Debug, Clone)]
pub struct Affine<A> {
    /// Weights `W`, shape `(D, M)` = (inputs, outputs), as in the book.
    w: Array2<A>,
    /// Bias `b`, shape `(M,)`.
    b: Array1<A>,
    /// `∂L/∂W`, shape `(D, M)`.
    dw: Array2<A>,
    /// `∂L/∂b`, shape `(M,)`.
    db: Array1<A>,
    /// The flattened input `(N, D)` of the last forward pass and its original shape.
    x: Option<(Array2<A>, IxDyn)>,
}

impl<A: NdFloat> Affine<A> {
    /// A layer with the given weights `(D, M)` and bias `(M,)`.
    ///
    /// # Panics
    /// When `b` does not have one entry per column of `w`.
    #[track_caller]
    pub fn new(w: Array2<A>, b: Array1<A>) -> Self {
        assert_eq!(
            w.ncols(),
            b.len(),
            "Affine::new: W has shape {:?} but b has shape {:?}",
            w.shape(),
            b.shape()
        );
        Affine {
            dw: Array2::zeros(w.raw_dim()),
            db: Array1::zeros(b.raw_dim()),
            w,
            b,
            x: None,
        }
    }

    /// `W = std · randn(inputs, outputs)`, `b = 0`: the book's `weight_init_std * np.random.randn`.
    pub fn randn(inputs: usize, outputs: usize, std: f64, rng: &mut impl Rng) -> Self {
        let w = Array2::from_shape_simple_fn((inputs, outputs), || {
            let z: f64 = StandardNormal.sample(rng);
            A::from(std * z).expect("a normal sample fits the float type")
        });
        Self::new(w, Array1::zeros(outputs))
    }

    /// The weights `W`, shape `(D, M)`.
    pub fn weights(&self) -> &Array2<A> {
        &self.w
    }

    /// The bias `b`, shape `(M,)`.
    pub fn bias(&self) -> &Array1<A> {
        &self.b
    }
}

impl<A: NdFloat> Affine<A> {
    /// `∂L/∂W = Xᵀ·∂L/∂Y` and `∂L/∂b = Σₙ ∂L/∂Y[n, :]` into the gradient buffers; returns
    /// `∂L/∂Y` as a matrix.
    #[track_caller]
    fn param_grads(&mut self, dout: ArrayD<A>) -> Array2<A> {
        let (x, _) = cached(&self.x, "Affine");
        check_dout_shape("Affine", &[x.nrows(), self.w.ncols()], dout.shape());
        let dout = dout
            .into_dimensionality::<ndarray::Ix2>()
            .expect("shape checked above");
        matmul(x.t(), dout.view(), self.dw.view_mut(), false);
        self.db.fill(A::zero());
        for row in dout.rows() {
            self.db += &row;
        }
        dout
    }
}

impl<A: NdFloat> Layer<A> for Affine<A> {
    fn kind(&self) -> &'static str {
        "Affine"
    }

    #[track_caller]
    fn forward(&mut self, x: ArrayD<A>, _mode: Mode) -> ArrayD<A> {
        let shape = x.raw_dim();
        let n: usize = x.shape().first().copied().unwrap_or(0);
        let d: usize = self.w.nrows();
        assert!(
            x.ndim() >= 2 && n * d == x.len(),
            "Affine::forward: input of shape {:?} does not flatten to (N, {d}) for W of shape {:?}",
            x.shape(),
            self.w.shape()
        );
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        }
        .into_shape_with_order((n, d))
        .expect("a standard-layout array reshapes to (N, D)");
        // Y = X·W + b: the bias first, then the product accumulated onto it.
        let mut y = Array2::from_shape_fn((n, self.b.len()), |(_, j)| self.b[j]);
        matmul(x.view(), self.w.view(), y.view_mut(), true);
        self.x = Some((x, shape));
        y.into_dyn()
    }

    #[track_caller]
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A> {
        let dout = self.param_grads(dout);
        let (x, shape) = cached(&self.x, "Affine");
        // ∂L/∂X = ∂L/∂Y · Wᵀ
        let mut dx = Array2::zeros(x.raw_dim());
        matmul(dout.view(), self.w.t(), dx.view_mut(), false);
        dx.into_shape_with_order(shape.clone())
            .expect("dX has as many elements as X")
    }

    #[track_caller]
    fn backward_params_only(&mut self, dout: ArrayD<A>) {
        let _ = self.param_grads(dout);
    }

    fn params_mut(&mut self) -> Vec<Param<'_, A>> {
        two_params(
            ["W", "b"],
            (&mut self.w, &mut self.dw),
            (&mut self.b, &mut self.db),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::check_layer;
    use crate::gradient::standard_normal as test_input;
    use ndarray::array;
    use rand::SeedableRng;

    #[test]
    fn backward_matches_hand_values() {
        // X = [[1 2], [3 4]], W = [[1 0 1], [0 1 1]], dY = [[1 0 2], [0 1 1]]
        // dX = dY·Wᵀ = [[3 2], [1 2]]; dW = Xᵀ·dY = [[1 3 5], [2 4 8]]; db = [1 1 3]
        let mut affine = Affine::new(array![[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], Array1::zeros(3));
        let _ = affine.forward(array![[1.0, 2.0], [3.0, 4.0]].into_dyn(), Mode::Train);
        let dx = affine.backward(array![[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]].into_dyn());
        assert_eq!(dx, array![[3.0, 2.0], [1.0, 2.0]].into_dyn());
        assert_eq!(affine.dw, array![[1.0, 3.0, 5.0], [2.0, 4.0, 8.0]]);
        assert_eq!(affine.db, array![1.0, 1.0, 3.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut affine = Affine::<f64>::randn(6, 4, 1.0, &mut rng);
        affine.b = test_input(&[4], 9).into_dimensionality().unwrap();
        check_layer(&mut affine, &test_input(&[5, 6], 4), 5).assert_below(1e-6);
    }

    #[test]
    fn images_are_flattened_and_dx_keeps_their_shape() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut affine = Affine::<f64>::randn(2 * 3 * 2, 3, 1.0, &mut rng);
        let x = test_input(&[2, 2, 3, 2], 6);
        let y = affine.forward(x.clone(), Mode::Train);
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(affine.backward(y).shape(), x.shape());
        check_layer(&mut affine, &x, 8).assert_below(1e-6);
    }

    #[test]
    #[should_panic(expected = "does not flatten to (N, 3)")]
    fn a_wrong_input_width_names_both_shapes() {
        let mut affine = Affine::<f64>::new(Array2::zeros((3, 2)), Array1::zeros(2));
        let _ = affine.forward(Array2::zeros((4, 5)).into_dyn(), Mode::Train);
    }
}
