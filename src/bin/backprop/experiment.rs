//! `backprop experiment`: chapter 6's experiments, printing the book's kind of numbers and
//! saving its kind of figure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backprop::data::{Dataset, Known};
use backprop::experiments::{self, LossCurve, LossRace, SearchConfig};
use backprop::net::{Activation, Init};
use backprop::optim::OptimizerKind;
use backprop::plot::{Chart, Series, histograms, line_charts, moving_average};
use indicatif::{ProgressBar, ProgressDrawTarget};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
    #[command(flatten)]
    common: Common,
}

/// Flags every experiment takes.
#[derive(Debug, clap::Args)]
struct Common {
    /// Seed of the weights, batches and draws.
    #[arg(long, default_value_t = 0, global = true)]
    seed: u64,
    /// Data set: mnist (built in) or fashion-mnist.
    #[arg(long, global = true)]
    dataset: Option<Known>,
    /// A folder with the four IDX files (train/t10k images/labels; .gz, .xz or not compressed).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Folder for the figure (NAME.png).
    #[arg(long, default_value = "runs", global = true)]
    out: PathBuf,
    /// Cores to use (default: all). The numbers are the same for any count.
    #[arg(long, value_parser = super::at_least_one, global = true)]
    threads: Option<usize>,
}

#[derive(Debug, clap::Subcommand)]
enum Which {
    /// §6.1.8: SGD, Momentum, AdaGrad and Adam on MNIST, mini-batch loss side by side.
    OptimizerCompare {
        /// Optimizers to compare.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "sgd,momentum,adagrad,adam"
        )]
        optimizers: Vec<OptimizerKind>,
        #[command(flatten)]
        race: RaceArgs,
    },
    /// §6.2.4: initial weights std 0.01, Xavier and He on MNIST, mini-batch loss side by side.
    WeightInitCompare {
        /// Initialisations to compare: standard deviations, xavier, he.
        #[arg(long, value_delimiter = ',', default_value = "0.01,xavier,he")]
        inits: Vec<Init>,
        #[command(flatten)]
        race: RaceArgs,
    },
    /// §6.2.2: histograms of the activations of 5 hidden layers fed random data.
    ActivationHistogram {
        /// Activation: sigmoid (the book's figures) or relu.
        #[arg(long, default_value = "sigmoid")]
        activation: Activation,
        /// Weight scale: a standard deviation (1 and 0.01 in the book), xavier or he.
        #[arg(long, default_value = "1", allow_negative_numbers = true)]
        init: Init,
    },
    /// §6.3.2: training accuracy with and without batch norm across 16 initial weight scales.
    BatchNorm {
        /// Number of weight scales, from 1 down to 1e-4 in log steps.
        #[arg(long, default_value_t = 16, value_parser = super::at_least_one)]
        scales: usize,
        /// Epochs per run.
        #[arg(long, default_value_t = 20, value_parser = super::at_least_one)]
        epochs: usize,
        /// Training images used.
        #[arg(long, default_value_t = 1000, value_parser = super::at_least_one)]
        train_size: usize,
    },
    /// §6.4: overfitting 300 images, and weight decay and dropout against it.
    Overfit {
        /// Epochs per run.
        #[arg(long, default_value_t = 201, value_parser = super::at_least_one)]
        epochs: usize,
        /// Training images used.
        #[arg(long, default_value_t = 300, value_parser = super::at_least_one)]
        train_size: usize,
        /// λ of the weight-decay run.
        #[arg(long, default_value_t = 0.1, value_parser = super::positive_f64, allow_negative_numbers = true)]
        weight_decay: f64,
        /// Ratio of the dropout run.
        #[arg(long, default_value_t = 0.2, value_parser = super::ratio, allow_negative_numbers = true)]
        dropout: f64,
        /// Print a row every this many epochs.
        #[arg(long, default_value_t = 20, value_parser = super::at_least_one)]
        print_every: usize,
    },
    /// §6.5: random search of learning rate and weight decay on a validation split.
    HyperparameterSearch {
        /// Number of trials.
        #[arg(long, default_value_t = 100, value_parser = super::at_least_one)]
        trials: usize,
        /// Epochs per trial.
        #[arg(long, default_value_t = 50, value_parser = super::at_least_one)]
        epochs: usize,
        /// Training images used, validation included.
        #[arg(long, default_value_t = 500, value_parser = super::at_least_one)]
        train_size: usize,
        /// Fraction of them held out for validation.
        #[arg(long, default_value_t = 0.2, value_parser = super::ratio, allow_negative_numbers = true)]
        validation: f64,
        /// How many of the best trials to list and plot.
        #[arg(long, default_value_t = 20, value_parser = super::at_least_one)]
        top: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

/// The schedule of a loss comparison.
#[derive(Debug, clap::Args)]
struct RaceArgs {
    /// Iterations.
    #[arg(long, default_value_t = 2000, value_parser = super::at_least_one)]
    iters: usize,
    /// Examples per mini-batch.
    #[arg(long, default_value_t = 128, value_parser = super::at_least_one)]
    batch: usize,
}

pub fn run(args: &Args) -> super::Outcome {
    let common = &args.common;
    if let Some(threads) = common.threads {
        backprop::machinery::parallel::set_threads(threads);
    }
    match &args.which {
        Which::OptimizerCompare { optimizers, race } => loss_comparison(
            common,
            race,
            optimizers.len(),
            "optimizer-compare",
            1.0,
            |d, r| experiments::compare_optimizers(d, r, optimizers),
        ),
        Which::WeightInitCompare { inits, race } => loss_comparison(
            common,
            race,
            inits.len(),
            "weight-init-compare",
            2.5,
            |d, r| experiments::compare_inits(d, r, inits),
        ),
        Which::ActivationHistogram { activation, init } => {
            activation_histogram(common, *activation, *init)
        }
        Which::BatchNorm {
            scales,
            epochs,
            train_size,
        } => batch_norm(common, *scales, *epochs, *train_size),
        Which::Overfit {
            epochs,
            train_size,
            weight_decay,
            dropout,
            print_every,
        } => overfit(
            common,
            (*epochs, *train_size),
            (*weight_decay, *dropout),
            *print_every,
        ),
        Which::HyperparameterSearch {
            trials,
            epochs,
            train_size,
            validation,
            top,
            quiet,
        } => {
            let config = SearchConfig {
                trials: *trials,
                epochs: *epochs,
                train_size: *train_size,
                validation: *validation,
                seed: common.seed,
                ..SearchConfig::book()
            };
            hyperparameter_search(common, config, *top, *quiet)
        }
    }
}

/// §6.2.2: the activations of 5 hidden layers fed random data, as histograms.
fn activation_histogram(common: &Common, activation: Activation, init: Init) -> super::Outcome {
    let layers = experiments::activation_histograms(activation, init, (1000, 100, 5), common.seed);
    println!(
        "{activation} activations, weights {init}: 1000 random inputs through 5 layers of 100"
    );
    println!("layer    mean     std   within 0.01 of 0   of 1");
    for (i, l) in layers.iter().enumerate() {
        println!(
            "{:>5}  {:>6.3}  {:>6.3}  {:>17.1}%  {:>4.1}%",
            i + 1,
            l.mean,
            l.std,
            100.0 * l.near_zero,
            100.0 * l.near_one
        );
    }
    let panels: Vec<(String, Vec<f64>)> = layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| (format!("{}-layer", i + 1), l.values))
        .collect();
    let path = figure(common, &format!("activation-histogram-{activation}-{init}"))?;
    histograms(&path, &panels, 30, (0.0, 1.0))?;
    saved(&path)
}

/// §6.3.2: training accuracy with and without batch norm across weight scales.
fn batch_norm(common: &Common, scales: usize, epochs: usize, train_size: usize) -> super::Outcome {
    let data = load(common)?.subset(train_size, 0);
    let scales = experiments::weight_scales(scales);
    say_parallel(
        2 * scales.len(),
        &format!("nets on {} {} images", data.train.len(), data.name),
    );
    let runs = experiments::compare_batch_norm(&data, &scales, &[100; 5], epochs, common.seed)?;
    println!("training accuracy after {epochs} epochs");
    println!("weight std   without BN   with BN");
    let last = |v: &[f64]| match v.last() {
        Some(a) if a.is_finite() => format!("{a:.3}"),
        _ => "diverged".into(),
    };
    for r in &runs {
        println!(
            "{:>10.2e}   {:>10}   {:>7}",
            r.weight_std,
            last(&r.plain),
            last(&r.batch_norm)
        );
    }
    // The legend once, in the first chart, as in the book's figure.
    let charts: Vec<Chart> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let label = |name: &'static str| if i == 0 { name } else { "" };
            Chart {
                title: format!("W std {:.2e}", r.weight_std),
                labels: ("epochs".into(), "accuracy".into()),
                y_range: (0.0, 1.0),
                series: vec![
                    epoch_series(label("Batch Normalization"), &r.batch_norm, 0, false),
                    epoch_series(label("Normal (without BN)"), &r.plain, 3, true),
                ],
            }
        })
        .collect();
    let path = figure(common, "batch-norm")?;
    line_charts(&path, &charts, 4, (360, 280))?;
    saved(&path)
}

/// §6.4: overfitting a few images, and weight decay and dropout against it.
fn overfit(
    common: &Common,
    (epochs, train_size): (usize, usize),
    (weight_decay, dropout): (f64, f64),
    print_every: usize,
) -> super::Outcome {
    let data = load(common)?.subset(train_size, usize::MAX);
    let nets = experiments::overfit_variants(&data, weight_decay, dropout)?;
    say_parallel(
        nets.len(),
        &format!("nets on {} {} images", data.train.len(), data.name),
    );
    let runs = experiments::overfitting(&data, &nets, epochs, common.seed)?;
    print!("epoch");
    for r in &runs {
        print!("  {:>22}", format!("{} train/test", r.name));
    }
    println!();
    let rows = runs.first().map_or(0, |r| r.history.len());
    for e in (0..rows).filter(|e| e % print_every == 0 || e + 1 == rows) {
        print!("{e:>5}");
        for r in &runs {
            let rec = &r.history[e];
            print!(
                "  {:>22}",
                format!("{:.3} / {:.3}", rec.train_acc, rec.test_acc)
            );
        }
        println!();
    }
    let charts: Vec<Chart> = runs
        .iter()
        .map(|r| {
            let pick = |f: fn(&backprop::train::Record) -> f64| -> Vec<f64> {
                r.history.iter().map(f).collect()
            };
            Chart {
                title: r.name.clone(),
                labels: ("epochs".into(), "accuracy".into()),
                y_range: (0.0, 1.0),
                series: vec![
                    epoch_series("train", &pick(|h| h.train_acc), 0, false),
                    epoch_series("test", &pick(|h| h.test_acc), 1, true),
                ],
            }
        })
        .collect();
    let path = figure(common, "overfit")?;
    line_charts(&path, &charts, 3, (420, 320))?;
    saved(&path)
}

/// §6.5: random search of learning rate and weight decay on a validation split.
fn hyperparameter_search(
    common: &Common,
    config: SearchConfig,
    top: usize,
    quiet: bool,
) -> super::Outcome {
    let data = load(common)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let bar =
            ProgressBar::with_draw_target(Some(config.trials as u64), ProgressDrawTarget::stderr());
        bar.set_style(super::progress_style(
            "{bar:30} {pos}/{len} trials  {msg}  eta {eta}",
        ));
        bar
    };
    let threads = backprop::machinery::parallel::threads();
    bar.set_message(format!("{threads} at a time"));
    let ranked = experiments::random_search(&data, &config, &|_| bar.inc(1))?;
    bar.finish_and_clear();
    println!("=========== Hyper-Parameter Optimization Result ===========");
    for (rank, t) in ranked.iter().take(top).enumerate() {
        println!(
            "Best-{:<3} (val acc:{:.2}) | lr:{:.3e}, weight decay:{:.3e}",
            rank + 1,
            t.val_acc,
            t.lr,
            t.weight_decay
        );
    }
    let charts: Vec<Chart> = ranked
        .iter()
        .take(top)
        .enumerate()
        .map(|(rank, t)| {
            let val: Vec<f64> = t.history.iter().map(|r| r.test_acc).collect();
            let train: Vec<f64> = t.history.iter().map(|r| r.train_acc).collect();
            Chart {
                title: format!("Best-{}", rank + 1),
                labels: ("epochs".into(), String::new()),
                y_range: (0.0, 1.0),
                series: vec![
                    epoch_series("", &val, 0, false),
                    epoch_series("", &train, 0, true),
                ],
            }
        })
        .collect();
    let path = figure(common, "hyperparameter-search")?;
    line_charts(&path, &charts, 5, (260, 200))?;
    saved(&path)
}

/// Runs a comparison of `variants` loss curves, prints them and saves figure `name` with
/// losses from 0 to `y_max`.
fn loss_comparison(
    common: &Common,
    args: &RaceArgs,
    variants: usize,
    name: &str,
    y_max: f64,
    compare: impl FnOnce(&Dataset, &LossRace) -> Result<Vec<LossCurve>, backprop::Error>,
) -> super::Outcome {
    let data = load(common)?;
    let race = LossRace {
        iters: args.iters,
        batch: args.batch,
        seed: common.seed,
        ..LossRace::book()
    };
    say_parallel(
        variants,
        &format!(
            "{} nets of {} hidden layers of {}",
            data.name,
            race.hidden.len(),
            race.hidden.first().unwrap_or(&0)
        ),
    );
    let curves = compare(&data, &race)?;
    print_curves(&curves, race.iters);
    plot_curves(&figure(common, name)?, &curves, y_max)
}

fn load(common: &Common) -> Result<Dataset, backprop::Error> {
    backprop::data::load(common.dataset, common.data_dir.as_deref())
}

fn say_parallel(runs: usize, what: &str) {
    eprintln!(
        "training {runs} {what}, {} at a time…",
        backprop::machinery::parallel::threads().min(runs)
    );
}

/// The figure's path in the output folder, which is created.
fn figure(common: &Common, name: &str) -> Result<PathBuf, backprop::Error> {
    std::fs::create_dir_all(&common.out).map_err(|e| backprop::Error::io(&common.out, e))?;
    Ok(common.out.join(format!("{name}.png")))
}

fn saved(path: &Path) -> super::Outcome {
    eprintln!("saved {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The loss of each variant every 100 iterations, as the book prints them, and at the end.
fn print_curves(curves: &[LossCurve], iters: usize) {
    print!("iteration");
    for c in curves {
        print!("  {:>9}", c.name);
    }
    println!();
    for i in (0..iters).filter(|i| i % 100 == 0 || i + 1 == iters) {
        print!("{i:>9}");
        for c in curves {
            print!("  {:>9.4}", c.losses[i]);
        }
        println!();
    }
}

/// The book's figure: each loss curve smoothed (a moving mean of 11), loss from 0 to `y_max`.
fn plot_curves(path: &Path, curves: &[LossCurve], y_max: f64) -> super::Outcome {
    let chart = Chart {
        title: "mini-batch loss (mean of 11)".into(),
        labels: ("iterations".into(), "loss".into()),
        y_range: (0.0, y_max),
        series: curves
            .iter()
            .enumerate()
            .map(|(i, c)| Series {
                name: c.name.clone(),
                points: moving_average(&c.losses, 11),
                color: i,
                dashed: false,
            })
            .collect(),
    };
    line_charts(path, &[chart], 1, (800, 520))?;
    saved(path)
}

fn epoch_series(name: &str, values: &[f64], color: usize, dashed: bool) -> Series {
    Series {
        name: name.to_string(),
        points: values
            .iter()
            .enumerate()
            .map(|(e, &v)| (e as f64, v))
            .collect(),
        color,
        dashed,
    }
}
