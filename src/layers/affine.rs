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
//! From the second training step on, neither pass allocates: `∂L/∂X` is written into the
//! buffer of the cached `X` (no longer needed once `∂L/∂W` is known), the buffer of `∂L/∂Y`
//! received by `backward` holds the next `Y`, and as a net's first layer
//! ([`Layer::forward_input`]) the data is copied into the buffer of the last input. So
//! `backward` uses up the cached `X`: each `backward` needs a `forward` before it.
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

use ndarray::{Array1, Array2, ArrayD, ArrayViewD, IxDyn, NdFloat};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{Layer, Mode, Param, cached, check_dout_shape, visit_two_params};
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
    /// The `∂L/∂Y` buffer of the last backward pass, reused for the next `Y`.
    spare_output: Option<Array2<A>>,
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
            spare_output: None,
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
    /// `(N, D)`, the shape an input of shape `shape` flattens to.
    ///
    /// # Panics
    /// When it does not flatten to `D` = the rows of `W` per example.
    #[track_caller]
    fn flat_input(&self, shape: &[usize]) -> (usize, usize) {
        let n: usize = shape.first().copied().unwrap_or(0);
        let d: usize = self.w.nrows();
        assert!(
            shape.len() >= 2 && n * d == shape.iter().product::<usize>(),
            "Affine::forward: input of shape {shape:?} does not flatten to (N, {d}) for W of shape {:?}",
            self.w.shape()
        );
        (n, d)
    }

    /// `Y = X·W + b` for the cached `X`, in the buffer of the last `∂L/∂Y` when it fits: the
    /// bias first, then the product accumulated onto it.
    fn output(&mut self) -> ArrayD<A> {
        let (x, _) = cached(&self.x, "Affine");
        let dim = (x.nrows(), self.b.len());
        let mut y = match self.spare_output.take() {
            Some(y) if y.dim() == dim => y,
            _ => Array2::zeros(dim),
        };
        y.assign(&self.b);
        matmul(x.view(), self.w.view(), y.view_mut(), true);
        y.into_dyn()
    }

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
        let (n, d) = self.flat_input(x.shape());
        let shape = x.raw_dim();
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        }
        .into_shape_with_order((n, d))
        .expect("a standard-layout array reshapes to (N, D)");
        self.x = Some((x, shape));
        self.output()
    }

    #[track_caller]
    fn forward_input(&mut self, x: ArrayViewD<'_, A>, mode: Mode) -> ArrayD<A> {
        let (n, d) = self.flat_input(x.shape());
        let Ok(flat) = x.view().into_shape_with_order((n, d)) else {
            return self.forward(x.to_owned(), mode);
        };
        let mut kept = match self.x.take() {
            Some((kept, _)) if kept.dim() == (n, d) => kept,
            _ => Array2::zeros((n, d)),
        };
        kept.assign(&flat);
        self.x = Some((kept, x.raw_dim()));
        self.output()
    }

    #[track_caller]
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A> {
        let dout = self.param_grads(dout);
        let (mut x, shape) = self.x.take().expect("param_grads checked the cache");
        // ∂L/∂X = ∂L/∂Y · Wᵀ, written over X, which ∂L/∂W no longer needs.
        matmul(dout.view(), self.w.t(), x.view_mut(), false);
        self.spare_output = Some(dout);
        x.into_shape_with_order(shape)
            .expect("dX has as many elements as X")
    }

    #[track_caller]
    fn backward_params_only(&mut self, dout: ArrayD<A>) {
        self.spare_output = Some(self.param_grads(dout));
    }

    fn visit_params<'a>(&'a mut self, visit: &mut dyn FnMut(Param<'a, A>)) {
        visit_two_params(
            ["W", "b"],
            (&mut self.w, &mut self.dw),
            (&mut self.b, &mut self.db),
            visit,
        );
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
