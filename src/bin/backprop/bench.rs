//! `backprop bench`: the peers' benchmark workloads and the cells of the benchmark grid
//! (`bench/grid.json`), timed; the machine's GEMM rate and the cost model's measurements.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::workloads::Workload;
use backprop::data::Known;

/// Flags of `backprop bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// W1 (the book's run with evaluations), W2 (its training steps), W3 (784-1000-1000-10) or W4 (SimpleConvNet).
    #[arg(required_unless_present_any = ["cell", "gemm_rate", "costs"])]
    workload: Option<Workload>,
    /// Run this cell of the benchmark grid (--grid) instead of a workload, on MNIST.
    #[arg(long, conflicts_with = "workload")]
    cell: Option<String>,
    /// The grid file of --cell.
    #[arg(long, default_value = "bench/grid.json")]
    grid: PathBuf,
    /// Print the GFLOP/s of a 1024×1024·1024×1024 f32 product on all threads, the grid's floor.
    #[arg(long, conflicts_with_all = ["workload", "cell"])]
    gemm_rate: bool,
    /// Print the cost model's measurements on this machine (what deciding to split work rests on).
    #[arg(long, conflicts_with_all = ["workload", "cell"])]
    costs: bool,
    /// Repetitions, with seeds 0, 1, 2, …
    #[arg(long, default_value_t = 3, value_parser = super::at_least_one)]
    reps: usize,
    /// Threads for the kernels (default: all cores).
    #[arg(long, value_parser = super::at_least_one)]
    threads: Option<usize>,
    /// Shards per mini-batch, as `train --shards` (default: from the batch size and the net).
    #[arg(long, value_name = "K", value_parser = super::at_least_one)]
    shards: Option<usize>,
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
    if args.gemm_rate || args.costs {
        return Ok(machine(args));
    }
    let cell = args
        .cell
        .as_deref()
        .map(|id| super::grid::cell(&args.grid, id))
        .transpose()?;
    let started = Instant::now();
    // The peers' workloads run on Fashion-MNIST, the grid's cells on MNIST.
    let default = match cell {
        Some(_) => Known::Mnist,
        None => Known::FashionMnist,
    };
    let known = args.dataset.or(args.data_dir.is_none().then_some(default));
    let data = backprop::data::load(known, args.data_dir.as_deref())?;
    let load_s = started.elapsed().as_secs_f64();
    let workload = match (args.workload, cell) {
        (Some(workload), _) => workload,
        (None, Some(cell)) => {
            for rep in 0..args.reps as u64 {
                println!("{}", super::json(&cell.run(&data, rep, args.shards)?));
            }
            return Ok(ExitCode::SUCCESS);
        }
        (None, None) => unreachable!("clap requires a workload, a cell or a measurement"),
    };
    for rep in 0..args.reps as u64 {
        let r = super::workloads::run(workload, &data, rep, load_s, args.shards)?;
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

/// `--gemm-rate` and `--costs`.
fn machine(args: &Args) -> ExitCode {
    let threads = backprop::machinery::parallel::threads();
    if args.gemm_rate {
        let gflops = super::grid::gemm_rate();
        if args.json {
            println!(
                "{}",
                serde_json::json!({"gflops": gflops, "shape": "1024x1024x1024 f32", "threads": threads})
            );
        } else {
            println!("GEMM 1024×1024·1024×1024 f32 on {threads} threads: {gflops:.1} GFLOP/s");
        }
    }
    if args.costs {
        let r = backprop::machinery::cost::rates();
        if args.json {
            println!(
                "{}",
                serde_json::json!({"macs_per_s": r.macs_per_s, "bytes_per_s": r.bytes_per_s, "split_s": r.split_s, "awake_split_s": r.awake_split_s, "threads": threads})
            );
        } else {
            println!(
                "one thread: {:.1} G multiply-adds/s (products), {:.1} GB/s (element-wise passes); \
                 handing work to another thread: {:.1} µs asleep, {:.1} µs awake; {threads} threads",
                r.macs_per_s / 1e9,
                r.bytes_per_s / 1e9,
                r.split_s * 1e6,
                r.awake_split_s * 1e6
            );
        }
    }
    ExitCode::SUCCESS
}
