//! The cells of `bench/grid.json` (see its `about` and `bench/README.md`), run by backprop:
//! `backprop bench --grid bench/grid.json --cell ID`. Every implementation of the grid runs
//! the same cells and reports them in the same JSON fields; `bench/grid.py` puts them side
//! by side.

use std::path::Path;
use std::time::Instant;

use backprop::data::{Dataset, Sampling};
use backprop::net::{
    Activation, Architecture, DeepConvNet, Init, MultiLayerNet, ProductMacs, Shards, SimpleConvNet,
};
use backprop::optim::{OptimizerKind, OptimizerSpec};
use backprop::train::{Event, TrainConfig, Trainer, predictions};
use backprop::{Error, Result};

/// One cell of the grid, as `bench/grid.json` writes it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Cell {
    /// The cell's name, such as `mlp/784-300-100-10/relu/momentum/b64`.
    pub id: String,
    /// `784-…-10`, `simple-conv` or `deep-conv`.
    net: String,
    /// `relu` or `sigmoid`.
    activation: String,
    batch_norm: bool,
    /// Dropout ratio after each hidden activation, 0 for none.
    dropout: f64,
    /// `train` (ms per step) or `eval` (images per second over the test set).
    mode: String,
    /// `sgd`, `momentum` or `adam` (train cells).
    optimizer: Option<String>,
    batch: Option<usize>,
    /// Timed steps, after `warmup` untimed ones (train cells).
    iters: Option<usize>,
    warmup: Option<usize>,
}

#[derive(serde::Deserialize)]
struct Grid {
    cells: Vec<Cell>,
}

/// The cell named `id` of the grid file at `path`.
pub fn cell(path: &Path, id: &str) -> Result<Cell> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Invalid(format!(
            "cannot read the grid {}: {e}; give the grid file with --grid (bench/grid.json of the repository)",
            path.display()
        )))?;
    let grid: Grid = serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{} is not a grid of cells: {e}", path.display())))?;
    let ids: Vec<String> = grid.cells.iter().map(|c| c.id.clone()).collect();
    grid.cells.into_iter().find(|c| c.id == id).ok_or_else(|| {
        Error::Invalid(format!(
            "no cell {id:?} in {}: its cells are {}",
            path.display(),
            ids.join(", ")
        ))
    })
}

/// One repetition of a cell, in the grid's JSON fields.
#[derive(Debug, serde::Serialize)]
pub struct CellResult {
    #[serde(rename = "impl")]
    implementation: &'static str,
    cell: String,
    rep: u64,
    threads: usize,
    /// Shards per training batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    shards: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ms_per_step: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    images_per_s: Option<f64>,
    /// An eval cell's fraction of test images classified right.
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss_first: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss_last: Option<f64>,
    /// FLOPs of the products of one training step, or of the whole evaluation pass.
    flops_per_step: f64,
    kernel: String,
    /// Peak resident memory of the process so far, in MB.
    peak_rss_mb: f64,
}

impl Cell {
    fn architecture(&self) -> Result<Architecture> {
        let invalid = |what: &str| Error::Invalid(format!("cell {}: {what}", self.id));
        Ok(match self.net.as_str() {
            "simple-conv" => Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10)),
            "deep-conv" => Architecture::DeepConv(DeepConvNet::new((1, 28, 28), 10)),
            sizes => {
                let (activation, init) = match self.activation.as_str() {
                    "relu" => (Activation::Relu, Init::He),
                    "sigmoid" => (Activation::Sigmoid, Init::Xavier),
                    other => return Err(invalid(&format!("unknown activation {other:?}"))),
                };
                Architecture::Mlp(MultiLayerNet {
                    activation,
                    init,
                    batch_norm: self.batch_norm,
                    dropout: (self.dropout > 0.0).then_some(self.dropout),
                    ..MultiLayerNet::new(sizes.parse()?)
                })
            }
        })
    }

    fn optimizer(&self) -> Result<OptimizerSpec> {
        let (kind, lr) = match self.optimizer.as_deref() {
            Some("sgd") => (OptimizerKind::Sgd, 0.1),
            Some("momentum") => (OptimizerKind::Momentum, 0.01),
            Some("adam") => (OptimizerKind::Adam, 0.001),
            other => {
                return Err(Error::Invalid(format!(
                    "cell {}: optimizer {other:?} is not sgd, momentum or adam",
                    self.id
                )));
            }
        };
        Ok(OptimizerSpec::new(kind).with_lr(lr))
    }

    /// Runs repetition `rep` (also the seed) on `data`, training batches cut into `shards`
    /// (default: [`Shards::default_count`]).
    pub fn run(&self, data: &Dataset, rep: u64, shards: Option<usize>) -> Result<CellResult> {
        let mut net = self.architecture()?.build::<f32>(rep)?;
        let macs = ProductMacs::of(&net);
        let mut result = CellResult {
            implementation: "backprop",
            cell: self.id.clone(),
            rep,
            threads: backprop::machinery::parallel::threads(),
            shards: None,
            ms_per_step: None,
            images_per_s: None,
            accuracy: None,
            loss_first: None,
            loss_last: None,
            flops_per_step: 0.0,
            kernel: "faer (f32)".into(),
            peak_rss_mb: 0.0,
        };
        if self.mode == "eval" {
            // The peers' work: the share of images whose highest score is their label's.
            let accuracy = |net: &mut _| {
                let right = predictions(net, &data.test)
                    .iter()
                    .zip(&data.test.labels)
                    .filter(|&(&predicted, &label)| predicted == usize::from(label))
                    .count();
                right as f64 / data.test.len() as f64 // NaN for no images, as `evaluate`
            };
            accuracy(&mut net); // warm-up: buffers and caches
            let started = Instant::now();
            result.accuracy = Some(accuracy(&mut net));
            let images = data.test.len() as f64;
            result.images_per_s = Some(images / started.elapsed().as_secs_f64());
            result.flops_per_step = 2.0 * macs.forward * images;
        } else {
            let (batch, iters, warmup) = match (self.batch, self.iters) {
                (Some(b), Some(i)) => (b, i, self.warmup.unwrap_or(0)),
                _ => {
                    return Err(Error::Invalid(format!(
                        "cell {}: no batch or iters",
                        self.id
                    )));
                }
            };
            let shards = shards.unwrap_or_else(|| Shards::default_count(&net, batch));
            result.shards = Some(shards);
            let config = TrainConfig {
                iters: warmup + iters,
                batch,
                eval_every: None,
                sampling: Sampling::WithReplacement,
                seed: rep,
                shards,
            };
            let mut trainer = Trainer::new(net, self.optimizer()?.build(), data, config)?;
            let mut timed_from = None;
            trainer.run(|event| {
                if let Event::Step { iter, .. } = event
                    && iter + 1 == warmup
                {
                    timed_from = Some(Instant::now());
                }
            })?;
            let seconds = timed_from.map_or(f64::NAN, |t| t.elapsed().as_secs_f64());
            let losses = &trainer.losses()[warmup..];
            result.ms_per_step = Some(1e3 * seconds / iters as f64);
            result.loss_first = losses.first().copied();
            result.loss_last = losses.last().copied();
            result.flops_per_step = 2.0 * macs.training_step() * batch as f64;
        }
        result.peak_rss_mb = super::workloads::peak_rss_mb();
        Ok(result)
    }
}

/// `backprop bench --gemm-rate`: GFLOP/s of a 1024×1024·1024×1024 `f32` product on all
/// kernel threads (the best of 5), the rate against which the grid measures each cell's
/// floor.
pub fn gemm_rate() -> f64 {
    let n = 1024;
    let a = ndarray::Array2::<f32>::from_shape_fn((n, n), |(i, j)| ((i + 3 * j) % 7) as f32);
    let mut c = ndarray::Array2::<f32>::zeros((n, n));
    let mut best = f64::INFINITY;
    for _ in 0..6 {
        let started = Instant::now();
        backprop::machinery::linalg::matmul(a.view(), a.t(), c.view_mut(), false);
        best = best.min(started.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use backprop::data::Split;

    /// A split of `n` made-up 28×28 images, labels cycling through the ten classes.
    fn split(n: usize) -> Split {
        Split {
            images: ndarray::Array2::from_shape_fn((n, 784), |(i, j)| {
                ((i * 31 + j * 7) % 256) as u8
            }),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: 28,
            cols: 28,
        }
    }

    /// An eval cell times the peers' work, the share of images whose highest score is their
    /// label, and reports the very accuracy `evaluate` gives the same weights.
    #[test]
    fn an_eval_cell_reports_the_accuracy_of_evaluate() -> Result<()> {
        let grid = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/grid.json");
        let cell = cell(&grid, "eval/mlp/784-50-10/relu")?;
        let data = Dataset {
            name: "made-up".into(),
            source: "this test".into(),
            train: split(0),
            test: split(613),
            class_names: (0..10).map(|c| c.to_string()).collect(),
        };
        for rep in [0, 1] {
            let result = cell.run(&data, rep, None)?;
            let mut net = cell.architecture()?.build::<f32>(rep)?;
            let expected = backprop::train::evaluate(&mut net, &data.test, 10).accuracy;
            assert_eq!(result.accuracy, Some(expected), "rep {rep}");
            assert!(result.images_per_s.is_some_and(|v| v > 0.0));
            assert_eq!(
                result.flops_per_step,
                2.0 * (784.0 * 50.0 + 50.0 * 10.0) * 613.0
            );
        }
        Ok(())
    }
}
