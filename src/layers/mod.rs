//! Layers: each computes its local forward step and, from the upstream derivative, its local
//! backward step (§5.4–§5.6).
//!
//! A layer caches in `forward` what its `backward` needs (ReLU its mask, Affine its input,
//! Sigmoid its output), owns its parameters and their gradients, and hands them out through
//! [`Layer::params_mut`] in a fixed order. Batches are `ndarray` arrays with the examples on
//! the first axis: `(N, D)` for dense layers, `(N, C, H, W)` for image layers.
//!
//! Each layer's `forward` and `backward` say the formula in its doc; the products, kept
//! buffers and threads they call are in [`crate::machinery`], which a first reading can skip.
//!
//! | book (`common/layers.py`) | here |
//! |---|---|
//! | `MulLayer`, `AddLayer` (§5.4) | [`MulLayer`], [`AddLayer`] |
//! | `Relu` (§5.5.1) | [`Relu`] |
//! | `Sigmoid` (§5.5.2) | [`Sigmoid`] |
//! | `Affine` (§5.6.2) | [`Affine`] |
//! | `SoftmaxWithLoss` (§5.6.3) | [`SoftmaxWithLoss`] |
//! | `BatchNormalization` (§6.3) | [`BatchNorm`] |
//! | `Dropout` (§6.4.3) | [`Dropout`] |
//! | `Convolution` (§7.4.3) | [`Convolution`] |
//! | `Pooling` (§7.4.4) | [`Pooling`] |
//! | `im2col`, `col2im` (§7.4.3) | [`im2col`], [`col2im`] |

mod affine;
mod batch_norm;
mod convolution;
mod dropout;
mod im2col;
mod naive;
mod pooling;
mod relu;
mod sigmoid;
mod softmax_with_loss;

pub use affine::Affine;
pub use batch_norm::BatchNorm;
pub use convolution::Convolution;
pub use dropout::Dropout;
pub use im2col::{ImageShape, Window, col2im, col2im_image, im2col, im2col_image};
pub use naive::{AddLayer, MulLayer};
pub use pooling::Pooling;
pub use relu::Relu;
pub use sigmoid::Sigmoid;
pub use softmax_with_loss::SoftmaxWithLoss;

use ndarray::{
    Array, Array1, Array2, ArrayD, ArrayViewD, ArrayViewMutD, Dimension, Ix2, IxDyn, NdFloat,
};
use rand_chacha::ChaCha8Rng;

/// Whether a forward pass is for training or for inference (the book's `train_flg`).
///
/// Layers such as dropout and batch normalisation behave differently in the two; the layers of
/// chapter 5 ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: cache what backward needs, use batch statistics, drop units.
    Train,
    /// Inference: deterministic output.
    Eval,
}

/// Where a training forward pass stands: its number among the net's training passes and the
/// index, within the whole mini-batch, of the first example it sees (not 0 for a shard of a
/// batch, see [`crate::net::Shards`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchPosition {
    /// Training passes before this one.
    pub pass: u64,
    /// The mini-batch index of the pass's first example.
    pub first_example: usize,
}

/// One parameter of a layer with its gradient, as handed to optimizers and gradient checks.
#[derive(Debug)]
pub struct Param<'a, A> {
    /// The layer-local name, such as `"W"` or `"b"`; nets number it (`W1`, `b1`, …).
    pub name: &'static str,
    /// The value, which an optimizer updates in place.
    pub value: ArrayViewMutD<'a, A>,
    /// `∂L/∂value` from the last [`Layer::backward`] (zeros before the first); mutable so
    /// that a net can add terms such as weight decay's `λW`.
    pub grad: ArrayViewMutD<'a, A>,
}

/// Hands the two parameters of a layer, such as `W` and `b` or `gamma` and `beta`, each with
/// its gradient buffer, to `visit`, in that order.
pub(crate) fn visit_two_params<'a, A, D1: Dimension, D2: Dimension>(
    names: [&'static str; 2],
    first: (&'a mut Array<A, D1>, &'a mut Array<A, D1>),
    second: (&'a mut Array<A, D2>, &'a mut Array<A, D2>),
    visit: &mut dyn FnMut(Param<'a, A>),
) {
    visit(Param {
        name: names[0],
        value: first.0.view_mut().into_dyn(),
        grad: first.1.view_mut().into_dyn(),
    });
    visit(Param {
        name: names[1],
        value: second.0.view_mut().into_dyn(),
        grad: second.1.view_mut().into_dyn(),
    });
}

/// [`visit_two_params`] for the weights `W` and bias `b` of a layer, with their gradients.
pub(crate) fn visit_weights<'a, A, D: Dimension>(
    w: (&'a mut Array<A, D>, &'a mut Array<A, D>),
    b: (&'a mut Array1<A>, &'a mut Array1<A>),
    visit: &mut dyn FnMut(Param<'a, A>),
) {
    visit_two_params(["W", "b"], w, b, visit);
}

/// A tensor a layer keeps besides its parameters, learned without gradients and needed for
/// inference, such as batch normalisation's running mean (PyTorch calls these buffers).
#[derive(Debug)]
pub struct Buffer<'a, A> {
    /// The layer-local name, such as `"running_mean"`; nets number it like parameters.
    pub name: &'static str,
    /// The value.
    pub value: ArrayViewMutD<'a, A>,
}

/// A layer of a net: `forward` computes its output, `backward` maps `∂L/∂out` to `∂L/∂in`
/// and stores the gradients of its parameters.
///
/// A layer implements four methods, the book's class in Rust: [`kind`](Self::kind),
/// [`forward`](Self::forward), [`backward`](Self::backward) and, when it has parameters,
/// [`visit_params`](Self::visit_params). The methods after them have defaults and are hooks a
/// learner can skip: [`visit_buffers`](Self::visit_buffers) and [`rng_mut`](Self::rng_mut)
/// for state saved in model files and checkpoints, [`set_position`](Self::set_position) for
/// layers that draw random numbers per example, [`forward_input`](Self::forward_input) and
/// [`backward_params_only`](Self::backward_params_only) for speed (a net's first layer), and
/// [`branches`](Self::branches) for gradient checks.
///
/// `Send + Sync` and cloneable (every `Clone` layer is, through [`CloneLayer`]) so that nets
/// can move between threads and be copied for threads that evaluate side by side.
pub trait Layer<A: NdFloat>: Send + Sync + CloneLayer<A> {
    /// The layer's kind, as the book names it (`"Affine"`, `"Relu"`); nets number it.
    fn kind(&self) -> &'static str;

    /// The forward step. Takes the batch by value: a layer may reuse its buffer (ReLU masks
    /// in place) or keep it for `backward` (Affine) without copying.
    fn forward(&mut self, x: ArrayD<A>, mode: Mode) -> ArrayD<A>;

    /// The backward step: `∂L/∂x` from `∂L/∂y`, storing parameter gradients.
    ///
    /// # Panics
    /// When called before `forward`, or with `dout` of another shape than the last output.
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A>;

    /// Hands each parameter with its gradient to `visit`, always in the same order; nothing
    /// for layers without. Allocates nothing, so that a training step need not.
    fn visit_params<'a>(&'a mut self, _visit: &mut dyn FnMut(Param<'a, A>)) {}

    /// Parameters with their gradients, in the order of [`visit_params`](Self::visit_params)
    /// (provided; not a hook).
    fn params_mut(&mut self) -> Vec<Param<'_, A>> {
        let mut params = Vec::new();
        self.visit_params(&mut |p| params.push(p));
        params
    }

    /// Hook (state): hands each non-trainable tensor that inference needs, such as batch
    /// norm's running mean, to `visit`, always in the same order; nothing by default. Saved in
    /// model files; allocates nothing.
    fn visit_buffers<'a>(&'a mut self, _visit: &mut dyn FnMut(Buffer<'a, A>)) {}

    /// Buffers in the order of [`visit_buffers`](Self::visit_buffers) (provided; not a hook).
    fn buffers_mut(&mut self) -> Vec<Buffer<'_, A>> {
        let mut buffers = Vec::new();
        self.visit_buffers(&mut |b| buffers.push(b));
        buffers
    }

    /// Hook (state): the random number generator of a layer that draws in training mode
    /// (dropout's masks), whose key a checkpoint keeps so that a resumed run draws as the
    /// run it continues.
    fn rng_mut(&mut self) -> Option<&mut ChaCha8Rng> {
        None
    }

    /// Hook (randomness): which pass and which examples the next training forward pass
    /// sees, for a layer that draws random numbers per example (dropout's masks). Its draws
    /// for an example depend on its seed and this position alone, never on how the batch was
    /// cut into shards or on where a shard ran; the net sets it before every training pass,
    /// and a gradient check sets it again to hold a mask fixed. Nothing by default.
    fn set_position(&mut self, _position: BatchPosition) {}

    /// Hook (speed): the forward step of a net's first layer, whose input is data the caller
    /// keeps. By default a copy goes to [`forward`](Self::forward); Affine copies it into the
    /// buffer of its last input instead, so that a training step allocates nothing, and in
    /// inference reads it where it is.
    fn forward_input(&mut self, x: ArrayViewD<'_, A>, mode: Mode) -> ArrayD<A> {
        self.forward(x.to_owned(), mode)
    }

    /// Hook (speed): the backward step when nothing needs `∂L/∂x`, as for a net's first
    /// layer, whose input is the data. By default [`backward`](Self::backward) with its result
    /// dropped; Affine and Convolution skip computing `∂L/∂x`, a third of their work.
    fn backward_params_only(&mut self, dout: ArrayD<A>) {
        let _ = self.backward(dout);
    }

    /// Hook (gradient checks): for piecewise-linear layers (ReLU, max pooling), which branch
    /// each unit took in the last forward pass, one `bool` per unit. Gradient checks compare
    /// it before and after a perturbation: a unit that switched branch makes the numerical
    /// gradient wrong.
    fn branches(&self) -> Option<ArrayD<bool>> {
        None
    }
}

/// A boxed copy of a layer, and the layer as its concrete type; implemented for every layer
/// that is `Clone`.
pub trait CloneLayer<A: NdFloat> {
    /// A copy of the layer, its caches included unless the layer says otherwise (a
    /// Convolution's copy leaves out its im2col rows).
    fn clone_layer(&self) -> Box<dyn Layer<A>>;

    /// The layer, for code that reads a concrete layer's settings (the ONNX export:
    /// `layer.as_any().downcast_ref::<Convolution<f32>>()`).
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<A: NdFloat, L: Layer<A> + Clone + 'static> CloneLayer<A> for L {
    fn clone_layer(&self) -> Box<dyn Layer<A>> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl<A: NdFloat> Clone for Box<dyn Layer<A>> {
    fn clone(&self) -> Self {
        self.clone_layer()
    }
}

/// Panics with the layer's name when `backward` comes before `forward` (or after an inference
/// pass, which keeps nothing for it).
#[track_caller]
pub(crate) fn cached<'a, T>(cache: &'a Option<T>, layer: &str) -> &'a T {
    match cache {
        Some(value) => value,
        None => panic!(
            "{layer}::backward called before forward (or after a Mode::Eval forward, which keeps nothing for backward)"
        ),
    }
}

/// Panics naming the layer and both shapes unless `dout` has the shape of the last output.
#[track_caller]
pub(crate) fn check_dout_shape(layer: &str, expected: &[usize], dout: &[usize]) {
    assert_eq!(
        expected, dout,
        "{layer}::backward: dout has shape {dout:?}, but the forward output had shape {expected:?}"
    );
}

/// `x (N, …)` as the matrix `(N, D)` of its examples, with its shape before: the same buffer,
/// copied only when `x` has more than two axes and is not in standard layout (a matrix is kept
/// in its memory order). `D` is the first axis of the layer's parameter `param` (its name and
/// shape).
///
/// # Panics
/// Naming `layer` and both shapes when `x` does not flatten to `(N, D)`.
#[track_caller]
pub(crate) fn flatten_batch<A: NdFloat>(
    layer: &str,
    x: ArrayD<A>,
    (param, shape): (&str, &[usize]),
) -> (Array2<A>, IxDyn) {
    let (n, d) = (x.shape().first().copied().unwrap_or(0), shape[0]);
    assert!(
        x.ndim() >= 2 && n * d == x.len(),
        "{layer}::forward: input of shape {:?} does not flatten to (N, {d}) for {param} of shape {shape:?}",
        x.shape()
    );
    let shape = x.raw_dim();
    // A matrix keeps its memory order (inference's products may give column-major ones).
    let x = match (x.ndim(), x.is_standard_layout()) {
        (2, _) => x.into_dimensionality().expect("two axes"),
        (_, true) => x.into_shape_with_order((n, d)).expect("reshapes to (N, D)"),
        (_, false) => x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((n, d))
            .expect("a standard-layout array reshapes to (N, D)"),
    };
    (x, shape)
}

/// `x (N, D)` back in the `shape` that [`flatten_batch`] flattened it from: the same array,
/// in its memory order, when that shape is a matrix.
pub(crate) fn unflatten<A>(x: Array2<A>, shape: IxDyn) -> Result<ArrayD<A>, ndarray::ShapeError> {
    match shape.ndim() {
        2 => Ok(x.into_dyn()),
        _ => x.into_shape_with_order(shape),
    }
}

/// `dout` as the matrix `(N, M)` the last forward pass gave.
///
/// # Panics
/// Naming `layer` and both shapes when it has another shape.
#[track_caller]
pub(crate) fn dout_matrix<A: NdFloat>(
    layer: &str,
    dout: ArrayD<A>,
    (n, m): (usize, usize),
) -> Array2<A> {
    check_dout_shape(layer, &[n, m], dout.shape());
    dout.into_dimensionality::<Ix2>()
        .expect("shape checked above")
}

/// `sums ← Σₙ rows[n, :]`, the rows added in order.
pub(crate) fn sum_rows_into<A: NdFloat>(sums: &mut Array1<A>, rows: &Array2<A>) {
    sums.fill(A::zero());
    for row in rows.rows() {
        *sums += &row;
    }
}
