//! Initial weight scales (§6.2): a fixed standard deviation, or one from the layer's fan-in.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// How the standard deviation of each weight matrix `W (fan_in, fan_out)` is chosen; weights
/// are `std · randn`, biases 0.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Init {
    /// The same `std` for every layer (the book's `weight_init_std`, 0.01 in chapter 5).
    Std(f64),
    /// Xavier (Glorot): `std = √(1 / fan_in)`, for sigmoid and tanh.
    Xavier,
    /// He: `std = √(2 / fan_in)`, for ReLU.
    He,
}

impl Init {
    /// The standard deviation for a layer with `fan_in` inputs.
    pub fn std(self, fan_in: usize) -> f64 {
        match self {
            Init::Std(std) => std,
            Init::Xavier => (1.0 / fan_in.max(1) as f64).sqrt(),
            Init::He => (2.0 / fan_in.max(1) as f64).sqrt(),
        }
    }
}

impl FromStr for Init {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "he" | "relu" => Ok(Init::He),
            "xavier" | "sigmoid" => Ok(Init::Xavier),
            other => match other.parse::<f64>() {
                Ok(std) if std.is_finite() && std > 0.0 => Ok(Init::Std(std)),
                _ => Err(Error::Invalid(format!(
                    "invalid initialisation {text:?}: expected a positive standard deviation such as 0.01, or he, or xavier"
                ))),
            },
        }
    }
}

impl TryFrom<String> for Init {
    type Error = Error;

    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<Init> for String {
    fn from(init: Init) -> String {
        init.to_string()
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::Std(std) => write!(f, "{std}"),
            Init::Xavier => f.write_str("xavier"),
            Init::He => f.write_str("he"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_follow_the_fan_in() {
        assert_eq!(Init::He.std(2), 1.0);
        assert_eq!(Init::Xavier.std(4), 0.5);
        assert_eq!("0.01".parse::<Init>().unwrap().std(784), 0.01);
        assert!(
            "-1".parse::<Init>()
                .unwrap_err()
                .to_string()
                .contains("expected a positive")
        );
    }
}
