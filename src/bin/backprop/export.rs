//! `backprop export`: a model in a format other tools run (ONNX).

use std::path::PathBuf;
use std::process::ExitCode;

use backprop::io::{onnx, write_atomically};

/// Flags of `backprop export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelFile,
    /// Write the model as an ONNX graph (opset 13) to this file: input `pixels`, raw 0–255
    /// (`(N, 784)` for an MLP, `(N, C, H, W)` for a convolutional net); outputs `logits` and
    /// `probabilities`.
    #[arg(long, value_name = "OUT.onnx")]
    onnx: PathBuf,
}

pub fn run(args: &Args) -> super::Outcome {
    let (net, info) = args.model.load()?;
    let bytes = onnx::export(&net, &info)?;
    write_atomically(&args.onnx, &bytes)?;
    println!(
        "{} → {}: {}, ONNX opset {}, {} bytes; input pixels 0–255, outputs logits and probabilities",
        args.model.path.display(),
        args.onnx.display(),
        info.net.layout(),
        onnx::OPSET,
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}
