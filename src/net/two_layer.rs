//! The book's `TwoLayerNet` (§5.7.2): `Affine1 → Relu1 → Affine2 → SoftmaxWithLoss`.

use std::ops::{Deref, DerefMut};

use ndarray::NdFloat;

use super::{NetSpec, Sequential};

/// `Affine1 → Relu1 → Affine2 → SoftmaxWithLoss` with parameters `W1 (input, hidden)`,
/// `b1 (hidden)`, `W2 (hidden, output)`, `b2 (output)`.
///
/// Dereferences to [`Sequential`], which holds `predict`, `loss`, `accuracy`, `gradient` and
/// `numerical_gradient`.
///
/// ```
/// use backprop::net::TwoLayerNet;
/// let mut net = TwoLayerNet::<f64>::new(784, 50, 10, 0.01, 0);
/// let names: Vec<&str> = net.params_mut().into_iter().map(|p| p.name).collect();
/// assert_eq!(names, ["W1", "b1", "W2", "b2"]);
/// ```
#[derive(Debug)]
pub struct TwoLayerNet<A: NdFloat>(Sequential<A>);

impl<A: NdFloat> TwoLayerNet<A> {
    /// `W1 = weight_init_std · randn(input, hidden)`, `W2 = weight_init_std · randn(hidden,
    /// output)`, biases 0, drawn from a ChaCha8 RNG seeded with `seed`.
    ///
    /// # Panics
    /// When a size is zero.
    #[track_caller]
    pub fn new(
        input: usize,
        hidden: usize,
        output: usize,
        weight_init_std: f64,
        seed: u64,
    ) -> Self {
        let spec = NetSpec::new(vec![input, hidden, output])
            .unwrap_or_else(|e| panic!("TwoLayerNet::new: {e}"));
        TwoLayerNet(spec.build(weight_init_std, seed))
    }

    /// The underlying layer sequence.
    pub fn into_inner(self) -> Sequential<A> {
        self.0
    }
}

impl<A: NdFloat> Deref for TwoLayerNet<A> {
    type Target = Sequential<A>;
    fn deref(&self) -> &Sequential<A> {
        &self.0
    }
}

impl<A: NdFloat> DerefMut for TwoLayerNet<A> {
    fn deref_mut(&mut self) -> &mut Sequential<A> {
        &mut self.0
    }
}
