//! What kind of net a model is: a fully connected [`MultiLayerNet`] or one of the book's
//! convolutional nets. Model files and checkpoints record it, so a net can be rebuilt to
//! load its weights.

use std::fmt;

use ndarray::NdFloat;

use super::{DeepConvNet, MultiLayerNet, Sequential, SimpleConvNet};
use crate::error::Result;

/// A net's architecture, buildable from a seed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum Architecture {
    /// A fully connected net (chapters 5–6).
    Mlp(MultiLayerNet),
    /// The book's `SimpleConvNet` (§7.5).
    SimpleConv(SimpleConvNet),
    /// The book's `DeepConvNet` (§8.1).
    DeepConv(DeepConvNet),
}

impl Architecture {
    /// The `--model` name: `mlp`, `simple-conv`, `deep-conv`.
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Mlp(_) => "mlp",
            Architecture::SimpleConv(_) => "simple-conv",
            Architecture::DeepConv(_) => "deep-conv",
        }
    }

    /// Builds the net with weights drawn from `seed`.
    ///
    /// # Errors
    /// When the architecture's options are invalid or its layers do not fit its input.
    pub fn build<A: NdFloat>(&self, seed: u64) -> Result<Sequential<A>> {
        match self {
            Architecture::Mlp(net) => {
                net.validate()?;
                Ok(net.build(seed))
            }
            Architecture::SimpleConv(net) => net.build(seed),
            Architecture::DeepConv(net) => net.build(seed),
        }
    }

    /// Values per example, `C·H·W` or the first layer size.
    pub fn inputs(&self) -> usize {
        match self {
            Architecture::Mlp(net) => net.sizes.inputs(),
            Architecture::SimpleConv(SimpleConvNet { input, .. })
            | Architecture::DeepConv(DeepConvNet { input, .. }) => input.0 * input.1 * input.2,
        }
    }

    /// Number of classes.
    pub fn outputs(&self) -> usize {
        match self {
            Architecture::Mlp(net) => net.sizes.outputs(),
            Architecture::SimpleConv(net) => net.classes,
            Architecture::DeepConv(net) => net.classes,
        }
    }

    /// The layers without how they were initialised or trained, for messages about files.
    pub fn layout(&self) -> String {
        match self {
            Architecture::Mlp(net) => net.layout(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Architecture::Mlp(net) => net.fmt(f),
            Architecture::SimpleConv(net) => net.fmt(f),
            Architecture::DeepConv(net) => net.fmt(f),
        }
    }
}
