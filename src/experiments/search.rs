//! §6.5: random search of hyper-parameters on a validation split (the book's
//! `hyperparameter_optimization.py`).
//!
//! ```text
//! validation ← 20% of the first 500 training images (shuffled); train on the other 400
//! per trial:  λ  = 10^U(−8, −4)    weight decay
//!             η  = 10^U(−6, −2)    SGD learning rate
//!             train a 784-(100×6)-10 ReLU net for 50 epochs, batch 100
//! rank trials by final validation accuracy
//! ```
//!
//! The test set is never looked at: tuning on it would make its accuracy an overestimate.
//! Trials run in parallel on all cores; each is seeded from the search's seed and its index,
//! and the hyper-parameters of all trials are drawn up front, so the ranking is the same on
//! any number of cores.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{epochs_schedule, parallel_map, train_run};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::net::{MultiLayerNet, NetSpec};
use crate::optim::{OptimizerKind, OptimizerSpec};
use crate::train::Record;

/// What to search and how long to train each trial.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchConfig {
    /// Number of trials (the book: 100).
    pub trials: usize,
    /// Epochs per trial (the book: 50).
    pub epochs: usize,
    /// Training images used, before the validation split (the book: 500).
    pub train_size: usize,
    /// Fraction of them held out for validation (the book: 0.2).
    pub validation: f64,
    /// `log₁₀` range of the learning rate (the book: −6 to −2).
    pub log_lr: (f64, f64),
    /// `log₁₀` range of the weight decay (the book: −8 to −4).
    pub log_weight_decay: (f64, f64),
    /// Hidden layer sizes (the book: six of 100).
    pub hidden: Vec<usize>,
    /// Seeds the split, the hyper-parameters and every trial.
    pub seed: u64,
}

impl SearchConfig {
    /// The book's setting.
    pub fn book() -> Self {
        SearchConfig {
            trials: 100,
            epochs: 50,
            train_size: 500,
            validation: 0.2,
            log_lr: (-6.0, -2.0),
            log_weight_decay: (-8.0, -4.0),
            hidden: vec![100; 6],
            seed: 0,
        }
    }
}

/// One trial's hyper-parameters and results.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The trial's number, from 0, in the order the hyper-parameters were drawn.
    pub index: usize,
    /// The learning rate.
    pub lr: f64,
    /// The weight decay `λ`.
    pub weight_decay: f64,
    /// The validation accuracy after the last epoch (NaN when the run diverged).
    pub val_acc: f64,
    /// One record per epoch: `train_acc` on the training part, `test_acc` on validation.
    pub history: Vec<Record>,
}

/// Runs the search on `data`'s training split, calling `done` as each trial finishes (in
/// whatever order the cores finish them). Returns the trials, best validation accuracy first
/// (ties and diverged runs by index).
///
/// # Errors
/// When the ranges are empty or reversed, the split leaves too few images for a batch of
/// 100, or a net does not fit the data.
pub fn random_search(
    data: &Dataset,
    config: &SearchConfig,
    done: &(dyn Fn(&Trial) + Sync),
) -> Result<Vec<Trial>> {
    for (name, (lo, hi)) in [
        ("learning rate", config.log_lr),
        ("weight decay", config.log_weight_decay),
    ] {
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(Error::Invalid(format!(
                "the log10 range of the {name} ({lo}, {hi}) is not an interval low..high"
            )));
        }
    }
    let split = data
        .subset(config.train_size, 0)
        .validation_split(config.validation, config.seed)?;
    let mut sizes = vec![data.input_size()];
    sizes.extend(&config.hidden);
    sizes.push(data.classes());
    let net = MultiLayerNet::new(NetSpec::new(sizes)?);
    let schedule = epochs_schedule(split.train.len(), 100, config.epochs);

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut log_uniform = |(lo, hi): (f64, f64)| 10f64.powf(rng.random_range(lo..=hi));
    let draws: Vec<(f64, f64)> = (0..config.trials)
        .map(|_| {
            let weight_decay = log_uniform(config.log_weight_decay);
            (log_uniform(config.log_lr), weight_decay)
        })
        .collect();

    let trials = parallel_map(
        &draws,
        |index, &(lr, weight_decay)| {
            let net = MultiLayerNet {
                weight_decay,
                ..net.clone()
            };
            let sgd = OptimizerSpec::new(OptimizerKind::Sgd).with_lr(lr);
            let seed = config.seed.wrapping_add(index as u64);
            let history = match train_run(&net, &sgd, &split, schedule, seed) {
                Ok(run) => run.history,
                Err(Error::Diverged { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            Ok(Trial {
                index,
                lr,
                weight_decay,
                val_acc: history.last().map_or(f64::NAN, |r| r.test_acc),
                history,
            })
        },
        &|trial| {
            if let Ok(trial) = trial {
                done(trial);
            }
        },
    );
    let mut trials = trials.into_iter().collect::<Result<Vec<_>>>()?;
    trials.sort_by(|a, b| {
        let key = |t: &Trial| if t.val_acc.is_nan() { -1.0 } else { t.val_acc };
        key(b).total_cmp(&key(a)).then(a.index.cmp(&b.index))
    });
    Ok(trials)
}
