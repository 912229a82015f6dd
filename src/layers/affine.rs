//! Affine (fully connected) layer (§5.6.2).
//!
//! ```text
//! forward   Y = X·W + b                 X (N, D), W (D, M), b (M,), Y (N, M)
//! backward  ∂L/∂X = ∂L/∂Y · Wᵀ           (N, D)   skipped for a net's first layer
//!           ∂L/∂W = Xᵀ · ∂L/∂Y           (D, M)
//!           ∂L/∂b = Σₙ ∂L/∂Y[n, :]        (M,)   the column sum over the batch
//! ```
//!
//! Caches `X` (flattened, see below) for backward; inference (`Mode::Eval`) keeps nothing.
//! Inputs with more than two axes, such as images `(N, C, H, W)`, are flattened to
//! `(N, C·H·W)`, and `∂L/∂X` is reshaped back.
//! (The buffers the products write into are kept from step to step: see
//! [`crate::machinery`].)
//!
//! ```
//! use backprop::layers::{Affine, Layer, Mode};
//! use ndarray::{array, Array1};
//! // Y = X·W + b with X = [1 2], W = [[1 0 1], [0 1 1]], b = [0.5 0.5 0.5]
//! let mut affine = Affine::new(array![[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], Array1::from_elem(3, 0.5));
//! let y = affine.forward(array![[1.0, 2.0]].into_dyn(), Mode::Train);
//! assert_eq!(y, array![[1.5, 2.5, 3.5]].into_dyn());
//! ```

use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD, Ix2, IxDyn, NdFloat};
use rand::Rng;

use super::{
    Layer, Mode, Param, cached, dout_matrix, flatten_batch, sum_rows_into, unflatten, visit_weights,
};
use crate::functions::randn;
use crate::machinery::linalg::{matmul, product_output};
use crate::machinery::scratch::reuse;

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
    /// The input `X (N, D)` of the last forward pass and its shape before flattening.
    x: Option<(Array2<A>, IxDyn)>,
    /// The buffer of the last `∂L/∂Y`, for the next `Y`.
    spare_y: Option<Array2<A>>,
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
            spare_y: None,
        }
    }

    /// `W = std · randn(inputs, outputs)`, `b = 0`: the book's `weight_init_std * np.random.randn`.
    pub fn randn(inputs: usize, outputs: usize, std: f64, rng: &mut impl Rng) -> Self {
        Self::new(randn((inputs, outputs), std, rng), Array1::zeros(outputs))
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
    /// `Y = X·W + b` for `X (N, D)`: in training into the buffer of the last `∂L/∂Y` when it
    /// fits; in inference into one laid out for the product's speed ([`product_output`]).
    #[track_caller]
    fn product(&mut self, x: ArrayView2<'_, A>, mode: Mode) -> Array2<A> {
        let (n, m) = (x.nrows(), self.w.ncols());
        // Y = b
        let mut y = match mode {
            Mode::Train => {
                let mut y = reuse(&mut self.spare_y, Ix2(n, m), A::zero());
                y.assign(&self.b);
                y
            }
            Mode::Eval => product_output(n, self.b.view()),
        };
        matmul(x, self.w.view(), y.view_mut(), true); // Y += X·W
        y
    }

    /// `∂L/∂W = Xᵀ·∂L/∂Y` and `∂L/∂b = Σₙ ∂L/∂Y` into the gradient buffers; returns `∂L/∂Y`.
    #[track_caller]
    fn param_grads(&mut self, dout: ArrayD<A>) -> Array2<A> {
        let (x, _) = cached(&self.x, "Affine");
        let dy = dout_matrix("Affine", dout, (x.nrows(), self.w.ncols()));
        matmul(x.t(), dy.view(), self.dw.view_mut(), false); // ∂L/∂W = Xᵀ·∂L/∂Y
        sum_rows_into(&mut self.db, &dy); // ∂L/∂b = Σₙ ∂L/∂Y
        dy
    }
}

impl<A: NdFloat> Layer<A> for Affine<A> {
    fn kind(&self) -> &'static str {
        "Affine"
    }

    /// `Y = X·W + b`
    #[track_caller]
    fn forward(&mut self, x: ArrayD<A>, mode: Mode) -> ArrayD<A> {
        let (x, shape) = flatten_batch("Affine", x, ("W", self.w.shape())); // X (N, D)
        let y = self.product(x.view(), mode);
        self.x = match mode {
            Mode::Train => Some((x, shape)), // for backward
            Mode::Eval => None,              // no backward follows inference
        };
        y.into_dyn()
    }

    /// `∂L/∂W = Xᵀ·∂L/∂Y;  ∂L/∂b = Σₙ ∂L/∂Y;  ∂L/∂X = ∂L/∂Y·Wᵀ`
    #[track_caller]
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A> {
        let dy = self.param_grads(dout); // ∂L/∂W, ∂L/∂b
        let (mut x, shape) = self.x.take().expect("param_grads checked the cache");
        // ∂L/∂X = ∂L/∂Y·Wᵀ, written over X, which ∂L/∂W no longer needs.
        matmul(dy.view(), self.w.t(), x.view_mut(), false);
        self.spare_y = Some(dy);
        unflatten(x, shape).expect("dX has as many elements as X")
    }

    /// `∂L/∂W = Xᵀ·∂L/∂Y;  ∂L/∂b = Σₙ ∂L/∂Y`, without `∂L/∂X`.
    #[track_caller]
    fn backward_params_only(&mut self, dout: ArrayD<A>) {
        self.spare_y = Some(self.param_grads(dout));
    }

    /// The data copied into the buffer of the last input (see [`crate::machinery`]); in
    /// inference, which keeps no input, the product reads the data where it is.
    #[track_caller]
    fn forward_input(&mut self, x: ArrayViewD<'_, A>, mode: Mode) -> ArrayD<A> {
        let matrix = x.view().into_dimensionality::<Ix2>();
        if let (Mode::Eval, Ok(x)) = (mode, matrix)
            && x.ncols() == self.w.nrows()
        {
            self.x = None;
            return self.product(x, mode).into_dyn();
        }
        let mut last = self
            .x
            .take()
            .and_then(|(x, shape)| unflatten(x, shape).ok());
        let mut copy = reuse(&mut last, x.raw_dim(), A::zero());
        copy.assign(&x);
        self.forward(copy, mode)
    }

    fn visit_params<'a>(&'a mut self, visit: &mut dyn FnMut(Param<'a, A>)) {
        visit_weights(
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
    use crate::machinery::scratch::column_major;
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
    fn inference_reads_the_data_in_place_and_gives_the_training_bits() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut affine = Affine::<f32>::randn(20, 7, 1.0, &mut rng);
        let x = test_input::<f32>(&[9, 20], 5);
        let trained = affine.forward_input(x.view(), Mode::Train);
        let inferred = affine.forward_input(x.view(), Mode::Eval);
        assert_eq!(inferred, trained);
        assert!(affine.x.is_none(), "inference keeps no input");
        let wide = test_input::<f32>(&[2, 4, 5], 6);
        let flattened = wide.to_shape((2, 20)).unwrap().to_owned().into_dyn();
        assert_eq!(
            affine.forward_input(wide.view(), Mode::Eval),
            affine.forward(flattened, Mode::Train),
            "inputs with more axes are flattened, as in training"
        );
    }

    /// Inference writes `Y` column-major when it has fewer columns than rows (so that faer's
    /// SIMD lanes run along the longer side), with the bits of training's row-major `Y`, also
    /// for sums over more than faer's 512-long chunks of `k` and for products small enough for
    /// faer's small-product kernels.
    #[test]
    fn inference_lays_out_y_for_the_product_with_the_training_bits() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let narrow = [(250, 784, 50), (64, 600, 10), (33, 1100, 40), (12, 30, 10)];
        for (n, d, m) in narrow.into_iter().chain([(20, 30, 70)]) {
            let mut affine = Affine::<f32>::randn(d, m, 0.1, &mut rng);
            affine.b.mapv_inplace(|_| rng.random_range(-1.0..1.0));
            let x = test_input::<f32>(&[n, d], 5);
            let trained = affine.forward_input(x.view(), Mode::Train);
            let inferred = affine.forward_input(x.view(), Mode::Eval);
            assert_eq!(inferred, trained, "{n}×{d}·{d}×{m}");
            assert!(trained.is_standard_layout(), "training's Y is row-major");
            assert_eq!(column_major(&inferred), m < n, "{n}×{d}·{d}×{m}");
            // The next layer takes Y as it is, column-major or not.
            let mut next = Affine::<f32>::randn(m, 3, 1.0, &mut rng);
            let y = trained.as_standard_layout().into_owned();
            assert_eq!(
                next.forward(inferred, Mode::Eval),
                next.forward(y, Mode::Eval)
            );
        }
    }

    #[test]
    #[should_panic(
        expected = "Affine::backward called before forward (or after a Mode::Eval forward"
    )]
    fn backward_after_inference_is_refused() {
        let mut affine = Affine::<f64>::new(Array2::zeros((3, 2)), Array1::zeros(2));
        let _ = affine.forward(Array2::zeros((4, 3)).into_dyn(), Mode::Train);
        let y = affine.forward(Array2::zeros((4, 3)).into_dyn(), Mode::Eval);
        let _ = affine.backward(y);
    }

    #[test]
    #[should_panic(expected = "Affine::forward: input of shape [4, 5] does not flatten to (N, 3)")]
    fn a_wrong_input_width_names_both_shapes() {
        let mut affine = Affine::<f64>::new(Array2::zeros((3, 2)), Array1::zeros(2));
        let _ = affine.forward(Array2::zeros((4, 5)).into_dyn(), Mode::Train);
    }
}
