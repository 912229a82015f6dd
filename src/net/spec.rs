//! Net specifications such as `784-100-100-10`: layer sizes from input to output, joined by
//! `-`, built as Affine → ReLU blocks with a final Affine and softmax-with-loss.

use std::fmt;
use std::str::FromStr;

use ndarray::NdFloat;

use super::{Init, MultiLayerNet, Sequential};
use crate::error::{Error, Result};

/// The layer sizes of a multi-layer perceptron, input first, classes last.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetSpec {
    sizes: Vec<usize>,
}

impl NetSpec {
    /// A spec from layer sizes.
    ///
    /// # Errors
    /// When there are fewer than two sizes or one is zero.
    pub fn new(sizes: Vec<usize>) -> Result<Self> {
        let text = sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("-");
        let invalid = |why: &str| Error::Spec {
            spec: text.clone(),
            why: format!(
                "{why}; a spec lists layer sizes from input to output, such as 784-100-10"
            ),
        };
        if sizes.len() < 2 {
            return Err(invalid("it needs at least an input and an output size"));
        }
        if sizes.contains(&0) {
            return Err(invalid("a layer size must be at least 1"));
        }
        Ok(NetSpec { sizes })
    }

    /// The book's net of chapter 5: `784-50-10`.
    pub fn book() -> Self {
        NetSpec {
            sizes: vec![784, 50, 10],
        }
    }

    /// The layer sizes, input first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The input width `D`.
    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    /// The number of classes `C`.
    pub fn outputs(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    /// Builds the net: `Affine → Relu` per hidden size, then `Affine`, all weights drawn as
    /// `weight_init_std · randn` in layer order from a ChaCha8 RNG seeded with `seed`, biases 0.
    pub fn build<A: NdFloat>(&self, weight_init_std: f64, seed: u64) -> Sequential<A> {
        self.build_with(Init::Std(weight_init_std), seed)
    }

    /// [`build`](Self::build) with each layer's weight scale chosen by `init`; see
    /// [`MultiLayerNet`] for the other options.
    pub fn build_with<A: NdFloat>(&self, init: Init, seed: u64) -> Sequential<A> {
        MultiLayerNet {
            init,
            ..MultiLayerNet::new(self.clone())
        }
        .build(seed)
    }
}

impl FromStr for NetSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let sizes = text
            .split('-')
            .map(|part| {
                part.trim().parse::<usize>().map_err(|_| Error::Spec {
                    spec: text.to_string(),
                    why: format!(
                        "{part:?} is not a layer size; a spec lists layer sizes from input to output, such as 784-100-10"
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        NetSpec::new(sizes).map_err(|e| match e {
            Error::Spec { why, .. } => Error::Spec {
                spec: text.to_string(),
                why,
            },
            other => other,
        })
    }
}

impl TryFrom<String> for NetSpec {
    type Error = Error;

    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<NetSpec> for String {
    fn from(spec: NetSpec) -> String {
        spec.to_string()
    }
}

impl fmt::Display for NetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        f.write_str(&parts.join("-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_builds_and_prints_back() {
        let spec: NetSpec = "784-100-100-10".parse().unwrap();
        assert_eq!(spec.sizes(), &[784, 100, 100, 10]);
        assert_eq!(spec.to_string(), "784-100-100-10");
        let mut net = spec.build::<f32>(0.01, 0);
        assert_eq!(
            net.layer_names(),
            ["Affine1", "Relu1", "Affine2", "Relu2", "Affine3"]
        );
        let names: Vec<&str> = net.params_mut().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["W1", "b1", "W2", "b2", "W3", "b3"]);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<NetSpec>().unwrap_err().to_string();
        assert_eq!(
            err("784-x-10"),
            "invalid net spec \"784-x-10\": \"x\" is not a layer size; a spec lists layer sizes from input to output, such as 784-100-10"
        );
        assert!(err("784").contains("needs at least an input and an output size"));
        assert!(err("784-0-10").contains("a layer size must be at least 1"));
        assert!(err("").contains("\"\" is not a layer size"));
    }
}
