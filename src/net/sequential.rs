//! A net as an ordered list of layers plus a loss layer (§5.7.2): forward walks the list,
//! backward walks it in reverse.

use ndarray::{Array2, ArrayD, ArrayViewD, ArrayViewMutD, Ix2, NdFloat, Zip};
use rand_chacha::ChaCha8Rng;

use crate::functions::{Targets, argmax};
use crate::gradient::GradCheck;
use crate::layers::{BatchPosition, Layer, Mode, Param, SoftmaxWithLoss};

mod trace;

pub use trace::{LayerTrace, Trace};

/// A parameter with its net-wide name (`W1`, `b1`, …) and its gradient.
#[derive(Debug)]
pub struct NamedParam<'a, A> {
    /// The book's name: the layer-local name numbered by weight layer (`W2`, `b2`).
    pub name: &'a str,
    /// The value and gradient.
    pub param: Param<'a, A>,
}

/// Layers applied in order, then [`SoftmaxWithLoss`].
///
/// Layers are named as in the book's `OrderedDict` (`Affine1`, `Relu1`, `Affine2`).
/// Parameters are numbered by weight layer: every layer that has a `W` starts a new number,
/// so `Affine1` holds `W1, b1`, `Affine2` holds `W2, b2`, and a later batch-norm layer after
/// `Affine1` would hold `gamma1, beta1`, as in the book's `MultiLayerNetExtend`.
///
/// With a weight decay `λ > 0` (§6.4.2) the loss is `L + ½λ Σₖ ‖Wₖ‖²` over every weight matrix
/// (parameters named `W`, not biases or batch-norm parameters), and
/// [`gradient`](Self::gradient) adds `λWₖ` to each `∂L/∂Wₖ`, as the book's `MultiLayerNet`.
#[derive(Clone)]
pub struct Sequential<A: NdFloat> {
    /// The layers in forward order.
    layers: Vec<Entry<A>>,
    last_layer: SoftmaxWithLoss<A>,
    /// The L2 weight decay `λ`.
    weight_decay: f64,
    /// The shape `(C, H, W)` one example has on entry, for nets that take images; flat
    /// batches `(N, C·H·W)` are reshaped to `(N, C, H, W)`.
    input_shape: Option<Vec<usize>>,
    /// The position of the next training pass, handed to every layer before it (dropout
    /// keys its masks by it); its pass counts up by one per training pass, and its first
    /// example is 0 unless a shard's pass says otherwise.
    position: BatchPosition,
}

/// A layer of a [`Sequential`] with its names.
#[derive(Clone)]
struct Entry<A: NdFloat> {
    /// The layer's name, such as `Affine1`.
    name: String,
    layer: Box<dyn Layer<A>>,
    /// The numeral in the names of its parameters and buffers (`1` in `W1`).
    number: usize,
    /// The net-wide names of its parameters, in the order it visits them (`W1`, `b1`).
    param_names: Vec<String>,
}

impl<A: NdFloat> Default for Sequential<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: NdFloat> std::fmt::Debug for Sequential<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("layers", &self.layer_names())
            .finish_non_exhaustive()
    }
}

impl<A: NdFloat> Sequential<A> {
    /// An empty net: the identity followed by softmax-with-loss.
    pub fn new() -> Self {
        Sequential {
            layers: Vec::new(),
            last_layer: SoftmaxWithLoss::new(),
            weight_decay: 0.0,
            input_shape: None,
            position: BatchPosition::default(),
        }
    }

    /// Makes the net take examples of `shape` (such as `(C, H, W)` for a convolutional net):
    /// flat batches `(N, C·H·W)` are reshaped to `(N, C, H, W)` on entry.
    pub fn set_input_shape(&mut self, shape: &[usize]) -> &mut Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// The shape one example has on entry, for nets that take images.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// Rows per forward pass when evaluating many examples: 256 for dense nets, so that a
    /// pass's buffers (1 MB of inputs for 784 pixels) stay in the core's cache; 32 for nets
    /// that take images, which work image by image anyway and whose activations per example
    /// are larger: as fast as 128 rows and 45 MB lighter for a DeepConvNet (BENCHMARKS.md).
    pub fn eval_rows(&self) -> usize {
        if self.input_shape.is_some() { 32 } else { 256 }
    }

    /// Sets the L2 weight decay `λ` (0 turns it off).
    pub fn set_weight_decay(&mut self, lambda: f64) -> &mut Self {
        self.weight_decay = lambda;
        self
    }

    /// The L2 weight decay `λ`.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    /// Appends a layer, naming it by its kind and how many of that kind came before.
    pub fn push(&mut self, mut layer: impl Layer<A> + 'static) -> &mut Self {
        let kind = layer.kind();
        let nth_of_kind = 1 + self
            .layers
            .iter()
            .filter(|entry| entry.layer.kind() == kind)
            .count();
        let last_number = self.layers.last().map_or(0, |entry| entry.number);
        let local_names: Vec<&str> = layer.params_mut().iter().map(|p| p.name).collect();
        let starts_weight_group = local_names.contains(&"W");
        let number = (last_number + usize::from(starts_weight_group)).max(1);
        let param_names = local_names
            .iter()
            .map(|name| format!("{name}{number}"))
            .collect();
        self.layers.push(Entry {
            name: format!("{kind}{nth_of_kind}"),
            layer: Box::new(layer),
            number,
            param_names,
        });
        self
    }

    /// The layer names in forward order.
    pub fn layer_names(&self) -> Vec<&str> {
        self.layers
            .iter()
            .map(|entry| entry.name.as_str())
            .collect()
    }

    /// `(inputs, outputs)`: the size of one example (the input shape's, or the rows of the
    /// first weight matrix `W`) and the columns of the last `W`; `None` when no layer has
    /// weights.
    pub fn io_widths(&mut self) -> Option<(usize, usize)> {
        let declared: Option<usize> = self.input_shape.as_ref().map(|s| s.iter().product());
        let shapes: Vec<Vec<usize>> = self
            .params_mut()
            .into_iter()
            .filter(|p| p.param.name == "W")
            .map(|p| p.param.value.shape().to_vec())
            .collect();
        let inputs = declared.or_else(|| shapes.first()?.first().copied())?;
        let outputs = *shapes.last()?.last()?;
        Some((inputs, outputs))
    }

    /// Scores (before softmax) for a batch `x` `(N, …)`: the book's `predict`.
    ///
    /// # Panics
    /// When `x` does not fit the first layer, or the last layer's output is not `(N, C)`.
    #[track_caller]
    pub fn predict(&mut self, x: ArrayViewD<'_, A>, mode: Mode) -> Array2<A> {
        self.forward_observed(x, mode, &mut |_, _| {})
    }

    /// [`predict`](Self::predict), handing each layer's index and output to `observe`.
    #[track_caller]
    fn forward_observed(
        &mut self,
        x: ArrayViewD<'_, A>,
        mode: Mode,
        observe: &mut dyn FnMut(usize, &ArrayD<A>),
    ) -> Array2<A> {
        if mode == Mode::Train {
            for entry in &mut self.layers {
                entry.layer.set_position(self.position);
            }
            // A position is one pass's: the next starts at the batch's first example.
            self.position = BatchPosition {
                pass: self.position.pass + 1,
                first_example: 0,
            };
        }
        let entry_shape = self.entry_shape(&x);
        let mut layers = self.layers.iter_mut();
        let mut h = match (layers.next(), entry_shape) {
            (None, _) => x.to_owned(),
            (Some(first), Some(shape)) => {
                let x = x
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order(shape)
                    .expect("a standard-layout copy reshapes");
                first.layer.forward(x, mode)
            }
            (Some(first), None) => first.layer.forward_input(x, mode),
        };
        observe(0, &h);
        for (i, entry) in layers.enumerate() {
            h = entry.layer.forward(h, mode);
            observe(i + 1, &h);
        }
        assert!(
            h.ndim() == 2,
            "Sequential::predict: the last layer gives shape {:?}, not (N, classes)",
            h.shape()
        );
        h.into_dimensionality::<Ix2>().expect("two axes")
    }

    /// The shape `(N, C, H, W)` a flat batch `(N, C·H·W)` takes on entry to a net with an
    /// input shape; `None` when `x` enters as it is.
    fn entry_shape(&self, x: &ArrayViewD<'_, A>) -> Option<Vec<usize>> {
        let shape = self.input_shape.as_ref()?;
        (x.ndim() == 2 && x.shape()[1] == shape.iter().product::<usize>()).then(|| {
            let mut full = vec![x.shape()[0]];
            full.extend(shape);
            full
        })
    }

    /// Each layer's output for the batch `x`, in forward order.
    ///
    /// # Panics
    /// As [`predict`](Self::predict).
    #[track_caller]
    pub fn activations(&mut self, x: ArrayViewD<'_, A>, mode: Mode) -> Vec<ArrayD<A>> {
        let mut outputs = Vec::with_capacity(self.layers.len());
        self.forward_observed(x, mode, &mut |_, h| outputs.push(h.clone()));
        outputs
    }

    /// The mean loss of the batch: `predict` then softmax-with-loss, plus `½λ Σₖ ‖Wₖ‖²` with
    /// weight decay.
    pub fn loss(&mut self, x: ArrayViewD<'_, A>, t: &Targets<A>, mode: Mode) -> A {
        let loss = self.data_loss(x, t, mode);
        loss + self.decay_loss()
    }

    /// The mean loss of softmax-with-loss alone, without weight decay's term.
    fn data_loss(&mut self, x: ArrayViewD<'_, A>, t: &Targets<A>, mode: Mode) -> A {
        let scores = self.predict(x, mode);
        self.last_layer.forward(scores, t)
    }

    /// Weight decay's `½λ Σₖ ‖Wₖ‖²` (0 without).
    pub(crate) fn decay_loss(&mut self) -> A {
        if self.weight_decay == 0.0 {
            return A::zero();
        }
        let mut squares = A::zero();
        self.visit_params(&mut |p| {
            if p.param.name == "W" {
                squares += p.param.value.iter().fold(A::zero(), |s, &w| s + w * w);
            }
        });
        self.decay() * A::from(0.5).expect("½ fits") * squares
    }

    /// `λ` in the float type.
    fn decay(&self) -> A {
        A::from(self.weight_decay).expect("a weight decay fits the float type")
    }

    /// The fraction of examples whose highest score is the target class (inference mode).
    pub fn accuracy(&mut self, x: ArrayViewD<'_, A>, t: &Targets<A>) -> f64 {
        let scores = self.predict(x, Mode::Eval);
        let correct = scores
            .rows()
            .into_iter()
            .enumerate()
            .filter(|(n, row)| argmax(row.iter().copied()) == t.class(*n))
            .count();
        correct as f64 / t.len().max(1) as f64
    }

    /// Backpropagation (§5.7.2): the forward pass in training mode, then `dout = 1` through
    /// the loss layer and every layer in **reverse** order. Leaves each parameter's gradient
    /// in its layer (see [`params_mut`](Self::params_mut)) and returns the loss. The first
    /// layer is asked for its parameter gradients only: the data needs no gradient.
    pub fn gradient(&mut self, x: ArrayViewD<'_, A>, t: &Targets<A>) -> A {
        let loss = self.data_gradient(x, t);
        self.add_decay_gradient();
        loss + self.decay_loss()
    }

    /// [`gradient`](Self::gradient) without weight decay: the mean loss of the examples `x`
    /// and its gradients.
    pub(crate) fn data_gradient(&mut self, x: ArrayViewD<'_, A>, t: &Targets<A>) -> A {
        let loss = self.data_loss(x, t, Mode::Train);
        let mut dout = self.last_layer.backward(A::one()).into_dyn();
        if let Some((first, rest)) = self.layers.split_first_mut() {
            for entry in rest.iter_mut().rev() {
                dout = entry.layer.backward(dout);
            }
            // Nothing needs ∂L/∂x of the data.
            first.layer.backward_params_only(dout);
        }
        loss
    }

    /// `∂yₙ,c/∂xₙ`, the gradient of each example's score for class `c = classes[n]` with
    /// respect to its input, by backpropagation from `dout = 1` at that score (a saliency map:
    /// which pixels would raise the class most). `None` for a net with batch norm or dropout,
    /// whose backward pass follows the training-mode forward pass, which is not their
    /// inference. Leaves this pass's parameter gradients in the layers.
    ///
    /// # Panics
    /// When `x` does not fit the net, or a class is out of range.
    #[track_caller]
    pub fn score_gradient(&mut self, x: ArrayViewD<'_, A>, classes: &[usize]) -> Option<ArrayD<A>> {
        if self
            .layers
            .iter()
            .any(|e| matches!(e.layer.kind(), "BatchNorm" | "Dropout"))
        {
            return None;
        }
        // Without batch norm and dropout a training-mode pass computes the inference, and
        // keeps what backward needs; it counts no training pass.
        let (position, shape) = (self.position, x.shape().to_vec());
        let scores = self.predict(x, Mode::Train);
        self.position = position;
        let mut dout = Array2::zeros(scores.raw_dim());
        for (mut row, &class) in dout.rows_mut().into_iter().zip(classes) {
            row[class] = A::one();
        }
        let mut dout = dout.into_dyn();
        for entry in self.layers.iter_mut().rev() {
            dout = entry.layer.backward(dout);
        }
        Some(
            dout.into_shape_with_order(shape)
                .expect("∂y/∂x has as many elements as x"),
        )
    }

    /// Adds weight decay's `λWₖ` to each `∂L/∂Wₖ`.
    pub(crate) fn add_decay_gradient(&mut self) {
        if self.weight_decay != 0.0 {
            let lambda = self.decay();
            self.visit_params(&mut |p| {
                if p.param.name == "W" {
                    let Param {
                        value, mut grad, ..
                    } = p.param;
                    Zip::from(&mut grad)
                        .and(&value)
                        .for_each(|g, &w| *g += lambda * w);
                }
            });
        }
    }

    /// Hands every parameter with its gradient, named as in the book, to `visit`, in forward
    /// order, allocating nothing (see [`Optimizer::step`](crate::optim::Optimizer::step)).
    pub fn visit_params<'a>(&'a mut self, visit: &mut dyn FnMut(NamedParam<'a, A>)) {
        for entry in &mut self.layers {
            let mut names = entry.param_names.iter();
            entry.layer.visit_params(&mut |param| {
                let name = names
                    .next()
                    .expect("a layer visits the parameters it had when pushed");
                visit(NamedParam { name, param });
            });
        }
    }

    /// Every parameter with its gradient, named as in the book, in forward order.
    pub fn params_mut(&mut self) -> Vec<NamedParam<'_, A>> {
        let mut params = Vec::new();
        self.visit_params(&mut |p| params.push(p));
        params
    }

    /// Hands every buffer to `visit`, in forward order, allocating nothing.
    pub(crate) fn visit_buffers<'a>(&'a mut self, visit: &mut dyn FnMut(ArrayViewMutD<'a, A>)) {
        for entry in &mut self.layers {
            entry.layer.visit_buffers(&mut |b| visit(b.value));
        }
    }

    /// Every buffer (non-trainable state such as batch norm's running mean), numbered like
    /// the parameters (`running_mean1`), in forward order.
    pub fn buffers_mut(&mut self) -> Vec<(String, ArrayViewMutD<'_, A>)> {
        self.layers
            .iter_mut()
            .flat_map(|entry| {
                let number = entry.number;
                entry
                    .layer
                    .buffers_mut()
                    .into_iter()
                    .map(move |b| (format!("{}{number}", b.name), b.value))
            })
            .collect()
    }

    /// The generators of the layers that draw random numbers (dropout), in forward order.
    pub fn rngs(&mut self) -> Vec<ChaCha8Rng> {
        self.layers
            .iter_mut()
            .filter_map(|entry| entry.layer.rng_mut().map(|r| r.clone()))
            .collect()
    }

    /// Restores generators saved by [`rngs`](Self::rngs), so that the next passes draw as
    /// they did then. Returns `false`, changing nothing, when the count does not match.
    pub fn set_rngs(&mut self, rngs: &[ChaCha8Rng]) -> bool {
        let mut mine: Vec<&mut ChaCha8Rng> = self
            .layers
            .iter_mut()
            .filter_map(|entry| entry.layer.rng_mut())
            .collect();
        if mine.len() != rngs.len() {
            return false;
        }
        for (rng, saved) in mine.iter_mut().zip(rngs) {
            rng.clone_from(saved);
        }
        true
    }

    /// Training passes so far: the pass number dropout keys its masks by.
    pub fn training_passes(&self) -> u64 {
        self.position.pass
    }

    /// Sets the training passes so far, so that the next pass draws the masks it drew then
    /// (a checkpoint's resume; a gradient check that holds the masks fixed).
    pub fn set_training_passes(&mut self, passes: u64) {
        self.position.pass = passes;
    }

    /// Makes the next training pass see examples numbered from `first_example` of pass
    /// `pass` (a shard of a mini-batch).
    pub(crate) fn set_position(&mut self, position: BatchPosition) {
        self.position = position;
    }

    /// `(name, gradient)` of every parameter after [`gradient`](Self::gradient).
    pub fn grads(&mut self) -> Vec<(String, ArrayD<A>)> {
        self.params_mut()
            .into_iter()
            .map(|p| (p.name.to_string(), p.param.grad.to_owned()))
            .collect()
    }

    /// `(name, ∂L/∂param)` by central differences of [`loss`](Self::loss) (the book's
    /// `numerical_gradient`): slow, two forward passes per parameter element. See
    /// [`gradient::net_numerical_gradient`](crate::gradient::net_numerical_gradient).
    pub fn numerical_gradient(
        &mut self,
        x: ArrayViewD<'_, A>,
        t: &Targets<A>,
    ) -> Vec<(String, ArrayD<A>)> {
        crate::gradient::net_numerical_gradient(self, x, t)
    }

    /// Compares [`gradient`](Self::gradient) with
    /// [`numerical_gradient`](Self::numerical_gradient) for every parameter (§5.7.3). See
    /// [`gradient::check_net`](crate::gradient::check_net).
    pub fn gradient_check(&mut self, x: ArrayViewD<'_, A>, t: &Targets<A>) -> GradCheck {
        crate::gradient::check_net(self, x, t)
    }

    /// Each layer's name, the layer, and how many parameters it has, in forward order.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &dyn Layer<A>, usize)> {
        self.layers.iter().map(|entry| {
            (
                entry.name.as_str(),
                entry.layer.as_ref(),
                entry.param_names.len(),
            )
        })
    }
}
