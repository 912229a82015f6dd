//! Optimizers by name with their hyper-parameters, as `--optimizer adam --lr 0.001` gives them.

use std::fmt;
use std::str::FromStr;

use ndarray::NdFloat;

use super::{AdaGrad, Adam, AdamW, Momentum, Nesterov, Optimizer, RmsProp, Sgd};
use crate::error::{Error, Result};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// [`Sgd`].
    Sgd,
    /// [`Momentum`].
    Momentum,
    /// [`Nesterov`].
    Nesterov,
    /// [`AdaGrad`].
    AdaGrad,
    /// [`RmsProp`].
    RmsProp,
    /// [`Adam`].
    Adam,
    /// [`AdamW`].
    AdamW,
}

impl OptimizerKind {
    /// Every kind, in the book's order.
    pub const ALL: [OptimizerKind; 7] = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
        OptimizerKind::AdaGrad,
        OptimizerKind::RmsProp,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];

    /// The lowercase name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::AdaGrad => "adagrad",
            OptimizerKind::RmsProp => "rmsprop",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// The book's name (`SGD`, `AdaGrad`, …), for figures and tables.
    pub fn title(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Momentum => "Momentum",
            OptimizerKind::Nesterov => "Nesterov",
            OptimizerKind::AdaGrad => "AdaGrad",
            OptimizerKind::RmsProp => "RMSprop",
            OptimizerKind::Adam => "Adam",
            OptimizerKind::AdamW => "AdamW",
        }
    }

    /// The default learning rate of the book's class (`common/optimizer.py`): 0.001 for Adam
    /// (and AdamW), 0.01 for the others.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Adam | OptimizerKind::AdamW => 0.001,
            _ => 0.01,
        }
    }
}

impl FromStr for OptimizerKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let lower = text.to_ascii_lowercase();
        OptimizerKind::ALL
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| {
                let names: Vec<&str> = OptimizerKind::ALL.iter().map(|k| k.name()).collect();
                Error::Invalid(format!(
                    "unknown optimizer {text:?}: expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An optimizer and every hyper-parameter any of them takes; each uses those it needs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerSpec {
    /// The update rule.
    pub kind: OptimizerKind,
    /// The learning rate `η`.
    pub lr: f64,
    /// `α` of Momentum and Nesterov (0.9).
    pub momentum: f64,
    /// `ρ` of RMSprop (0.99).
    pub decay_rate: f64,
    /// `β₁` of Adam and AdamW (0.9).
    pub beta1: f64,
    /// `β₂` of Adam and AdamW (0.999).
    pub beta2: f64,
    /// The decoupled `λ` of AdamW (0.01). The L2 weight decay of §6.4.2 belongs to the net.
    pub weight_decay: f64,
}

impl OptimizerSpec {
    /// `kind` with the book's defaults.
    pub fn new(kind: OptimizerKind) -> Self {
        OptimizerSpec {
            kind,
            lr: kind.default_lr(),
            momentum: 0.9,
            decay_rate: 0.99,
            beta1: 0.9,
            beta2: 0.999,
            weight_decay: 0.01,
        }
    }

    /// The same with learning rate `lr`.
    pub fn with_lr(self, lr: f64) -> Self {
        OptimizerSpec { lr, ..self }
    }

    /// Checks that every hyper-parameter is in range.
    ///
    /// # Errors
    /// Naming the first that is not.
    pub fn validate(&self) -> Result<()> {
        let fraction = |name: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::Invalid(format!(
                    "{name} {v} is not in [0, 1) (a decay rate)"
                )))
            }
        };
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::Invalid(format!(
                "learning rate {} is not a positive number",
                self.lr
            )));
        }
        fraction("momentum", self.momentum)?;
        fraction("decay rate", self.decay_rate)?;
        fraction("beta1", self.beta1)?;
        fraction("beta2", self.beta2)?;
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::Invalid(format!(
                "weight decay {} is not zero or positive",
                self.weight_decay
            )));
        }
        Ok(())
    }

    /// A fresh optimizer (no state yet).
    pub fn build<A: NdFloat>(&self) -> Box<dyn Optimizer<A>> {
        match self.kind {
            OptimizerKind::Sgd => Box::new(Sgd::new(self.lr)),
            OptimizerKind::Momentum => Box::new(Momentum::new(self.lr, self.momentum)),
            OptimizerKind::Nesterov => Box::new(Nesterov::new(self.lr, self.momentum)),
            OptimizerKind::AdaGrad => Box::new(AdaGrad::new(self.lr)),
            OptimizerKind::RmsProp => Box::new(RmsProp::new(self.lr, self.decay_rate)),
            OptimizerKind::Adam => Box::new(Adam::new(self.lr, self.beta1, self.beta2)),
            OptimizerKind::AdamW => Box::new(AdamW::new(
                self.lr,
                self.beta1,
                self.beta2,
                self.weight_decay,
            )),
        }
    }
}

impl fmt::Display for OptimizerSpec {
    /// `SGD lr 0.1`, `Adam lr 0.001 β₁ 0.9 β₂ 0.999`, …: the hyper-parameters that apply.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lr {}", self.kind.title(), self.lr)?;
        match self.kind {
            OptimizerKind::Sgd | OptimizerKind::AdaGrad => Ok(()),
            OptimizerKind::Momentum | OptimizerKind::Nesterov => {
                write!(f, " momentum {}", self.momentum)
            }
            OptimizerKind::RmsProp => write!(f, " decay rate {}", self.decay_rate),
            OptimizerKind::Adam => write!(f, " β₁ {} β₂ {}", self.beta1, self.beta2),
            OptimizerKind::AdamW => write!(
                f,
                " β₁ {} β₂ {} weight decay {}",
                self.beta1, self.beta2, self.weight_decay
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_bad_ones_list_the_choices() {
        assert_eq!(
            "Adam".parse::<OptimizerKind>().unwrap(),
            OptimizerKind::Adam
        );
        assert_eq!(
            "sgdd".parse::<OptimizerKind>().unwrap_err().to_string(),
            "unknown optimizer \"sgdd\": expected one of sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw"
        );
        let bad = OptimizerSpec {
            beta2: 1.0,
            ..OptimizerSpec::new(OptimizerKind::Adam)
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "beta2 1 is not in [0, 1) (a decay rate)"
        );
    }
}
