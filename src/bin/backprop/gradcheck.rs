//! `backprop gradcheck`: the book's gradient_check.py (§5.7.3).

use std::process::ExitCode;

use backprop::data::{Batch, Dataset, Known};
use backprop::functions::Targets;
use backprop::gradient::{GradCheck, check_net_side_by_side};
use backprop::net::NetSpec;
use ndarray::ArrayD;

/// Flags of `backprop gradcheck`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub setup: Setup,
    /// Fail (exit code 1) when a parameter's mean |backprop − numerical| exceeds this.
    #[arg(long, default_value_t = 1e-7, value_parser = super::positive_f64, allow_negative_numbers = true)]
    tol: f64,
    /// Print `{"W1": {"mean_abs_diff": …, "max_rel_err": …}, …}` instead of text.
    #[arg(long)]
    json: bool,
    /// Data set: mnist or fashion-mnist.
    #[arg(long)]
    dataset: Option<Known>,
    /// A folder with the four IDX files (train/t10k images/labels; .gz, .xz or not compressed).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

/// What is checked: a fresh net in `f64` (central differences in `f32` are too coarse to
/// compare) on the first training images. The lab's gradient check takes the same flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Setup {
    /// The net: layer sizes from input to output (Affine/ReLU blocks).
    #[arg(long, default_value = "784-50-10")]
    pub net: NetSpec,
    /// Seed of the weight initialisation (W = 0.01·randn).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Standard deviation of the initial weights.
    #[arg(long, default_value_t = 0.01, value_parser = super::positive_f64, allow_negative_numbers = true)]
    weight_init_std: f64,
    /// How many training images, from the first.
    #[arg(long, default_value_t = 3, value_parser = super::at_least_one)]
    pub images: usize,
}

/// The check, with the two gradients of each parameter `(name, backprop, numerical)`.
pub type Checked = (GradCheck, Vec<(String, ArrayD<f64>, ArrayD<f64>)>);

/// Runs the check `setup` describes on `data`.
///
/// # Errors
/// When the net does not fit the data set.
pub fn check(setup: &Setup, data: &Dataset) -> Result<Checked, backprop::Error> {
    let mut net = setup.net.build::<f64>(setup.weight_init_std, setup.seed);
    backprop::train::check_fits(&mut net, data)?;
    let n = setup.images.min(data.train.len());
    let mut batch = Batch::<f64>::default();
    batch.gather(&data.train, &(0..n).collect::<Vec<_>>());
    let t = Targets::OneHot(backprop::data::one_hot(&batch.t, data.classes()));
    let (report, sides) = check_net_side_by_side(&mut net, batch.x.view().into_dyn(), &t);
    let sides = report
        .entries
        .iter()
        .zip(sides)
        .map(|((name, _), (backprop, numerical))| (name.clone(), backprop, numerical))
        .collect();
    Ok((report, sides))
}

pub fn run(args: &Args) -> super::Outcome {
    let data = backprop::data::load(args.dataset, args.data_dir.as_deref())?;
    let (report, _) = check(&args.setup, &data)?;
    let failures = report.failures(args.tol);
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = report
            .entries
            .iter()
            .map(|(name, c)| (name.clone(), serde_json::json!(c)))
            .collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        for (name, c) in &report.entries {
            println!("{name}: {:.3e}", c.mean_abs_diff);
        }
        for kink in &report.kinks {
            println!(
                "note: {} of the {} inputs of {} crossed ReLU's kink at 0 when a parameter before it ({}) moved by ±h = 1e-4; \
                 there the numerical gradient mixes two slopes, so those parameters differ from backprop's exact gradient.",
                kink.units,
                kink.of,
                kink.layer,
                kink.upstream.join(", ")
            );
        }
        if failures.is_empty() {
            println!(
                "ok: every mean |backprop − numerical| is below {:e} (--tol)",
                args.tol
            );
        } else if report.failures_explained_by_kinks(args.tol) {
            println!(
                "FAILED: {} above {:e} (--tol), all explained by the kink crossings above: \
                 the numerical gradient is off there, not backprop; another --seed avoids them",
                failures.join(", "),
                args.tol
            );
        } else {
            println!(
                "FAILED: {} above {:e} (--tol)",
                failures.join(", "),
                args.tol
            );
        }
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
