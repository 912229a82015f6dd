//! §6.1.8 and §6.2.4: the same net trained side by side with different optimizers, or
//! different initial weights, on the same mini-batches; the mini-batch loss is what is
//! compared.
//!
//! The book's setting: a 784-100-100-100-100-10 ReLU net, batch 128, 2,000 iterations;
//! optimizers with the book's default learning rates (SGD, Momentum, AdaGrad 0.01, Adam
//! 0.001) and He initialisation; initialisations std 0.01, Xavier and He with SGD 0.01.

use super::{RunResult, parallel_map, train_run};
use crate::data::Dataset;
use crate::error::Result;
use crate::net::{Init, MultiLayerNet, NetSpec};
use crate::optim::{OptimizerKind, OptimizerSpec};

/// The schedule shared by every variant of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct LossRace {
    /// Hidden layer sizes (the book: four of 100).
    pub hidden: Vec<usize>,
    /// Iterations (the book: 2,000).
    pub iters: usize,
    /// Batch size (the book: 128).
    pub batch: usize,
    /// Seeds every variant's weights and the (shared) batch order.
    pub seed: u64,
}

impl LossRace {
    /// The book's setting.
    pub fn book() -> Self {
        LossRace {
            hidden: vec![100; 4],
            iters: 2_000,
            batch: 128,
            seed: 0,
        }
    }

    fn net(&self, data: &Dataset) -> Result<MultiLayerNet> {
        let mut sizes = vec![data.input_size()];
        sizes.extend(&self.hidden);
        sizes.push(data.classes());
        Ok(MultiLayerNet::new(NetSpec::new(sizes)?))
    }
}

/// The mini-batch losses of one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct LossCurve {
    /// The variant, as the book labels it (`SGD`, `Xavier`, `std=0.01`).
    pub name: String,
    /// The loss of every iteration.
    pub losses: Vec<f64>,
}

/// Trains one net per optimizer (He initialisation, the optimizers' default learning rates).
///
/// # Errors
/// When a net does not fit the data or a run diverges.
pub fn compare_optimizers(
    data: &Dataset,
    race: &LossRace,
    kinds: &[OptimizerKind],
) -> Result<Vec<LossCurve>> {
    let net = race.net(data)?;
    let variants = kinds
        .iter()
        .map(|&k| (k.title().to_string(), net.clone(), OptimizerSpec::new(k)))
        .collect();
    run(data, race, variants)
}

/// Trains one net per initialisation with SGD 0.01.
///
/// # Errors
/// As [`compare_optimizers`].
pub fn compare_inits(data: &Dataset, race: &LossRace, inits: &[Init]) -> Result<Vec<LossCurve>> {
    let net = race.net(data)?;
    let sgd = OptimizerSpec::new(OptimizerKind::Sgd);
    let variants = inits
        .iter()
        .map(|&init| {
            let name = match init {
                Init::Std(std) => format!("std={std}"),
                Init::Xavier => "Xavier".into(),
                Init::He => "He".into(),
            };
            (
                name,
                MultiLayerNet {
                    init,
                    ..net.clone()
                },
                sgd,
            )
        })
        .collect();
    run(data, race, variants)
}

fn run(
    data: &Dataset,
    race: &LossRace,
    variants: Vec<(String, MultiLayerNet, OptimizerSpec)>,
) -> Result<Vec<LossCurve>> {
    let schedule = (race.iters, race.batch, None);
    let runs = parallel_map(
        &variants,
        |_, (_, net, opt)| train_run(net, opt, data, schedule, race.seed),
        &|_| {},
    );
    variants
        .into_iter()
        .zip(runs)
        .map(|((name, _, _), run)| {
            let RunResult { losses, .. } = run?;
            Ok(LossCurve { name, losses })
        })
        .collect()
}
