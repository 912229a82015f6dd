//! What kind of net a model is: a fully connected [`MultiLayerNet`] or one of the book's
//! convolutional nets. Model files and checkpoints record it, so a net can be rebuilt to
//! load its weights.

use std::fmt;

use ndarray::NdFloat;

use super::{DeepConvNet, MultiLayerNet, Sequential, SimpleConvNet};
use crate::error::{Error, Result};

/// The most parameters a net may have (2²⁸, 1 GiB of `f32`): a spec asking for more is
/// refused before anything is allocated.
pub const MAX_PARAMS: usize = 1 << 28;

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

/// The kinds of net the crate builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A fully connected net (chapters 5–6).
    Mlp,
    /// The book's `SimpleConvNet` (§7.5).
    SimpleConv,
    /// The book's `DeepConvNet` (§8.1).
    DeepConv,
}

impl Architecture {
    /// Which kind of net this is.
    pub fn kind(&self) -> ModelKind {
        match self {
            Architecture::Mlp(_) => ModelKind::Mlp,
            Architecture::SimpleConv(_) => ModelKind::SimpleConv,
            Architecture::DeepConv(_) => ModelKind::DeepConv,
        }
    }

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
    /// When the architecture's options are invalid, its layers do not fit its input, or it
    /// has more than [`MAX_PARAMS`] parameters (checked before anything is allocated).
    pub fn build<A: NdFloat>(&self, seed: u64) -> Result<Sequential<A>> {
        match self.param_count() {
            Some(n) if n <= MAX_PARAMS => {}
            Some(n) => {
                return Err(Error::Invalid(format!(
                    "net {} has {n} parameters, more than the {MAX_PARAMS} this crate builds \
                     (training keeps several copies of them in memory); choose smaller layers",
                    self.layout(),
                )));
            }
            None => {
                return Err(Error::Invalid(format!(
                    "net {}: its layers do not fit its input, or it has more than 2^64 parameters",
                    self.layout(),
                )));
            }
        }
        match self {
            Architecture::Mlp(net) => {
                net.validate()?;
                Ok(net.build(seed))
            }
            Architecture::SimpleConv(net) => net.build(seed),
            Architecture::DeepConv(net) => net.build(seed),
        }
    }

    /// How many parameter and buffer values the built net holds, computed from the sizes
    /// alone, without allocating: `None` when that number overflows or the layers do not fit
    /// the input. A model loader compares it with what a file holds before it builds anything,
    /// so that metadata claiming a huge net cannot make it allocate.
    pub fn param_count(&self) -> Option<usize> {
        let affine = |i: usize, o: usize| i.checked_mul(o)?.checked_add(o);
        let conv = |fn_: usize, c: usize, k: usize| {
            fn_.checked_mul(c)?
                .checked_mul(k.checked_mul(k)?)?
                .checked_add(fn_)
        };
        let side = |size: usize, window: usize, stride: usize, pad: usize| {
            crate::layers::Window {
                height: window,
                width: window,
                stride,
                pad,
            }
            .output_size((size, size))
            .map(|(o, _)| o)
        };
        let sum = |parts: &[Option<usize>]| {
            parts
                .iter()
                .try_fold(0usize, |total, part| total.checked_add((*part)?))
        };
        match self {
            Architecture::Mlp(net) => {
                let sizes = net.sizes.sizes();
                let mut parts: Vec<Option<usize>> =
                    sizes.windows(2).map(|p| affine(p[0], p[1])).collect();
                if net.batch_norm {
                    // γ, β, running mean and variance per hidden unit.
                    parts.extend(sizes[1..sizes.len() - 1].iter().map(|&h| h.checked_mul(4)));
                }
                sum(&parts)
            }
            Architecture::SimpleConv(net) => {
                let (c, h, w) = net.input;
                let conv_side = |size| {
                    side(size, net.filter_size, net.stride, net.pad).and_then(|o| side(o, 2, 2, 0))
                };
                let pooled = net
                    .filters
                    .checked_mul(conv_side(h)?)?
                    .checked_mul(conv_side(w)?)?;
                sum(&[
                    conv(net.filters, c, net.filter_size),
                    affine(pooled, net.hidden),
                    affine(net.hidden, net.classes),
                ])
            }
            Architecture::DeepConv(net) => {
                let (c, h, w) = net.input;
                // Per stage: two 3×3 convolutions (the second of the middle stage padded by 2),
                // then a 2×2 pool.
                let stage =
                    |size: usize, pad: usize| side(side(side(size, 3, 1, 1)?, 3, 1, pad)?, 2, 2, 0);
                let (mut oh, mut ow) = (h, w);
                for pad in [1, 2, 1] {
                    (oh, ow) = (stage(oh, pad)?, stage(ow, pad)?);
                }
                sum(&[
                    conv(16, c, 3),
                    conv(16, 16, 3),
                    conv(32, 16, 3),
                    conv(32, 32, 3),
                    conv(64, 32, 3),
                    conv(64, 64, 3),
                    affine(64usize.checked_mul(oh)?.checked_mul(ow)?, net.hidden),
                    affine(net.hidden, net.classes),
                ])
            }
        }
    }

    /// Values per example, `C·H·W` or the first layer size.
    pub fn inputs(&self) -> usize {
        match self {
            Architecture::Mlp(net) => net.sizes.inputs(),
            Architecture::SimpleConv(SimpleConvNet { input, .. })
            | Architecture::DeepConv(DeepConvNet { input, .. }) => {
                input.0.saturating_mul(input.1).saturating_mul(input.2)
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Init, NetSpec};

    #[test]
    fn a_net_too_large_to_build_is_refused_before_allocating() {
        let huge = Architecture::Mlp(MultiLayerNet::new("784-1000000-1000-10".parse().unwrap()));
        assert_eq!(
            huge.build::<f32>(0).unwrap_err().to_string(),
            "net 784-1000000-1000-10 has 1785011010 parameters, more than the 268435456 \
             this crate builds (training keeps several copies of them in memory); choose smaller layers"
        );
        let overflowing = Architecture::SimpleConv(SimpleConvNet {
            filters: usize::MAX / 2,
            ..SimpleConvNet::new((1, 28, 28), 10)
        });
        assert!(
            overflowing
                .build::<f32>(0)
                .unwrap_err()
                .to_string()
                .ends_with("its layers do not fit its input, or it has more than 2^64 parameters")
        );
    }

    #[test]
    fn param_count_matches_the_built_net() {
        let mlp = |spec: &str, batch_norm| {
            Architecture::Mlp(MultiLayerNet {
                batch_norm,
                dropout: Some(0.5),
                ..MultiLayerNet::new(spec.parse::<NetSpec>().unwrap())
            })
        };
        for arch in [
            mlp("784-50-10", false),
            mlp("20-7-6-3", true),
            Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10)),
            Architecture::SimpleConv(SimpleConvNet {
                pad: 2,
                stride: 2,
                init: Init::He,
                ..SimpleConvNet::new((3, 17, 23), 4)
            }),
            Architecture::DeepConv(DeepConvNet::new((1, 28, 28), 10)),
            Architecture::DeepConv(DeepConvNet::new((2, 33, 40), 7)),
        ] {
            let mut net = arch.build::<f32>(0).unwrap();
            let params: usize = net.params_mut().iter().map(|p| p.param.value.len()).sum();
            let buffers: usize = net.buffers_mut().iter().map(|(_, b)| b.len()).sum();
            assert_eq!(arch.param_count(), Some(params + buffers), "{arch}");
        }
        let huge = mlp("784-100000000000-10", false);
        assert!(huge.param_count().unwrap() > 1 << 36);
        let overflow = mlp("18446744073709551615-18446744073709551615", false);
        assert_eq!(overflow.param_count(), None);
    }
}
