//! The work of a net: the multiply-adds of its products per example, which sets how many
//! shards a batch is cut into by default ([`Shards::default_count`](super::Shards)) and the
//! floor of a benchmark cell.

use ndarray::NdFloat;

use super::Sequential;
use crate::layers::{Affine, Convolution, Pooling};

/// Multiply-adds of a net's products (Affine and Convolution) per example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProductMacs {
    /// The forward pass's.
    pub forward: f64,
    /// The first layer's `X·W`-sized product, whose `∂L/∂X` backward skips (the data needs
    /// none).
    pub first: f64,
    /// The weights these products multiply by (each `W`'s elements).
    pub weights: f64,
}

impl ProductMacs {
    /// Of `net`, following an example's `(H, W)` (its input shape's, if any) through the
    /// layers.
    pub fn of<A: NdFloat>(net: &Sequential<A>) -> Self {
        let mut size = match net.input_shape() {
            Some([.., h, w]) => (*h, *w),
            _ => (1, 1),
        };
        let (mut forward, mut first, mut all_weights) = (0.0, None, 0.0);
        for (_, layer, _) in net.layers() {
            let any = layer.as_any();
            // (multiply-adds per example, weights) of the layer's product, if it has one.
            let product = if let Some(affine) = any.downcast_ref::<Affine<A>>() {
                Some((affine.weights().len(), affine.weights().len()))
            } else if let Some(conv) = any.downcast_ref::<Convolution<A>>() {
                size = conv.window().output_size(size).unwrap_or((0, 0));
                Some((conv.filters().len() * size.0 * size.1, conv.filters().len()))
            } else {
                if let Some(pool) = any.downcast_ref::<Pooling>() {
                    size = pool.window().output_size(size).unwrap_or((0, 0));
                }
                None
            };
            if let Some((macs, weights)) = product {
                first.get_or_insert(macs as f64);
                forward += macs as f64;
                all_weights += weights as f64;
            }
        }
        ProductMacs {
            forward,
            first: first.unwrap_or(0.0),
            weights: all_weights,
        }
    }

    /// A training step's: the forward pass, then `∂L/∂W` and `∂L/∂X` of every weight layer
    /// but the first's `∂L/∂X`.
    pub fn training_step(&self) -> f64 {
        3.0 * self.forward - self.first
    }
}
