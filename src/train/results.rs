//! The files a run leaves in its folder, written as one set: `metrics.csv` (a row per
//! evaluation), `curves.png` (the loss and accuracy curves) and `model.safetensors`.

use std::path::Path;

use super::{Record, Trainer};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::{ModelInfo, PIXEL_NORMALISATION, encode_model, write_together};
use crate::net::Architecture;
use crate::optim::Optimizer;

/// The model's file name in a run's folder.
pub const MODEL_FILE: &str = "model.safetensors";
/// The metrics' file name: a row per evaluation.
pub const METRICS_FILE: &str = "metrics.csv";
/// The curves' file name: the loss and accuracy plots.
pub const CURVES_FILE: &str = "curves.png";

/// What a model trained on `data` records of itself: its net, the input normalisation, the
/// image size, the class names and the data set (its test accuracy once known).
pub fn model_info(net: &Architecture, data: &Dataset) -> ModelInfo {
    ModelInfo {
        net: net.clone(),
        normalisation: PIXEL_NORMALISATION.into(),
        input_shape: Some((data.train.rows, data.train.cols)),
        class_names: data.class_names.clone(),
        dataset: Some(data.name.clone()),
        test_accuracy: None,
        checkpoint: None,
        assumed: Vec::new(),
    }
}

/// `metrics.csv`: one row per evaluation.
pub fn metrics_csv(history: &[Record]) -> String {
    let mut csv = String::from("epoch,iter,loss,train_acc,test_acc,elapsed_s\n");
    for r in history {
        csv.push_str(&format!(
            "{},{},{},{},{},{:.3}\n",
            r.epoch, r.iter, r.loss, r.train_acc, r.test_acc, r.elapsed_s
        ));
    }
    csv
}

/// Writes the results of a run that ended with `outcome` into `dir`, as one set: a failure
/// leaves the previous set whole. A finished run writes all three files, its model's test
/// accuracy recorded when the last evaluation came after the last update. A run that
/// diverged keeps its metrics and curves up to where it stopped, when they can be written,
/// and returns the divergence; one that could not write a checkpoint writes nothing (nor
/// could it write these) and returns that error.
///
/// # Errors
/// As said, and when the files cannot be written.
pub fn save_results<O: Optimizer<f32>>(
    dir: &Path,
    trainer: &mut Trainer<'_, f32, O>,
    info: &ModelInfo,
    outcome: Result<()>,
) -> Result<()> {
    if let Err(e @ Error::Io { .. }) = outcome {
        return Err(e); // a checkpoint that could not be written: so would these be
    }
    let (metrics, curves) = (dir.join(METRICS_FILE), dir.join(CURVES_FILE));
    let csv = metrics_csv(trainer.history());
    let png = crate::plot::training_curves(&curves, trainer.losses(), trainer.history())?;
    let mut results: Vec<(&Path, &[u8])> = vec![(&metrics, csv.as_bytes()), (&curves, &png)];
    if let Err(e) = outcome {
        let _ = write_together(&results); // the curves up to where it stopped, when they can be
        return Err(e);
    }
    let info = ModelInfo {
        test_accuracy: trainer.test_accuracy_now(),
        ..info.clone()
    };
    let (model_path, model) = (dir.join(MODEL_FILE), encode_model(&mut trainer.net, &info));
    results.push((&model_path, &model));
    write_together(&results)
}
