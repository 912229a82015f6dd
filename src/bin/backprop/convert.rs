//! `backprop convert`: model files between safetensors and the book's pickle format.

use std::path::PathBuf;
use std::process::ExitCode;

use backprop::Error;
use backprop::io::{LoadOptions, encode_model, pickle, write_atomically};
use backprop::net::{Activation, Architecture};

/// Flags of `backprop convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to read: a model or checkpoint of `backprop train`, the book's pickled
    /// weights (.pkl), or any safetensors file with W1, b1, W2, b2, …
    input: PathBuf,
    /// The file to write, by its extension: .safetensors (a model file with its metadata) or
    /// .pkl (the book's format: a dict of float32 numpy arrays, for `pickle.load`).
    output: PathBuf,
    /// The hidden activation of a fully connected net whose file does not name it: relu or
    /// sigmoid [default: relu, said on stderr].
    #[arg(long)]
    activation: Option<Activation>,
}

pub fn run(args: &Args) -> super::Outcome {
    let extension = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let as_pickle = match extension {
        "safetensors" => false,
        "pkl" | "pickle" => true,
        _ => {
            return Err(Error::Invalid(format!(
                "{}: the output's extension says its format; use .safetensors or .pkl",
                args.output.display()
            )));
        }
    };
    let options = LoadOptions {
        activation: args.activation,
        ..LoadOptions::default()
    };
    let (mut net, info) = super::load_model_saying(&args.input, options)?;
    if as_pickle {
        pickle::save_net(&args.output, &mut net)?;
    } else {
        write_atomically(&args.output, &encode_model(&mut net, &info))?;
    }
    println!(
        "{} → {}: {}",
        args.input.display(),
        args.output.display(),
        info.net.layout()
    );
    if as_pickle {
        let reading = match &info.net {
            Architecture::Mlp(mlp) if mlp.activation == Activation::Sigmoid => {
                "; read it back with --activation sigmoid"
            }
            _ => "",
        };
        eprintln!(
            "{}: a pickle holds no metadata: a reader recognises the net from the tensor shapes{reading}",
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
