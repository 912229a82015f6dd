//! `backprop bench`: the peers' benchmark workloads, timed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::workloads::Workload;
use backprop::data::Known;

/// Flags of `backprop bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// W1 (the book's run with evaluations), W2 (its training steps), W3 (784-1000-1000-10) or W4 (SimpleConvNet).
    workload: Workload,
    /// Repetitions, with seeds 0, 1, 2, …
    #[arg(long, default_value_t = 3, value_parser = super::at_least_one)]
    reps: usize,
    /// Threads for the kernels (default: all cores).
    #[arg(long, value_parser = super::at_least_one)]
    threads: Option<usize>,
    /// Data set (default fashion-mnist, as the peers).
    #[arg(long)]
    dataset: Option<Known>,
    /// A folder with the four IDX files, as the peers' --data-dir.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// One JSON object per repetition, in the peers' fields.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> super::Outcome {
    if let Some(threads) = args.threads {
        backprop::machinery::parallel::set_threads(threads);
    }
    let started = Instant::now();
    let known = args
        .dataset
        .or(args.data_dir.is_none().then_some(Known::FashionMnist));
    let data = backprop::data::load(known, args.data_dir.as_deref())?;
    let load_s = started.elapsed().as_secs_f64();
    for rep in 0..args.reps as u64 {
        let r = super::workloads::run(args.workload, &data, rep, load_s)?;
        if args.json {
            println!("{}", super::json(&r));
        } else {
            let accuracy = r
                .final_test_acc
                .map(|a| format!(", final test accuracy {a:.4}"))
                .unwrap_or_default();
            println!(
                "{} rep {}: {:.2} s ({:.3} ms/iter, evaluations {:.2} s), loss {:.3} → {:.3}{accuracy}, \
                 {} threads, peak memory {:.0} MB, data load {:.2} s",
                r.workload,
                r.rep,
                r.wall_s,
                r.ms_per_iter,
                r.eval_s,
                r.loss_first,
                r.loss_last10,
                r.threads,
                r.peak_rss_mb,
                r.load_s
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
