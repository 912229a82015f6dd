//! Optimizers (§6.1): rules that update parameters from their gradients.
//!
//! Each optimizer receives the net's parameters with their gradients, named as in the book
//! (`W1`, `b1`, …), so per-parameter state can be keyed by name.

mod sgd;

pub use sgd::Sgd;

use ndarray::{ArrayD, NdFloat};

use crate::error::{Error, Result};
use crate::net::NamedParam;

/// An update rule applied after each backward pass.
pub trait Optimizer<A: NdFloat> {
    /// Updates every parameter in place from its gradient.
    fn update(&mut self, params: Vec<NamedParam<'_, A>>);

    /// The optimizer's state as named tensors (for checkpoints); empty for stateless rules.
    fn state(&self) -> Vec<(String, ArrayD<A>)> {
        Vec::new()
    }

    /// Restores what [`state`](Self::state) returned.
    ///
    /// # Errors
    /// When the tensors do not belong to this optimizer.
    fn load_state(&mut self, state: Vec<(String, ArrayD<A>)>) -> Result<()> {
        match state.first() {
            None => Ok(()),
            Some((name, _)) => Err(Error::Invalid(format!(
                "optimizer state {name:?} does not belong to a stateless optimizer"
            ))),
        }
    }
}
