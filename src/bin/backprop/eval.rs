//! `backprop eval`: accuracy, mean loss and confusion matrix of a saved model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backprop::Error;
use backprop::data::{Dataset, Known};
use backprop::io::ModelInfo;
use backprop::net::Sequential;
use backprop::train::evaluate;

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
}

pub fn run(args: &Args) -> super::Outcome {
    let (mut net, _, data) = model_and_data(&args.model, args.dataset, args.data_dir.as_deref())?;
    let (split, split_name) = if args.train_split {
        (&data.train, "train")
    } else {
        (&data.test, "test")
    };
    let result = evaluate(&mut net, split, data.classes());
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
