//! `backprop train`: the book's chapter-5 training run (§5.7.4) and its variations.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use backprop::data::{Known, Sampling};
use backprop::net::NetSpec;
use backprop::optim::Sgd;
use backprop::train::{Event, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Flags of `backprop train`. With none, this is the book's run: 784-50-10, SGD 0.1,
/// batch 100 sampled with replacement, 10,000 iterations, an evaluation every epoch.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The net: layer sizes from input to output, e.g. 784-100-100-10.
    #[arg(long, default_value = "784-50-10")]
    net: NetSpec,
    /// Learning rate of SGD.
    #[arg(long, default_value_t = 0.1, value_parser = super::positive_f64, allow_negative_numbers = true)]
    lr: f64,
    /// Examples per mini-batch.
    #[arg(long, default_value_t = 100, value_parser = super::at_least_one)]
    batch: usize,
    /// Number of iterations (updates).
    #[arg(long, default_value_t = 10_000, conflicts_with = "epochs", value_parser = super::at_least_one)]
    iters: usize,
    /// Number of epochs instead of --iters (an epoch is training-set size / batch iterations).
    #[arg(long, value_parser = super::at_least_one)]
    epochs: Option<usize>,
    /// Evaluate every this many iterations (default: one epoch).
    #[arg(long, value_parser = super::at_least_one)]
    eval_every: Option<usize>,
    /// How batches are drawn: with replacement (the book) or shuffled epochs.
    #[arg(long, value_enum, default_value_t = SamplingArg::Replacement)]
    sampling: SamplingArg,
    /// Seed of the weights and of the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Standard deviation of the initial weights (W = std·randn).
    #[arg(long, default_value_t = 0.01, value_parser = super::positive_f64, allow_negative_numbers = true)]
    weight_init_std: f64,
    /// Data set: mnist (built in) or fashion-mnist.
    #[arg(long)]
    dataset: Option<Known>,
    /// A folder with the four IDX files (train/t10k images/labels, .gz or not).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Write one JSON object per evaluation to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SamplingArg {
    Replacement,
    Shuffle,
}

pub fn run(args: &Args) -> super::Outcome {
    let data = backprop::data::load(args.dataset, args.data_dir.as_deref())?;
    let batch = args.batch;
    let iters_per_epoch = (data.train.len() / batch).max(1);
    let iters = args.epochs.map_or(args.iters, |e| e * iters_per_epoch);
    let config = TrainConfig {
        iters,
        batch,
        eval_every: args.eval_every.unwrap_or(iters_per_epoch),
        sampling: match args.sampling {
            SamplingArg::Replacement => Sampling::WithReplacement,
            SamplingArg::Shuffle => Sampling::ShuffledEpochs,
        },
        seed: args.seed,
    };
    let net = args.net.build::<f32>(args.weight_init_std, args.seed);
    let mut trainer = Trainer::new(net, Sgd::new(args.lr), &data, config)?;
    let mut log = match &args.log {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| backprop::Error::io(path, e))?,
        )),
        None => None,
    };

    eprintln!(
        "training {} on {} ({}), SGD lr {}, batch {}, {} iterations",
        args.net, data.name, data.source, args.lr, batch, iters
    );
    let bar = progress_bar(iters as u64, args.quiet);
    let mut log_error = None;
    let result = trainer.run(|event| match event {
        Event::Step { iter, loss } => {
            bar.set_position(iter as u64 + 1);
            if iter % 10 == 0 {
                bar.set_message(format!("{loss:.4}"));
            }
        }
        Event::Evaluated(r) => {
            bar.suspend(|| {
                println!(
                    "epoch {:>3}  iter {:>6}  loss {:.4}  train acc, test acc | {:.4}, {:.4}",
                    r.epoch, r.iter, r.loss, r.train_acc, r.test_acc
                );
            });
            if let Some(log) = log.as_mut() {
                let line = serde_json::to_string(r).expect("a record serialises");
                if let Err(e) = writeln!(log, "{line}") {
                    log_error.get_or_insert(e);
                }
            }
        }
    });
    bar.finish_and_clear();
    result?;
    if let (Some(path), Some(log)) = (&args.log, log.as_mut()) {
        if let Some(e) = log_error.take().or_else(|| log.flush().err()) {
            return Err(backprop::Error::io(path, e));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} it  {per_sec}  loss {msg}  eta {eta}")
            .expect("a valid template"),
    );
    bar
}
