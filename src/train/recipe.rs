//! The book's recipes: which optimizer and learning rate a net trains with unless told
//! otherwise, and where a weight decay goes. `backprop train` and the chapter 7 and 8
//! examples take their defaults from here; chapter 6's experiments keep the settings of each
//! experiment in the book (the optimizers at their classes' default rates, the
//! initialisations with SGD 0.01).
//!
//! | net | optimizer | learning rate | book |
//! |---|---|---|---|
//! | fully connected | SGD | 0.1 | chapter 5's `train_neuralnet.py` |
//! | SimpleConvNet, DeepConvNet | Adam | 0.001 | `train_convnet.py` (§7.5), `train_deepnet.py` (§8.1) |
//!
//! Another optimizer takes the learning rate of the book's class (`common/optimizer.py`:
//! 0.01, or 0.001 for Adam and AdamW), SGD chapter 5's 0.1. A weight decay `λ` is the L2 term
//! `½λ‖W‖²` of the loss (§6.4.2), except with AdamW, whose decay is decoupled from the
//! gradient and belongs to the optimizer.

use crate::net::ModelKind;
use crate::optim::{OptimizerKind, OptimizerSpec};

/// How a net is trained: the update rule with its hyper-parameters, and the L2 weight decay
/// of the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recipe {
    /// The update rule; AdamW's decoupled decay is its `weight_decay`.
    pub optimizer: OptimizerSpec,
    /// `λ` of the loss's `½λ Σ‖W‖²` (0: none), for the net.
    pub l2: f64,
}

impl Recipe {
    /// The book's recipe for a net of `kind`: SGD at 0.1 for fully connected nets, Adam at
    /// 0.001 for the convolutional ones; no weight decay.
    pub fn book(kind: ModelKind) -> Self {
        let optimizer = match kind {
            ModelKind::Mlp => OptimizerKind::Sgd,
            ModelKind::SimpleConv | ModelKind::DeepConv => OptimizerKind::Adam,
        };
        Recipe {
            optimizer: at_default_lr(optimizer),
            l2: 0.0,
        }
    }

    /// The same with another update rule, at its default learning rate (SGD 0.1, as in
    /// chapter 5; the others their book class's) and default hyper-parameters.
    pub fn with_optimizer(self, kind: OptimizerKind) -> Self {
        Recipe {
            optimizer: at_default_lr(kind),
            ..self
        }
    }

    /// The same with learning rate `lr`.
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.optimizer.lr = lr;
        self
    }

    /// The same with weight decay `λ`: AdamW's decoupled decay with AdamW, the L2 term of
    /// the loss otherwise.
    pub fn with_weight_decay(mut self, lambda: f64) -> Self {
        match self.optimizer.kind {
            OptimizerKind::AdamW => self.optimizer.weight_decay = lambda,
            _ => self.l2 = lambda,
        }
        self
    }
}

/// `kind` with its default hyper-parameters, at chapter 5's 0.1 for SGD and its book class's
/// learning rate otherwise.
fn at_default_lr(kind: OptimizerKind) -> OptimizerSpec {
    let lr = match kind {
        OptimizerKind::Sgd => 0.1,
        other => other.default_lr(),
    };
    OptimizerSpec::new(kind).with_lr(lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_books_defaults_and_where_weight_decay_goes() {
        let mlp = Recipe::book(ModelKind::Mlp);
        assert_eq!(
            (mlp.optimizer.kind, mlp.optimizer.lr),
            (OptimizerKind::Sgd, 0.1)
        );
        let conv = Recipe::book(ModelKind::DeepConv);
        assert_eq!(
            (conv.optimizer.kind, conv.optimizer.lr),
            (OptimizerKind::Adam, 0.001)
        );
        let momentum = mlp
            .with_optimizer(OptimizerKind::Momentum)
            .with_weight_decay(0.1);
        assert_eq!((momentum.optimizer.lr, momentum.l2), (0.01, 0.1));
        let adamw = mlp.with_optimizer(OptimizerKind::AdamW);
        assert_eq!(adamw.optimizer.weight_decay, 0.01, "AdamW's own default");
        let adamw = adamw.with_weight_decay(0.3);
        assert_eq!((adamw.optimizer.weight_decay, adamw.l2), (0.3, 0.0));
    }
}
