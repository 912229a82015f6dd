//! §6.3.2: training with and without batch normalisation across initial weight scales (the
//! book's `batch_norm_test.py`).
//!
//! The book's setting: the first 1,000 training images, a 784-(100×5)-10 ReLU net, SGD 0.01,
//! batch 100, 20 epochs of 10 iterations (training stops after the 20th evaluation), weight std in `logspace(0, −4, 16)`; the accuracy
//! on those 1,000 images is recorded every epoch. With batch norm the net learns at almost
//! every scale; without, only in a narrow band.

use super::{epochs_schedule, parallel_map, train_run};
use crate::data::Dataset;
use crate::error::Result;
use crate::net::{Init, MultiLayerNet, NetSpec};
use crate::optim::{OptimizerKind, OptimizerSpec};

/// The training accuracy per epoch at one weight scale, without and with batch norm.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormRun {
    /// The weight standard deviation.
    pub weight_std: f64,
    /// Training accuracy after each epoch, plain net.
    pub plain: Vec<f64>,
    /// Training accuracy after each epoch, with batch norm.
    pub batch_norm: Vec<f64>,
}

/// `n` scales from `10⁰` down to `10⁻⁴`, evenly spaced in log scale: numpy's
/// `np.logspace(0, -4, num=n)`.
pub fn weight_scales(n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![1.0],
        _ => (0..n)
            .map(|i| 10f64.powf(-4.0 * i as f64 / (n - 1) as f64))
            .collect(),
    }
}

/// Trains both nets at each scale on `data.train` (its test split is not used) for `epochs`
/// epochs of batch 100 with SGD 0.01, with `hidden` layers.
///
/// # Errors
/// When the net does not fit the data, or the training split is smaller than a batch.
pub fn compare_batch_norm(
    data: &Dataset,
    scales: &[f64],
    hidden: &[usize],
    epochs: usize,
    seed: u64,
) -> Result<Vec<BatchNormRun>> {
    let mut sizes = vec![data.input_size()];
    sizes.extend(hidden);
    sizes.push(data.classes());
    let sizes = NetSpec::new(sizes)?;
    let batch = 100;
    let schedule = epochs_schedule(data.train.len(), batch, epochs);
    let sgd = OptimizerSpec::new(OptimizerKind::Sgd);
    let jobs: Vec<(f64, bool)> = scales
        .iter()
        .flat_map(|&s| [(s, false), (s, true)])
        .collect();
    let runs = parallel_map(
        &jobs,
        |_, &(std, batch_norm)| {
            let net = MultiLayerNet {
                init: Init::Std(std),
                batch_norm,
                ..MultiLayerNet::new(sizes.clone())
            };
            // A diverged run has learned nothing: chance accuracy, as the book's NaN net shows.
            match train_run(&net, &sgd, data, schedule, seed) {
                Ok(run) => Ok(run.history.iter().map(|r| r.train_acc).collect()),
                Err(crate::Error::Diverged { .. }) => Ok(vec![f64::NAN; epochs]),
                Err(e) => Err(e),
            }
        },
        &|_| {},
    );
    let mut runs = runs.into_iter();
    scales
        .iter()
        .map(|&weight_std| {
            let plain: Result<Vec<f64>> = runs.next().expect("two runs per scale");
            let batch_norm = runs.next().expect("two runs per scale");
            Ok(BatchNormRun {
                weight_std,
                plain: plain?,
                batch_norm: batch_norm?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logspace_like_numpy() {
        // np.logspace(0, -4, num=5) = [1, 0.1, 0.01, 0.001, 0.0001]
        let s = weight_scales(5);
        for (got, want) in s.iter().zip([1.0, 0.1, 0.01, 0.001, 0.0001]) {
            assert!(
                (got - want).abs() < 1e-15 * want.max(1e-300) * 10.0,
                "{s:?}"
            );
        }
        assert_eq!(weight_scales(16).len(), 16);
    }
}
