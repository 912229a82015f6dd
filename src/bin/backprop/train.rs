//! `backprop train`: the book's chapter-5 training run (§5.7.4) and its variations.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backprop::Error;
use backprop::data::{Dataset, Known, Sampling};
use backprop::io::{
    LoadOptions, ModelInfo, PIXEL_NORMALISATION, TensorFile, encode_model,
    remove_stale_temporaries, write_atomically, write_together,
};
use backprop::net::{
    Activation, Architecture, DeepConvNet, Init, MultiLayerNet, NetSpec, Sequential, SimpleConvNet,
};
use backprop::optim::{OptimizerKind, OptimizerSpec};
use backprop::train::{Event, Record, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressDrawTarget};

/// The settings of a run that a checkpoint must remember to continue it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RunSettings {
    net: Architecture,
    optimizer: OptimizerSpec,
    dataset: Option<String>,
    data_dir: Option<PathBuf>,
    /// `--checkpoint-every`, kept by a resumed run unless given again.
    #[serde(default)]
    checkpoint_every: Option<usize>,
}

/// Flags of `backprop train`. With none, this is the book's run: 784-50-10, SGD 0.1,
/// batch 100 sampled with replacement, 10,000 iterations, an evaluation every epoch.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kind of net: mlp (fully connected, --net), or the book's simple-conv (§7.5) or
    /// deep-conv (§8.1).
    #[arg(long, value_enum, default_value_t = ModelArg::Mlp)]
    model: ModelArg,
    /// The fully connected net's layer sizes from input to output [default: 784-50-10].
    #[arg(long)]
    net: Option<NetSpec>,
    /// Hidden activation of the fully connected net: relu or sigmoid [default: relu]. With
    /// --init-from, the activation of a file that does not name it.
    #[arg(long)]
    activation: Option<Activation>,
    /// Start from the weights of FILE (a model or checkpoint of `backprop train`, the book's
    /// .pkl, a safetensors file with W1, b1, …) instead of drawing them: fine-tuning.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["model", "net", "init", "batch_norm", "dropout"])]
    init_from: Option<PathBuf>,
    /// Initial weights: a standard deviation (W = std·randn), he (√(2/n), for ReLU) or
    /// xavier (√(1/n), for sigmoid) [default: 0.01; deep-conv: he].
    #[arg(long, alias = "weight-init-std", allow_negative_numbers = true)]
    init: Option<Init>,
    /// Batch normalisation after every hidden Affine layer.
    #[arg(long)]
    batch_norm: bool,
    /// Dropout with this ratio after every hidden activation (e.g. 0.2).
    #[arg(long, value_parser = super::ratio, allow_negative_numbers = true)]
    dropout: Option<f64>,
    /// Update rule: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw [default: sgd;
    /// for the convolutional nets adam, as the book trains them].
    #[arg(long)]
    optimizer: Option<OptimizerKind>,
    /// Learning rate (default: 0.1 for sgd as in chapter 5; the book's 0.01, or 0.001 for
    /// adam and adamw, otherwise).
    #[arg(long, value_parser = super::positive_f64, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Momentum α of momentum and nesterov.
    #[arg(long, default_value_t = 0.9, value_parser = super::ratio, allow_negative_numbers = true)]
    momentum: f64,
    /// Decay rate ρ of rmsprop.
    #[arg(long, default_value_t = 0.99, value_parser = super::ratio, allow_negative_numbers = true)]
    decay_rate: f64,
    /// β₁ of adam and adamw.
    #[arg(long, default_value_t = 0.9, value_parser = super::ratio, allow_negative_numbers = true)]
    beta1: f64,
    /// β₂ of adam and adamw.
    #[arg(long, default_value_t = 0.999, value_parser = super::ratio, allow_negative_numbers = true)]
    beta2: f64,
    /// Weight decay λ: the book's L2 term ½λ‖W‖² in the loss (default 0); with adamw,
    /// its decoupled decay instead (default 0.01).
    #[arg(long, value_parser = super::non_negative, allow_negative_numbers = true)]
    weight_decay: Option<f64>,
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
    /// Data set: mnist (built in) or fashion-mnist.
    #[arg(long)]
    dataset: Option<Known>,
    /// A folder with the four IDX files (train/t10k images/labels, .gz or not).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Output folder for model.safetensors, metrics.csv, curves.png (default: runs/<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Save a checkpoint to the output folder every N iterations (a resumed run keeps its own
    /// unless given).
    #[arg(long, value_parser = super::at_least_one)]
    checkpoint_every: Option<usize>,
    /// Continue the run whose checkpoint is in DIR, with its own settings, into DIR.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["model", "net", "activation", "init", "batch_norm", "dropout", "optimizer", "lr",
                              "momentum", "decay_rate", "beta1", "beta2", "weight_decay", "batch",
                              "iters", "epochs", "eval_every", "sampling", "seed", "dataset",
                              "data_dir", "out", "init_from"]
    )]
    resume: Option<PathBuf>,
    /// Threads for the kernels (default: all cores). Results are the same for any count.
    #[arg(long, value_parser = super::at_least_one)]
    threads: Option<usize>,
    /// Write one JSON object per evaluation to this file (appended to when resuming).
    #[arg(long)]
    log: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ModelArg {
    Mlp,
    SimpleConv,
    DeepConv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SamplingArg {
    Replacement,
    Shuffle,
}

/// The checkpoint file in an output folder.
const CHECKPOINT: &str = "checkpoint.safetensors";

pub fn run(args: &Args) -> super::Outcome {
    if let Some(threads) = args.threads {
        backprop::machinery::parallel::set_threads(threads);
    }
    let (mut settings, out, data, start) = match &args.resume {
        Some(dir) => resume_input(dir)?,
        None => fresh_input(args)?,
    };
    if args.checkpoint_every.is_some() {
        settings.checkpoint_every = args.checkpoint_every;
    }
    let data = &data;
    let optimizer = settings.optimizer.build::<f32>();
    let mut trainer = match start {
        Start::Resume(file, path) => Trainer::resume(file, &path, optimizer, data)?,
        Start::Fresh => {
            let net = settings.net.build::<f32>(args.seed)?;
            Trainer::new(net, optimizer, data, config_from(args, data))?
        }
        Start::From(net) => Trainer::new(*net, optimizer, data, config_from(args, data))?,
    };
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    // A run killed while writing leaves its temporary files; they hold nothing to keep.
    remove_stale_temporaries(&out)?;
    // A folder that cannot be written is found now, not after hours of training.
    tempfile::tempfile_in(&out).map_err(|e| Error::io(&out, e))?;
    let mut info = ModelInfo {
        net: settings.net.clone(),
        normalisation: PIXEL_NORMALISATION.into(),
        input_shape: Some((data.train.rows, data.train.cols)),
        class_names: data.class_names.clone(),
        dataset: Some(data.name.clone()),
        test_accuracy: None,
        checkpoint: None,
        assumed: Vec::new(),
    };
    let mut log = match &args.log {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(args.resume.is_some())
                .write(true)
                .truncate(args.resume.is_none())
                .open(path)
                .map(std::io::BufWriter::new)
                .map_err(|e| Error::io(path, e))?,
        ),
        None => None,
    };

    let config = *trainer.config();
    eprintln!(
        "training {} on {} ({}), {}, batch {}, {} iterations{} → {}",
        match &args.init_from {
            Some(file) => format!(
                "{} from the weights of {}",
                settings.net.layout(),
                file.display()
            ),
            None => settings.net.to_string(),
        },
        data.name,
        data.source,
        settings.optimizer,
        config.batch,
        config.iters,
        match trainer.iteration() {
            0 => String::new(),
            i => format!(", resuming at {i}"),
        },
        out.display()
    );
    for record in trainer.history() {
        print_record(record);
    }
    let bar = progress_bar(config.iters as u64, trainer.iteration() as u64, args.quiet);
    let mut log_error = None;
    let mut observe = |event: Event<'_>| match event {
        Event::Step { iter, loss } => {
            bar.set_position(iter as u64 + 1);
            if iter % 10 == 0 {
                bar.set_message(format!("{loss:.4}"));
            }
        }
        Event::Evaluated(r) => {
            bar.suspend(|| print_record(r));
            if let Some(log) = log.as_mut() {
                let line = super::json(r);
                if let Err(e) = writeln!(log, "{line}") {
                    log_error.get_or_insert(e);
                }
            }
        }
    };
    let extra = HashMap::from([("run".to_string(), super::json(&settings))]);
    let every = settings.checkpoint_every.unwrap_or(usize::MAX);
    let mut result = Ok(());
    while result.is_ok() && trainer.iteration() < config.iters {
        let next = (trainer.iteration() / every + 1).saturating_mul(every);
        result = trainer.run_until(next, &mut observe);
        if result.is_ok() && trainer.iteration() < config.iters && trainer.iteration() % every == 0
        {
            let bytes = trainer.checkpoint(&info, &extra);
            result = write_atomically(&out.join(CHECKPOINT), &bytes);
        }
    }
    bar.finish_and_clear();
    info.test_accuracy = backprop::train::accuracy_of_current_weights(&trainer);

    // The results are written as one set: a failure leaves the previous set untouched.
    let (metrics, curves) = (out.join("metrics.csv"), out.join("curves.png"));
    let csv = metrics_csv(trainer.history());
    let png = backprop::plot::training_curves(&curves, trainer.losses(), trainer.history())?;
    let mut results: Vec<(&Path, &[u8])> = vec![(&metrics, csv.as_bytes()), (&curves, &png)];
    match result {
        Ok(()) => {}
        // A checkpoint that could not be written: so would the results be.
        Err(e @ Error::Io { .. }) => return Err(e),
        Err(e) => {
            // The curves up to where the run stopped (diverged) are kept when they can be; the
            // error that stopped it is the one reported.
            let _ = write_together(&results);
            return Err(e);
        }
    }
    let (model_path, model) = (
        out.join("model.safetensors"),
        encode_model(&mut trainer.net, &info),
    );
    results.push((&model_path, &model));
    write_together(&results)?;
    if let (Some(path), Some(log)) = (&args.log, log.as_mut()) {
        if let Some(e) = log_error.take().or_else(|| log.flush().err()) {
            return Err(Error::io(path, e));
        }
    }
    eprintln!("saved {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Where a run's net comes from.
enum Start {
    /// Drawn from the seed.
    Fresh,
    /// A checkpoint to continue.
    Resume(TensorFile, PathBuf),
    /// Given weights (`--init-from`).
    From(Box<Sequential<f32>>),
}

type Input = (RunSettings, PathBuf, Dataset, Start);

fn fresh_input(args: &Args) -> Result<Input, Error> {
    let data = backprop::data::load(args.dataset, args.data_dir.as_deref())?;
    let given = match &args.init_from {
        Some(path) => {
            let options = LoadOptions {
                activation: args.activation,
                seed: args.seed,
            };
            let (net, info) = super::load_model_saying(path, options)?;
            Some((info.net, net))
        }
        None => None,
    };
    let conv = match &given {
        Some((net, _)) => !matches!(net, Architecture::Mlp(_)),
        None => args.model != ModelArg::Mlp,
    };
    let kind = args.optimizer.unwrap_or(if conv {
        OptimizerKind::Adam
    } else {
        OptimizerKind::Sgd
    });
    let lr = args.lr.unwrap_or(match kind {
        OptimizerKind::Sgd => 0.1,
        other => other.default_lr(),
    });
    let adamw = kind == OptimizerKind::AdamW;
    let mut optimizer = OptimizerSpec {
        momentum: args.momentum,
        decay_rate: args.decay_rate,
        beta1: args.beta1,
        beta2: args.beta2,
        ..OptimizerSpec::new(kind).with_lr(lr)
    };
    let weight_decay = match (adamw, args.weight_decay) {
        (true, Some(lambda)) => {
            optimizer.weight_decay = lambda;
            0.0
        }
        (_, lambda) => lambda.unwrap_or(0.0),
    };
    if conv {
        let mlp_only = [
            ("--net", args.net.is_some()),
            ("--activation", args.activation.is_some() && given.is_none()),
            ("--batch-norm", args.batch_norm),
            ("--dropout", args.dropout.is_some()),
            ("--weight-decay", weight_decay > 0.0),
        ];
        if let Some((flag, _)) = mlp_only.iter().find(|(_, given)| *given) {
            return Err(Error::Invalid(format!(
                "{flag} applies to --model mlp only; the convolutional nets have the book's fixed layers (with adamw, --weight-decay is its decoupled decay)"
            )));
        }
    }
    let (net, start) = match given {
        Some((Architecture::Mlp(mut mlp), mut net)) => {
            // Fine-tuning adds its own L2 term to the loss, not the one the weights had.
            mlp.weight_decay = weight_decay;
            net.set_weight_decay(weight_decay);
            (Architecture::Mlp(mlp), Start::From(Box::new(net)))
        }
        Some((conv, net)) => (conv, Start::From(Box::new(net))),
        None => (flag_net(args, weight_decay, &data)?, Start::Fresh),
    };
    let settings = RunSettings {
        net,
        optimizer,
        dataset: args.dataset.map(|k| k.name().to_string()),
        data_dir: args.data_dir.clone(),
        checkpoint_every: args.checkpoint_every,
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_out_dir(),
    };
    Ok((settings, out, data, start))
}

/// The net the flags describe (`--model`, `--net`, `--activation`, …), drawn from the seed.
fn flag_net(args: &Args, weight_decay: f64, data: &Dataset) -> Result<Architecture, Error> {
    let input = (1, data.train.rows, data.train.cols);
    let classes = data.classes();
    Ok(match args.model {
        ModelArg::Mlp => Architecture::Mlp(MultiLayerNet {
            sizes: args.net.clone().unwrap_or_else(NetSpec::book),
            activation: args.activation.unwrap_or(Activation::Relu),
            init: args.init.unwrap_or(Init::Std(0.01)),
            batch_norm: args.batch_norm,
            dropout: args.dropout,
            weight_decay,
        }),
        ModelArg::SimpleConv => Architecture::SimpleConv(SimpleConvNet {
            init: args.init.unwrap_or(Init::Std(0.01)),
            ..SimpleConvNet::new(input, classes)
        }),
        ModelArg::DeepConv => {
            if args.init.is_some() {
                return Err(Error::Invalid(
                    "--init does not apply to --model deep-conv, which uses He initialisation as in the book".into(),
                ));
            }
            Architecture::DeepConv(DeepConvNet::new(input, classes))
        }
    })
}

fn resume_input(dir: &Path) -> Result<Input, Error> {
    let path = dir.join(CHECKPOINT);
    let file = TensorFile::read(&path)?;
    let settings: RunSettings = match file.metadata.get("run") {
        Some(json) => serde_json::from_str(json).map_err(|e| Error::Model {
            path: path.clone(),
            what: format!("run settings: {e}"),
        })?,
        None => {
            return Err(Error::Model {
                path,
                what: "not a checkpoint of `backprop train`: no run settings in its metadata"
                    .into(),
            });
        }
    };
    let known = settings
        .dataset
        .as_deref()
        .map(str::parse::<Known>)
        .transpose()?;
    let data = backprop::data::load(known, settings.data_dir.as_deref())?;
    Ok((settings, dir.to_path_buf(), data, Start::Resume(file, path)))
}

fn config_from(args: &Args, data: &Dataset) -> TrainConfig {
    let iters_per_epoch = (data.train.len() / args.batch).max(1);
    let iters = args
        .epochs
        .map_or(args.iters, |e| e.saturating_mul(iters_per_epoch));
    TrainConfig {
        iters,
        batch: args.batch,
        eval_every: Some(args.eval_every.unwrap_or(iters_per_epoch)),
        sampling: match args.sampling {
            SamplingArg::Replacement => Sampling::WithReplacement,
            SamplingArg::Shuffle => Sampling::ShuffledEpochs,
        },
        seed: args.seed,
    }
}

fn print_record(r: &Record) {
    println!(
        "epoch {:>3}  iter {:>6}  loss {:.4}  train acc, test acc | {:.4}, {:.4}",
        r.epoch, r.iter, r.loss, r.train_acc, r.test_acc
    );
}

/// `metrics.csv`: one row per evaluation.
fn metrics_csv(history: &[Record]) -> String {
    let mut csv = String::from("epoch,iter,loss,train_acc,test_acc,elapsed_s\n");
    for r in history {
        csv.push_str(&format!(
            "{},{},{},{},{},{:.3}\n",
            r.epoch, r.iter, r.loss, r.train_acc, r.test_acc, r.elapsed_s
        ));
    }
    csv
}

/// `runs/YYYYMMDD-HHMMSS` (UTC), with `-2`, `-3`, … when taken.
fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let stamp = format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let mut dir = Path::new("runs").join(&stamp);
    for n in 2.. {
        if !dir.exists() {
            break;
        }
        dir = Path::new("runs").join(format!("{stamp}-{n}"));
    }
    dir
}

fn progress_bar(len: u64, start: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(super::progress_style(
        "{bar:30} {pos}/{len} it  {per_sec}  loss {msg}  eta {eta}",
    ));
    bar.set_position(start);
    bar.reset_eta();
    bar
}
