//! `backprop train`: the book's chapter-5 training run (§5.7.4) and its variations.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backprop::Error;
use backprop::data::{Dataset, Known, Sampling};
use backprop::io::{LoadOptions, TensorFile, remove_stale_temporaries};
use backprop::net::{
    Activation, Architecture, DeepConvNet, Init, ModelKind, MultiLayerNet, NetSpec, Sequential,
    Shards, SimpleConvNet,
};
use backprop::optim::{Optimizer, OptimizerKind};
use backprop::train::{
    Event, Recipe, Record, RunSettings, TensorBoard, TrainConfig, Trainer, model_info, save_results,
};
use indicatif::{ProgressBar, ProgressDrawTarget};

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
    /// Cut each mini-batch into K shards whose gradients are computed side by side and summed
    /// in shard order (batch norm then normalises each shard by itself): the same bits at any
    /// --threads for a given K. Default, from the batch and the net alone: the most shards (2,
    /// 4 or 8) of at least 32 examples whose products use each weight at least 400 times (and
    /// do 2 M multiply-adds), else 1.
    #[arg(long, value_name = "K", value_parser = super::at_least_one)]
    shards: Option<usize>,
    /// Data set: mnist (built in) or fashion-mnist.
    #[arg(long)]
    dataset: Option<Known>,
    /// A folder with the four IDX files (train/t10k images/labels; .gz, .xz or not compressed).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Output folder for model.safetensors, metrics.csv, curves.png (default: runs/<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Save a checkpoint to the output folder every N iterations (a resumed run keeps its own
    /// unless given).
    #[arg(long, value_parser = super::at_least_one)]
    checkpoint_every: Option<usize>,
    /// Write TensorBoard event files into DIR as the run goes (`tensorboard --logdir DIR`):
    /// losses, accuracies, learning rate and step time, histograms of each parameter and its
    /// gradient, the first layer's filters. A resumed run keeps writing there unless given.
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    /// Continue the run whose checkpoint is in DIR, with its own settings, into DIR.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["model", "net", "activation", "init", "batch_norm", "dropout", "optimizer", "lr",
                              "momentum", "decay_rate", "beta1", "beta2", "weight_decay", "batch",
                              "iters", "epochs", "eval_every", "sampling", "seed", "shards", "dataset",
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
    /// Under mpirun, let every rank print (its warnings and, at the end, what a step cost
    /// it); by default only rank 0 prints.
    #[cfg(feature = "mpi")]
    #[arg(long)]
    pub log_all_ranks: bool,
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

pub fn run(args: &Args) -> super::Outcome {
    if let Some(threads) = args.threads {
        backprop::machinery::parallel::set_threads(threads);
    }
    #[cfg(feature = "mpi")]
    if let Some(member) = super::cluster::member().filter(|m| m.rank > 0) {
        return follow(member);
    }
    let (settings, out, data, start) = before_start(input(args))?;
    let data = &data;
    let mut trainer = before_start(trainer(args, data, &settings, start))?;
    // Whether the ranks divide the shards, before the output folder is touched.
    #[cfg(feature = "mpi")]
    if let Some(member) = super::cluster::member() {
        before_start(trainer.spread_over(super::cluster::ranks(member)))?;
    }
    before_start(prepare_out_dir(&out))?;
    let mut log = before_start(Log::open(args.log.as_deref(), args.resume.is_some()))?;
    let mut tensorboard = match &settings.tensorboard {
        Some(dir) => Some(before_start(TensorBoard::create(
            dir,
            trainer.iteration(),
            settings.optimizer.lr,
            (data.train.rows, data.train.cols),
        ))?),
        None => None,
    };
    let info = model_info(&settings.net, data);
    #[cfg(feature = "mpi")]
    before_start(lead(&mut trainer, data, &info, &settings))?;
    announce(args, &settings, data, &trainer, &out);
    for record in trainer.history() {
        print_record(record);
    }
    let bar = progress_bar(
        trainer.config().iters as u64,
        trainer.iteration() as u64,
        args.quiet,
    );
    let observe = |event: Event<'_, f32>| {
        match &event {
            Event::Step { iter, loss } => {
                bar.set_position(*iter as u64 + 1);
                if iter % 10 == 0 {
                    bar.set_message(format!("{loss:.4}"));
                }
            }
            Event::Evaluated(r) => {
                bar.suspend(|| print_record(r));
                log.write(r);
            }
            Event::Weights(_) => {}
        }
        if let Some(e) = tensorboard.as_mut().and_then(|tb| tb.observe(event)) {
            bar.suspend(|| eprintln!("warning: {e}; no more TensorBoard events are written"));
        }
    };
    let outcome = trainer.run_checkpointed(&out, &info, &settings, observe);
    bar.finish_and_clear();
    #[cfg(feature = "mpi")]
    if let (Some(member), Err(e)) = (super::cluster::member(), &outcome) {
        // The other ranks diverge alike and stop; any other error would leave them waiting.
        if !matches!(e, Error::Diverged { .. }) {
            super::cluster::abort(member, &e.to_string());
        }
    }
    save_results(&out, &mut trainer, &info, outcome)?;
    log.finish()?;
    eprintln!("saved {}", out.display());
    #[cfg(feature = "mpi")]
    if super::cluster::member().is_some() {
        crate::say_line(&super::cluster::step_line(0, trainer.step_times()));
    }
    if let Some(tb) = tensorboard {
        eprintln!("tensorboard events in {}", tb.path().display());
        tb.finish()?; // a write that failed: the run's results are saved, its events are not whole
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's settings, output folder, data and start, from the flags or the checkpoint of
/// `--resume`.
fn input(args: &Args) -> Result<Input, Error> {
    let (mut settings, out, data, start) = match &args.resume {
        Some(dir) => resume_input(dir)?,
        None => fresh_input(args)?,
    };
    if args.checkpoint_every.is_some() {
        settings.checkpoint_every = args.checkpoint_every;
    }
    if let Some(dir) = &args.tensorboard {
        // Absolute, so that a resumption from another folder writes to the same one.
        settings.tensorboard = Some(std::path::absolute(dir).map_err(|e| Error::io(dir, e))?);
    }
    Ok((settings, out, data, start))
}

/// On rank 0 of a run over MPI, an error before the run starts tells the other ranks to
/// stop; elsewhere, `result` as it is.
fn before_start<T>(result: Result<T, Error>) -> Result<T, Error> {
    #[cfg(feature = "mpi")]
    if result.is_err() {
        super::cluster::stop_others();
    }
    result
}

/// On rank 0 of a run over MPI: sends the trainer, its shards spread over the ranks, to the
/// others as a checkpoint, and checks that they read the same data.
#[cfg(feature = "mpi")]
fn lead(
    trainer: &mut Trainer<'_, f32, Box<dyn Optimizer<f32>>>,
    data: &Dataset,
    info: &backprop::io::ModelInfo,
    settings: &RunSettings,
) -> Result<(), Error> {
    let Some(member) = super::cluster::member() else {
        return Ok(());
    };
    let bytes = trainer.checkpoint(info, Some(settings));
    super::cluster::broadcast(member, Some(bytes));
    super::cluster::check_same_data(member, data)
}

/// On every rank of a run over MPI but 0: the trainer rank 0 sends, trained in step with it.
#[cfg(feature = "mpi")]
fn follow(member: &super::cluster::Member) -> super::Outcome {
    let Some(bytes) = super::cluster::broadcast(member, None) else {
        return Ok(ExitCode::FAILURE); // rank 0 has said why
    };
    let path = Path::new("the checkpoint rank 0 sent");
    // Errors every rank meets alike end each quietly (rank 0 reports them); an error of this
    // rank alone aborts the job, which would wait for it.
    let run = || -> Result<ExitCode, Error> {
        let file = TensorFile::parse(&bytes, path)?;
        let settings = RunSettings::of_file(&file, path)?;
        let data = load_data(&settings)?;
        let optimizer = settings.optimizer.build::<f32>();
        let mut trainer = Trainer::resume(file, path, optimizer, &data)?;
        trainer.spread_over(super::cluster::ranks(member))?;
        if super::cluster::check_same_data(member, &data).is_err() {
            return Ok(ExitCode::FAILURE);
        }
        match trainer.run(|_| {}) {
            Err(Error::Diverged { .. }) => return Ok(ExitCode::FAILURE),
            outcome => outcome?,
        }
        // Ranks speaking together (--log-all-ranks): one write each, whole lines.
        crate::say_line(&super::cluster::step_line(
            member.rank,
            trainer.step_times(),
        ));
        Ok(ExitCode::SUCCESS)
    };
    Ok(run().unwrap_or_else(|e| super::cluster::abort(member, &e.to_string())))
}

/// Creates the output folder, clears what a killed run left there, and checks that it can
/// be written now rather than after hours of training.
fn prepare_out_dir(out: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    remove_stale_temporaries(out)?;
    tempfile::tempfile_in(out).map_err(|e| Error::io(out, e))?;
    Ok(())
}

/// The first line: what trains on what, how, and where the results go.
fn announce(
    args: &Args,
    settings: &RunSettings,
    data: &Dataset,
    trainer: &Trainer<'_, f32, Box<dyn Optimizer<f32>>>,
    out: &Path,
) {
    let net = match &args.init_from {
        Some(file) => format!(
            "{} from the weights of {}",
            settings.net.layout(),
            file.display()
        ),
        None => settings.net.to_string(),
    };
    let resuming = match trainer.iteration() {
        0 => String::new(),
        i => format!(", resuming at {i}"),
    };
    let config = trainer.config();
    let shards = match config.shards {
        1 => String::new(),
        k => format!(" in {k} shards"),
    };
    #[cfg(feature = "mpi")]
    let shards = match super::cluster::member() {
        Some(member) => format!("{shards} on {} ranks", member.size),
        None => shards,
    };
    eprintln!(
        "training {net} on {} ({}), {}, batch {}{shards}, {} iterations{resuming} → {}",
        data.name,
        data.source,
        settings.optimizer,
        config.batch,
        config.iters,
        out.display()
    );
}

/// `--log FILE`: one JSON object per evaluation, appended to when resuming. A write that
/// fails is reported at the end, not in the middle of the run.
struct Log {
    file: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    error: Option<std::io::Error>,
}

impl Log {
    fn open(path: Option<&Path>, append: bool) -> Result<Log, Error> {
        let file = match path {
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(append)
                    .write(true)
                    .truncate(!append)
                    .open(path)
                    .map_err(|e| Error::io(path, e))?;
                Some((path.to_path_buf(), std::io::BufWriter::new(file)))
            }
            None => None,
        };
        Ok(Log { file, error: None })
    }

    fn write(&mut self, record: &Record) {
        if let Some((_, file)) = self.file.as_mut() {
            if let Err(e) = writeln!(file, "{}", super::json(record)) {
                self.error.get_or_insert(e);
            }
        }
    }

    fn finish(mut self) -> Result<(), Error> {
        if let Some((path, file)) = self.file.as_mut() {
            if let Some(e) = self.error.take().or_else(|| file.flush().err()) {
                return Err(Error::io(&*path, e));
            }
        }
        Ok(())
    }
}

/// The trainer of a run: `settings`' optimizer and the net `start` gives, on `data`, with
/// the schedule of the flags (or, resuming, of the checkpoint).
pub fn trainer<'d>(
    args: &Args,
    data: &'d Dataset,
    settings: &RunSettings,
    start: Start,
) -> Result<Trainer<'d, f32, Box<dyn Optimizer<f32>>>, Error> {
    let optimizer = settings.optimizer.build::<f32>();
    match start {
        Start::Resume(file, path) => Trainer::resume(file, &path, optimizer, data),
        Start::Fresh => settings.net.build::<f32>(args.seed).and_then(|net| {
            let config = config_from(args, data, &net);
            Trainer::new(net, optimizer, data, config)
        }),
        Start::From(net) => {
            let config = config_from(args, data, &net);
            Trainer::new(*net, optimizer, data, config)
        }
    }
}

/// Where a run's net comes from.
pub enum Start {
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
    let (settings, start) = fresh_settings(args, &data)?;
    let out = args.out.clone().unwrap_or_else(default_out_dir);
    Ok((settings, out, data, start))
}

/// The settings and start of a fresh run on `data` from the flags.
pub fn fresh_settings(args: &Args, data: &Dataset) -> Result<(RunSettings, Start), Error> {
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
    let kind = match &given {
        Some((net, _)) => net.kind(),
        None => args.model.into(),
    };
    let recipe = recipe_from(args, kind);
    if kind != ModelKind::Mlp {
        let mlp_only = [
            ("--net", args.net.is_some()),
            ("--activation", args.activation.is_some() && given.is_none()),
            ("--batch-norm", args.batch_norm),
            ("--dropout", args.dropout.is_some()),
            ("--weight-decay", recipe.l2 > 0.0),
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
            mlp.weight_decay = recipe.l2;
            net.set_weight_decay(recipe.l2);
            (Architecture::Mlp(mlp), Start::From(Box::new(net)))
        }
        Some((conv, net)) => (conv, Start::From(Box::new(net))),
        None => (flag_net(args, recipe.l2, data)?, Start::Fresh),
    };
    let settings = RunSettings {
        net,
        optimizer: recipe.optimizer,
        dataset: args.dataset.map(|k| k.name().to_string()),
        data_dir: args.data_dir.clone(),
        checkpoint_every: args.checkpoint_every,
        tensorboard: None, // set from --tensorboard by `run`
    };
    Ok((settings, start))
}

/// The book's recipe for `kind` with the flags' choices on top.
fn recipe_from(args: &Args, kind: ModelKind) -> Recipe {
    let mut recipe = Recipe::book(kind);
    if let Some(optimizer) = args.optimizer {
        recipe = recipe.with_optimizer(optimizer);
    }
    if let Some(lr) = args.lr {
        recipe = recipe.with_lr(lr);
    }
    let spec = &mut recipe.optimizer;
    (spec.momentum, spec.decay_rate) = (args.momentum, args.decay_rate);
    (spec.beta1, spec.beta2) = (args.beta1, args.beta2);
    match args.weight_decay {
        Some(lambda) => recipe.with_weight_decay(lambda),
        None => recipe,
    }
}

impl From<ModelArg> for ModelKind {
    fn from(model: ModelArg) -> Self {
        match model {
            ModelArg::Mlp => ModelKind::Mlp,
            ModelArg::SimpleConv => ModelKind::SimpleConv,
            ModelArg::DeepConv => ModelKind::DeepConv,
        }
    }
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
    let (settings, file, path) = RunSettings::of_checkpoint(dir)?;
    let data = load_data(&settings)?;
    Ok((settings, dir.to_path_buf(), data, Start::Resume(file, path)))
}

/// The data set a run's settings name.
fn load_data(settings: &RunSettings) -> Result<Dataset, Error> {
    let known = settings
        .dataset
        .as_deref()
        .map(str::parse::<Known>)
        .transpose()?;
    backprop::data::load(known, settings.data_dir.as_deref())
}

fn config_from(args: &Args, data: &Dataset, net: &Sequential<f32>) -> TrainConfig {
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
        shards: args
            .shards
            .unwrap_or_else(|| Shards::default_count(net, args.batch)),
    }
}

fn print_record(r: &Record) {
    println!(
        "epoch {:>3}  iter {:>6}  loss {:.4}  train acc, test acc | {:.4}, {:.4}",
        r.epoch, r.iter, r.loss, r.train_acc, r.test_acc
    );
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
