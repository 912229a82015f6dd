//! `backprop`: the command-line tool. Parses flags, calls the library, prints.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod apple;
mod bench;
#[cfg(feature = "mpi")]
mod cluster;
mod convert;
mod data;
mod eval;
mod experiment;
mod export;
mod gradcheck;
mod grid;
mod predict;
mod serve;
mod train;
mod visualize;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backprop::io::{LoadOptions, ModelInfo};
use backprop::net::{Activation, Sequential};
use clap::{Parser, Subcommand};

/// Deep learning from scratch: backpropagation through layers, as in chapter 5 of
/// "Deep Learning from Scratch".
#[derive(Debug, Parser)]
#[command(name = "backprop", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The book's apple (and orange) computational graphs, forward and backward (§5.4).
    Apple(apple::Args),
    /// Compare backprop gradients with numerical ones on MNIST images (§5.7.3).
    Gradcheck(gradcheck::Args),
    /// Train a net with mini-batch SGD, printing train/test accuracy each epoch (§5.7.4).
    Train(Box<train::Args>),
    /// Accuracy, mean loss and confusion matrix of a saved model on a test set.
    Eval(eval::Args),
    /// Classify pictures of digits (PNG, JPEG) with a saved model: top classes and probabilities.
    Predict(predict::Args),
    /// Convert a model file between safetensors and the book's pickle format (.pkl).
    Convert(convert::Args),
    /// Export a model as ONNX, for onnxruntime and other tools (input: raw pixels 0–255).
    Export(export::Args),
    /// List, verify and download data sets.
    Data(data::Args),
    /// Save a net's first-layer filters as an image grid, before and after training (§7.6.1).
    VisualizeFilters(visualize::FilterArgs),
    /// Save a grid of the first misclassified test images with true and predicted labels (§8.1.1).
    Misclassified(visualize::MisclassifiedArgs),
    /// Chapter 6's experiments: optimizers, initial weights, batch norm, overfitting, search.
    Experiment(experiment::Args),
    /// The lab: a local web page that shows backpropagation happen (the apple graphs stepped
    /// node by node; a digit drawn, classified and explained), and its JSON API.
    Serve(serve::Args),
    /// Time the benchmark workloads W1–W4: the book's run, its steps, a wide MLP, SimpleConvNet.
    ///
    /// Data: Fashion-MNIST by default (or --dataset / --data-dir), images as pixel/255 in
    /// float32; biases start at 0; batches drawn with replacement.
    ///
    ///   W1  784-50-10 (ReLU), W = 0.01·randn, SGD 0.1, batch 100, 10,000 iterations, with 17
    ///       evaluations on the full train and test sets (after iterations 0, 600, …, 9600)
    ///   W2  as W1, without the evaluations: the training steps alone
    ///   W3  784-1000-1000-10 (ReLU), He init, SGD 0.05, batch 128, 300 iterations
    ///   W4  SimpleConvNet (conv 30×5×5, ReLU, 2×2 max pool, Affine 4320→100, ReLU,
    ///       Affine 100→10), W = 0.01·randn, Adam 0.001, batch 100, 100 iterations
    ///
    /// The clock runs from the first iteration to the end of the last: sampling, gathering,
    /// forward, loss, backward, update, reading the loss back every iteration and W1's
    /// evaluations. Loading the data is timed apart. Repetition r uses seed r. BENCHMARKS.md
    /// has the figures measured beside numpy, PyTorch, burn and candle on the same work.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default action at start, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        #[cfg(feature = "mpi")]
        Err(_) if cluster::quiet_rank() => return ExitCode::from(2), // rank 0 says it
        Err(e) => {
            // One line: what is wrong with which flag. `--help` shows the rest.
            let text = e.render().to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("error: invalid arguments");
            let tips: Vec<&str> = lines
                .filter_map(|l| l.trim().strip_prefix("tip: "))
                .collect();
            match tips.as_slice() {
                [] => say_line(&format!("{first} (see --help)")),
                tips => say_line(&format!("{first}; {} (see --help)", tips.join("; "))),
            }
            return ExitCode::from(2);
        }
    };
    // Held to the end: dropping it ends MPI.
    #[cfg(feature = "mpi")]
    let _universe = match &cli.command {
        Command::Train(args) => match cluster::join(args.log_all_ranks) {
            Ok(universe) => universe,
            Err(e) => {
                say_line(&format!("error: {e}"));
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let run = move || match cli.command {
        Command::Apple(args) => apple::run(&args),
        Command::Gradcheck(args) => gradcheck::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Data(args) => data::run(&args),
        Command::Experiment(args) => experiment::run(&args),
        Command::VisualizeFilters(args) => visualize::filters(&args),
        Command::Misclassified(args) => visualize::misclassified(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Serve(args) => serve::run(&args),
    };
    let result = backprop::machinery::parallel::on_thread_pool(run);
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line, even when a library's message (an image decoder's) spans several.
            let text = e.to_string();
            let parts: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            say_line(&format!("error: {}", parts.join(" ")));
            ExitCode::FAILURE
        }
    }
}

/// Writes `line` and its newline to stderr in one write, so that a launcher merging the
/// output of several processes with its own (mpirun) cannot cut the line in two.
pub fn say_line(line: &str) {
    write_line(std::io::stderr(), line);
}

/// Writes `line` and its newline to `to` in one write (`writeln!` writes the pieces of its
/// format one by one).
pub fn write_line(mut to: impl std::io::Write, line: &str) {
    let _ = to.write_all(format!("{line}\n").as_bytes());
}

/// The model a command reads, and what to assume of a file that does not say it.
#[derive(Debug, clap::Args)]
struct ModelFile {
    /// A model file: model.safetensors or checkpoint.safetensors of `backprop train`, the
    /// book's pickled weights (.pkl), or any safetensors file with W1, b1, W2, b2, …
    #[arg(long = "model", value_name = "FILE")]
    path: PathBuf,
    /// The hidden activation of a fully connected net whose file does not name it (the
    /// book's pickles): relu or sigmoid [default: relu, said on stderr].
    #[arg(long)]
    activation: Option<Activation>,
}

impl ModelFile {
    /// Loads the model, saying on stderr what it is if not a finished model file, and what
    /// had to be assumed.
    fn load(&self) -> Result<(Sequential<f32>, ModelInfo), backprop::Error> {
        let options = LoadOptions {
            activation: self.activation,
            ..LoadOptions::default()
        };
        load_model_saying(&self.path, options)
    }
}

/// Loads a model file with `options`, saying on stderr that it is a checkpoint and what the
/// loader assumed.
fn load_model_saying(
    path: &Path,
    options: LoadOptions,
) -> Result<(Sequential<f32>, ModelInfo), backprop::Error> {
    let (net, info) = backprop::io::load_model(path, options)?;
    if let Some(at) = info.checkpoint {
        eprintln!(
            "{}: a checkpoint at iteration {} of {}; using its weights",
            path.display(),
            at.iteration,
            at.iters
        );
    }
    for assumed in &info.assumed {
        eprintln!("{}: {assumed}", path.display());
    }
    Ok((net, info))
}

/// `value` as one line of JSON.
#[allow(
    clippy::expect_used,
    reason = "the values printed are plain records of numbers and strings, which always serialise"
)]
fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("a plain record serialises")
}

/// A progress-bar style from one of this tool's templates.
#[allow(
    clippy::expect_used,
    reason = "the templates are constants of this tool, all valid"
)]
fn progress_style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template).expect("a valid template")
}

/// What a command returns: an exit code, or an error printed as one line.
type Outcome = Result<ExitCode, backprop::Error>;

/// A finite number above zero (learning rates, standard deviations).
fn positive_f64(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a positive number")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// A fraction in `[0, 1)`: dropout ratios, momenta, decay rates.
fn ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is not in [0, 1)")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// A finite number of at least 0 (weight decay).
fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not zero or positive")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// A whole number of at least 1 (batch sizes, iterations, threads).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("0 is not at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}
