//! §6.4: overfitting on a small training set and two cures, weight decay and dropout (the
//! book's `overfit_weight_decay.py` and `overfit_dropout.py`).
//!
//! The book's setting: the first 300 training images, a 784-(100×6)-10 ReLU net, SGD 0.01,
//! batch 100, 201 epochs of 3 iterations, accuracy on the 300 images and the whole test set
//! every epoch. Plain, training accuracy reaches 100% while test accuracy stalls far below;
//! weight decay `λ = 0.1` and dropout (ratio 0.2) narrow the gap.

use super::{epochs_schedule, parallel_map, train_run};
use crate::data::Dataset;
use crate::error::Result;
use crate::net::{MultiLayerNet, NetSpec};
use crate::optim::{OptimizerKind, OptimizerSpec};
use crate::train::Record;

/// One variant's accuracies per epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct OverfitRun {
    /// The variant (`plain`, `weight decay 0.1`, `dropout 0.2`).
    pub name: String,
    /// The net trained.
    pub net: MultiLayerNet,
    /// One record per epoch (train and test accuracy).
    pub history: Vec<Record>,
}

/// The book's three nets: 784-(100×6)-10 ReLU (for `data`'s input size and classes) plain,
/// with weight decay `λ`, and with dropout of ratio `dropout`, named for the figure.
///
/// # Errors
/// Never for a data set with images and classes (the sizes are at least 1).
pub fn overfit_variants(
    data: &Dataset,
    lambda: f64,
    dropout: f64,
) -> Result<Vec<(String, MultiLayerNet)>> {
    let sizes = [vec![data.input_size()], vec![100; 6], vec![data.classes()]].concat();
    let base = MultiLayerNet::new(NetSpec::new(sizes)?);
    let with_decay = MultiLayerNet {
        weight_decay: lambda,
        ..base.clone()
    };
    let with_dropout = MultiLayerNet {
        dropout: Some(dropout),
        ..base.clone()
    };
    Ok(vec![
        ("plain".to_string(), base),
        (format!("weight decay {lambda}"), with_decay),
        (format!("dropout {dropout}"), with_dropout),
    ])
}

/// Trains each of `nets` with SGD 0.01, batch 100, for `epochs` epochs on `data.train`,
/// evaluating on `data.train` and `data.test` every epoch.
///
/// # Errors
/// When a net does not fit the data, the training split is smaller than a batch, or a run
/// diverges.
pub fn overfitting(
    data: &Dataset,
    nets: &[(String, MultiLayerNet)],
    epochs: usize,
    seed: u64,
) -> Result<Vec<OverfitRun>> {
    let batch = 100;
    let schedule = epochs_schedule(data.train.len(), batch, epochs);
    let sgd = OptimizerSpec::new(OptimizerKind::Sgd);
    let runs = parallel_map(
        nets,
        |_, (_, net)| train_run(net, &sgd, data, schedule, seed),
        &|_| {},
    );
    nets.iter()
        .zip(runs)
        .map(|((name, net), run)| {
            Ok(OverfitRun {
                name: name.clone(),
                net: net.clone(),
                history: run?.history,
            })
        })
        .collect()
}
