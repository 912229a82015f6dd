//! The book's `MultiLayerNet` and `MultiLayerNetExtend` (§6.1–§6.4): fully connected nets of
//! any depth, with a choice of activation, initial weights, batch normalisation, dropout and
//! weight decay.
//!
//! ```text
//! per hidden size h:   Affine → [BatchNorm] → Relu | Sigmoid → [Dropout]
//! then:                Affine → SoftmaxWithLoss
//! ```
//!
//! Parameters are named as in the book: `W1 b1 gamma1 beta1 W2 b2 gamma2 beta2 … Wk bk`, and
//! batch norm's running statistics `running_mean1 running_var1 …`.

use std::fmt;
use std::str::FromStr;

use ndarray::NdFloat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Init, NetSpec, Sequential};
use crate::error::{Error, Result};
use crate::layers::{Affine, BatchNorm, Dropout, Relu, Sigmoid};

/// The hidden layers' activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// [`Relu`], paired with He initialisation.
    Relu,
    /// [`Sigmoid`], paired with Xavier initialisation.
    Sigmoid,
}

impl Activation {
    /// The lowercase name, as `--activation` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

impl FromStr for Activation {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            _ => Err(Error::Invalid(format!(
                "unknown activation {text:?}: expected relu or sigmoid"
            ))),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fully connected net from layer sizes and the chapter-6 options; the book's
/// `MultiLayerNet`, and with `batch_norm` or `dropout` its `MultiLayerNetExtend`.
///
/// ```
/// use backprop::net::{Activation, Init, MultiLayerNet};
/// let mut net = MultiLayerNet {
///     batch_norm: true,
///     ..MultiLayerNet::new("784-100-100-10".parse()?)
/// }
/// .build::<f32>(0);
/// assert_eq!(
///     net.layer_names(),
///     ["Affine1", "BatchNorm1", "Relu1", "Affine2", "BatchNorm2", "Relu2", "Affine3"]
/// );
/// let names: Vec<&str> = net.params_mut().into_iter().map(|p| p.name).collect();
/// assert_eq!(names, ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]);
/// # Ok::<(), backprop::Error>(())
/// ```
#[doc(alias = "MultiLayerNetExtend")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MultiLayerNet {
    /// Layer sizes, input first.
    pub sizes: NetSpec,
    /// The hidden layers' activation.
    pub activation: Activation,
    /// How initial weights are scaled (`weight_init_std`).
    pub init: Init,
    /// Batch normalisation after each hidden Affine (`use_batchnorm`).
    pub batch_norm: bool,
    /// Dropout with this ratio after each hidden activation (`use_dropout`, `dropout_ration`).
    pub dropout: Option<f64>,
    /// L2 weight decay `λ` (`weight_decay_lambda`).
    pub weight_decay: f64,
}

impl MultiLayerNet {
    /// The book's defaults: ReLU, He initialisation, no batch norm, no dropout, `λ = 0`.
    pub fn new(sizes: NetSpec) -> Self {
        MultiLayerNet {
            sizes,
            activation: Activation::Relu,
            init: Init::He,
            batch_norm: false,
            dropout: None,
            weight_decay: 0.0,
        }
    }

    /// Checks the options.
    ///
    /// # Errors
    /// When the dropout ratio is not in `[0, 1)` or the weight decay is negative.
    pub fn validate(&self) -> Result<()> {
        if let Some(r) = self.dropout.filter(|r| !(0.0..1.0).contains(r)) {
            return Err(Error::Invalid(format!(
                "dropout ratio {r} is not in [0, 1): it is the fraction of units dropped"
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::Invalid(format!(
                "weight decay {} is not zero or positive",
                self.weight_decay
            )));
        }
        Ok(())
    }

    /// Builds the net. Weights are `std · randn` in layer order from a ChaCha8 RNG seeded with
    /// `seed` (so a net with batch norm or dropout starts from the same weights as one
    /// without); dropout masks come from a second stream of that seed.
    ///
    /// # Panics
    /// When the options are invalid (see [`validate`](Self::validate)).
    #[track_caller]
    pub fn build<A: NdFloat>(&self, seed: u64) -> Sequential<A> {
        if let Err(e) = self.validate() {
            panic!("MultiLayerNet::build: {e}");
        }
        let mut weights = ChaCha8Rng::seed_from_u64(seed);
        let mut masks = ChaCha8Rng::seed_from_u64(seed);
        masks.set_stream(1);
        let mut net = Sequential::new();
        let sizes = self.sizes.sizes();
        let last = sizes.len() - 2;
        for (i, pair) in sizes.windows(2).enumerate() {
            let std = self.init.std(pair[0]);
            net.push(Affine::randn(pair[0], pair[1], std, &mut weights));
            if i == last {
                break;
            }
            if self.batch_norm {
                net.push(BatchNorm::new(pair[1]));
            }
            match self.activation {
                Activation::Relu => net.push(Relu::new()),
                Activation::Sigmoid => net.push(Sigmoid::new()),
            };
            if let Some(ratio) = self.dropout {
                net.push(Dropout::new(ratio, masks.random()));
            }
        }
        net.set_weight_decay(self.weight_decay);
        net
    }
}

impl MultiLayerNet {
    /// The layers, without how they were initialised or trained: `784-100-10`, plus
    /// `sigmoid`, `batch norm`, `dropout 0.2` where they apply. What a model file must match.
    pub fn layout(&self) -> String {
        let mut text = self.sizes.to_string();
        if self.activation != Activation::Relu {
            text += &format!(" {}", self.activation);
        }
        if self.batch_norm {
            text += " batch norm";
        }
        if let Some(r) = self.dropout {
            text += &format!(" dropout {r}");
        }
        text
    }
}

impl fmt::Display for MultiLayerNet {
    /// `784-100-10 relu, he init`, plus `batch norm`, `dropout 0.2`, `weight decay 0.1` when set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}, {} init", self.sizes, self.activation, self.init)?;
        if self.batch_norm {
            f.write_str(", batch norm")?;
        }
        if let Some(r) = self.dropout {
            write!(f, ", dropout {r}")?;
        }
        if self.weight_decay > 0.0 {
            write!(f, ", weight decay {}", self.weight_decay)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::Targets;
    use crate::gradient::standard_normal;

    fn check(net: &MultiLayerNet, seed: u64) {
        let mut built = net.build::<f64>(seed);
        let x = standard_normal::<f64>(&[6, net.sizes.inputs()], seed + 1);
        let t = Targets::Indices((0..6).map(|i| i % net.sizes.outputs()).collect());
        let report = built.gradient_check(x.view(), &t);
        assert!(report.kinks.is_empty(), "{net}: {:?}", report.kinks);
        report.assert_below(1e-6);
    }

    #[test]
    fn gradients_of_every_variant_match_finite_differences() {
        let base = MultiLayerNet {
            init: Init::Std(0.5),
            ..MultiLayerNet::new("5-7-6-3".parse().unwrap())
        };
        check(
            &MultiLayerNet {
                activation: Activation::Sigmoid,
                init: Init::Xavier,
                ..base.clone()
            },
            1,
        );
        check(
            &MultiLayerNet {
                activation: Activation::Sigmoid,
                batch_norm: true,
                weight_decay: 0.1,
                ..base.clone()
            },
            2,
        );
        check(
            &MultiLayerNet {
                activation: Activation::Sigmoid,
                batch_norm: true,
                dropout: Some(0.3),
                weight_decay: 0.05,
                ..base.clone()
            },
            3,
        );
    }

    #[test]
    fn weight_decay_adds_half_lambda_w_squared_to_the_loss_and_lambda_w_to_dw() {
        let spec = MultiLayerNet {
            init: Init::Std(0.3),
            ..MultiLayerNet::new("4-3".parse().unwrap())
        };
        let x = standard_normal::<f64>(&[2, 4], 5);
        let t = Targets::Indices(vec![0, 2]);
        let mut plain = spec.build::<f64>(4);
        let mut decayed = MultiLayerNet {
            weight_decay: 0.1,
            ..spec
        }
        .build::<f64>(4);
        let l0 = plain.gradient(x.view(), &t);
        let l1 = decayed.gradient(x.view(), &t);
        let w = plain.params_mut()[0].param.value.to_owned();
        let squares = w.iter().map(|v| v * v).sum::<f64>();
        assert!((l1 - l0 - 0.05 * squares).abs() < 1e-12);
        let (g0, g1) = (&plain.grads()[0].1, &decayed.grads()[0].1);
        assert!((g1 - g0 - &w * 0.1).iter().all(|d| d.abs() < 1e-12));
        // biases are not decayed
        assert_eq!(plain.grads()[1].1, decayed.grads()[1].1);
    }
}
