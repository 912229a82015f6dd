//! Optimizers (§6.1): rules that update parameters from their gradients.
//!
//! Each optimizer receives the net's parameters with their gradients, named as in the book
//! (`W1`, `b1`, …), so per-parameter state can be keyed by name.

mod sgd;

pub use sgd::Sgd;

use ndarray::NdFloat;

use crate::net::NamedParam;

/// An update rule applied after each backward pass.
pub trait Optimizer<A: NdFloat> {
    /// Updates every parameter in place from its gradient.
    fn update(&mut self, params: Vec<NamedParam<'_, A>>);
}
