//! A batch through the net node by node, as §5.7's graph: what each layer received and gave
//! on the way forward, and the derivative that arrived at it and left it on the way back.
//! What the lab draws (`backprop serve`); [`Sequential::gradient`] computes the same without
//! keeping any of it.

use ndarray::{Array2, ArrayD, ArrayViewD, NdFloat};

use super::Sequential;
use crate::Error;
use crate::functions::Targets;
use crate::layers::Mode;

/// One layer's part in a [`Trace`].
#[derive(Debug, Clone)]
pub struct LayerTrace<A> {
    /// The layer's name in the net (`Affine1`).
    pub name: String,
    /// Its kind, as the book names it (`Affine`).
    pub kind: &'static str,
    /// Forward: its input `x`.
    pub x: ArrayD<A>,
    /// Forward: its output `y`.
    pub y: ArrayD<A>,
    /// Backward: `∂L/∂y`, arriving from the layer after it (or the loss).
    pub dout: ArrayD<A>,
    /// Backward: `∂L/∂x`, leaving towards the layer before it (for the first, the input's).
    pub dx: ArrayD<A>,
    /// Which branch each unit took, for piecewise-linear layers (ReLU's mask `x > 0`, max
    /// pooling's maxima).
    pub branches: Option<ArrayD<bool>>,
    /// `(name, value, ∂L/∂value)` of each of its parameters (`W1`, `b1`).
    pub params: Vec<(String, ArrayD<A>, ArrayD<A>)>,
}

/// The forward and backward pass of [`Sequential::trace`].
#[derive(Debug, Clone)]
pub struct Trace<A> {
    /// The layers in forward order.
    pub layers: Vec<LayerTrace<A>>,
    /// Softmax-with-Loss's input: the scores `a` `(N, C)`.
    pub scores: Array2<A>,
    /// Its `y = softmax(a)`.
    pub probabilities: Array2<A>,
    /// Its `L`, the mean cross-entropy error (without weight decay's term).
    pub loss: A,
    /// Its `∂L/∂a = (y − t)/N`, the first derivative of the backward pass.
    pub dscores: Array2<A>,
}

impl<A: NdFloat> Sequential<A> {
    /// Backpropagation as [`gradient`](Self::gradient) computes it (training mode, without
    /// weight decay's term), keeping every layer's input, output and derivatives. Counts no
    /// training pass: dropout draws the masks the next training pass will draw. Leaves the
    /// parameter gradients in the layers.
    ///
    /// # Errors
    /// For a net with batch norm and a batch of one example, whose training-mode
    /// normalisation maps every value to 0.
    ///
    /// # Panics
    /// When `x` does not fit the net or a target is out of range.
    #[track_caller]
    pub fn trace(&mut self, x: ArrayViewD<'_, A>, t: &Targets<A>) -> Result<Trace<A>, Error> {
        if x.shape()[0] == 1 && self.layers.iter().any(|e| e.layer.kind() == "BatchNorm") {
            return Err(Error::Invalid(
                "batch norm normalises a batch of one example to 0 in training mode; trace a batch of several, or a net without batch norm".into(),
            ));
        }
        let position = self.position;
        let input = match self.entry_shape(&x) {
            Some(shape) => x
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order(shape)
                .expect("a standard-layout copy reshapes"),
            None => x.to_owned(),
        };
        let mut outputs = Vec::with_capacity(self.layers.len());
        let scores = self.forward_observed(x, Mode::Train, &mut |_, h| outputs.push(h.clone()));
        self.position = position;
        let loss = self.last_layer.forward(scores.clone(), t);
        let probabilities = self
            .last_layer
            .probabilities()
            .expect("a forward pass caches y")
            .clone();
        let dscores = self.last_layer.backward(A::one());

        // Backward, keeping what arrives at each layer and what leaves it.
        let mut dout = dscores.clone().into_dyn();
        let mut derivatives = Vec::with_capacity(self.layers.len());
        for entry in self.layers.iter_mut().rev() {
            let dx = entry.layer.backward(dout.clone());
            derivatives.push((dout, dx.clone()));
            dout = dx;
        }
        derivatives.reverse();

        // Each layer's input is the output of the one before: the first's is the data.
        let before_last = outputs.len().saturating_sub(1);
        let inputs: Vec<ArrayD<A>> = std::iter::once(input)
            .chain(outputs[..before_last].iter().cloned())
            .collect();
        let layers = self
            .layers
            .iter_mut()
            .zip(inputs.into_iter().zip(outputs))
            .zip(derivatives)
            .map(|((entry, (x, y)), (dout, dx))| {
                let mut params = Vec::new();
                let mut names = entry.param_names.iter();
                entry.layer.visit_params(&mut |p| {
                    let name = names.next().map_or(p.name, String::as_str);
                    params.push((name.to_string(), p.value.to_owned(), p.grad.to_owned()));
                });
                LayerTrace {
                    name: entry.name.clone(),
                    kind: entry.layer.kind(),
                    x,
                    y,
                    dout,
                    dx,
                    branches: entry.layer.branches(),
                    params,
                }
            })
            .collect();
        Ok(Trace {
            layers,
            scores,
            probabilities,
            loss,
            dscores,
        })
    }
}
