//! `backprop eval`: accuracy, mean loss and confusion matrix of a saved model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backprop::Error;
use backprop::data::{Dataset, Known};
use backprop::io::{ModelInfo, encode_tensors, write_atomically};
use backprop::net::Sequential;
use backprop::train::{evaluate, evaluate_with_scores};

/// Flags of `backprop eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelFile,
    /// Data set (default: the one the model was trained on, else mnist).
    #[arg(long)]
    dataset: Option<Known>,
    /// A folder with the four IDX files (train/t10k images/labels; .gz, .xz or not compressed).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Evaluate on the training split instead of the test split.
    #[arg(long)]
    train_split: bool,
    /// Print `{"accuracy", "loss", "n", "confusion"}` as JSON.
    #[arg(long)]
    json: bool,
    /// Also save every image's scores before the softmax to FILE (safetensors: `logits`
    /// `(N, classes)` float32 and `labels` `(N,)` as float32, in the split's order).
    #[arg(long, value_name = "FILE")]
    logits: Option<PathBuf>,
}

pub fn run(args: &Args) -> super::Outcome {
    let (mut net, _, data) = model_and_data(&args.model, args.dataset, args.data_dir.as_deref())?;
    let (split, split_name) = if args.train_split {
        (&data.train, "train")
    } else {
        (&data.test, "test")
    };
    let result = match &args.logits {
        Some(path) => {
            let (result, scores) = evaluate_with_scores(&mut net, split, data.classes());
            save_logits(path, scores.view(), split)?;
            result
        }
        None => evaluate(&mut net, split, data.classes()),
    };
    if args.json {
        println!("{}", super::json(&result));
        return Ok(ExitCode::SUCCESS);
    }
    let correct: usize = (0..data.classes()).map(|c| result.confusion[c][c]).sum();
    println!(
        "{} on {} {split_name}: accuracy {:.4} ({correct}/{}), mean loss {:.4}",
        args.model.path.display(),
        data.name,
        result.accuracy,
        result.n,
        result.loss
    );
    println!("\nconfusion matrix (rows: true class, columns: predicted)");
    let width = result
        .confusion
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1)
        .max(3);
    let label_width = data
        .class_names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(1);
    let header: String = (0..data.classes())
        .map(|c| format!(" {c:>width$}"))
        .collect();
    println!("{:label_width$}{header}", "");
    for (name, row) in data.class_names.iter().zip(&result.confusion) {
        let cells: String = row.iter().map(|c| format!(" {c:>width$}")).collect();
        println!("{name:>label_width$}{cells}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the scores of every example of `split` and its label to `path`.
fn save_logits(
    path: &Path,
    logits: ndarray::ArrayView2<'_, f32>,
    split: &backprop::data::Split,
) -> Result<(), Error> {
    let labels = ndarray::Array1::from_iter(split.labels.iter().map(|&t| f32::from(t)));
    let bytes = encode_tensors(
        &[
            ("logits".into(), logits.view().into_dyn()),
            ("labels".into(), labels.view().into_dyn()),
        ],
        &[],
        Default::default(),
    );
    write_atomically(path, &bytes)
}

/// A model file, and the data set to run it on: `dataset` or `data_dir` when given, else the
/// one the model was trained on, else MNIST; checked to fit each other.
pub fn model_and_data(
    model: &super::ModelFile,
    dataset: Option<Known>,
    data_dir: Option<&Path>,
) -> Result<(Sequential<f32>, ModelInfo, Dataset), Error> {
    let (mut net, info) = model.load()?;
    let known = match (dataset, data_dir, info.dataset.as_deref()) {
        (Some(k), _, _) => Some(k),
        (None, None, Some(name)) => name.parse().ok(),
        _ => None,
    };
    let data = backprop::data::load(known, data_dir)?;
    backprop::train::check_fits(&mut net, &data).map_err(|e| Error::Model {
        path: model.path.clone(),
        what: e.to_string(),
    })?;
    Ok((net, info, data))
}
