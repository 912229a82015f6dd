//! Faults that must lose nothing: a training run killed (SIGKILL) at moments all through it
//! and in the middle of its writes leaves only complete files and resumes to the same bits as
//! a run never killed; a write that fails (file too large, read-only folder) leaves the
//! previous files as they were.
//!
//! The kills land at pause points the run reports (`backprop::pause_points`): an iteration,
//! an evaluation, a write begun, half written, synced or renamed. They are chosen from that
//! sequence of moments, which is the same on any machine at any speed, never by a delay.

mod common;
use std::path::Path;
use std::process::Command;

use backprop::io::TensorFile;
use common::{Paused, backprop, metrics, stderr, weights};
use rand::{Rng, SeedableRng};

/// A short run that checkpoints often, so that many kills land in a write.
const RUN: [&str; 10] = [
    "train",
    "--iters",
    "3000",
    "--eval-every",
    "1000",
    "--checkpoint-every",
    "25",
    "--net",
    "784-40-10",
    "--quiet",
];

fn run_args(out: &str) -> Vec<&str> {
    let mut args = RUN.to_vec();
    args.extend(["--out", out]);
    args
}

/// Starts the run into `dir`, paused: resumed when a checkpoint is there, else from the
/// beginning.
fn start_or_resume(dir: &Path) -> Paused {
    let out = dir.to_str().unwrap();
    if dir.join("checkpoint.safetensors").exists() {
        Paused::start(&["train", "--resume", out, "--quiet"])
    } else {
        Paused::start(&run_args(out))
    }
}

/// Whether a temporary file of an atomic write is in `dir` right now.
fn writing(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".backprop-tmp-")
        })
    })
}

/// Every result file in `dir` is whole: the safetensors files parse completely (their
/// header covers exactly the bytes there), metrics.csv has whole rows, curves.png decodes.
#[track_caller]
fn assert_complete(dir: &Path) {
    for name in ["checkpoint.safetensors", "model.safetensors"] {
        let path = dir.join(name);
        if path.exists() {
            let file = TensorFile::read(&path).unwrap_or_else(|e| panic!("torn {name}: {e}"));
            assert!(file.tensors.iter().any(|(n, _)| n == "W1"), "{name}");
        }
    }
    let metrics = dir.join("metrics.csv");
    if metrics.exists() {
        let text = std::fs::read_to_string(&metrics).unwrap();
        assert!(
            text.starts_with("epoch,iter,") && text.ends_with('\n'),
            "{text}"
        );
        assert!(text.lines().all(|l| l.split(',').count() == 6), "{text}");
    }
    let curves = dir.join("curves.png");
    if curves.exists() {
        image::open(&curves).unwrap_or_else(|e| panic!("torn curves.png: {e}"));
    }
}

/// Where a kill lands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kill {
    /// At the n-th pause point of the process (0: before the first, while it loads).
    Anywhere(usize),
    /// In the n-th write of a checkpoint, at the stage named (`temporary`, `half`, `synced`).
    InCheckpoint(usize, &'static str),
    /// Between the renames of the final results (metrics.csv renamed, the others not yet).
    BetweenFinalRenames,
}

#[test]
fn kills_all_through_a_run_and_mid_write_lose_nothing() {
    let whole = tempfile::tempdir().unwrap();
    let out = backprop(&run_args(whole.path().to_str().unwrap()));
    assert!(out.status.success(), "{}", stderr(&out));

    // The kills: at random points anywhere, in checkpoint writes at each stage, and between
    // the renames of the final set. A process killed anywhere has run at most 300 points
    // (< 300 iterations), one killed in a checkpoint at most 75 iterations, so 11 kills
    // undo far less than the 3,000 iterations: the run cannot end before the last kill.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let stages = ["temporary", "half", "synced"];
    let mut kills: Vec<Kill> = (0..10)
        .map(|k| match k % 2 {
            0 if k == 0 => Kill::Anywhere(0),
            0 => Kill::Anywhere(rng.random_range(1..300)),
            _ => Kill::InCheckpoint(rng.random_range(1..=3), stages[k / 2 % 3]),
        })
        .collect();
    kills.push(Kill::BetweenFinalRenames);

    let broken = tempfile::tempdir().unwrap();
    let dir = broken.path();
    for kill in kills {
        let mut run = start_or_resume(dir);
        let reached = match kill {
            Kill::Anywhere(0) => Some(String::new()),
            Kill::Anywhere(n) => (0..n).map(|_| run.next_moment()).last().flatten(),
            Kill::InCheckpoint(n, stage) => {
                let moment = format!("{stage} checkpoint.safetensors");
                (0..n).map(|_| run.until(|m| m == moment)).last().flatten()
            }
            Kill::BetweenFinalRenames => run.until(|m| m == "renamed metrics.csv"),
        };
        assert!(
            reached.is_some(),
            "the run ended before {kill:?}: {:?}",
            run.said
        );
        if matches!(kill, Kill::InCheckpoint(..) | Kill::BetweenFinalRenames) {
            assert!(writing(dir), "no write under way at {kill:?}");
        }
        run.kill();
        assert_complete(dir);
        if kill == Kill::BetweenFinalRenames {
            assert!(dir.join("metrics.csv").exists() && !dir.join("model.safetensors").exists());
        }
    }
    let mut last = start_or_resume(dir);
    assert!(last.next_moment().is_some());
    let status = last.finish();
    assert!(status.success(), "{:?}", last.said);
    assert_complete(dir);
    assert_eq!(
        weights(&whole.path().join("model.safetensors")),
        weights(&dir.join("model.safetensors"))
    );
    assert_eq!(metrics(whole.path()), metrics(dir));
    assert!(!writing(dir), "temporaries left behind");
}

#[test]
fn a_kill_while_saving_leaves_the_previous_or_the_new_results_whole() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path();
    let out = dir.to_str().unwrap();
    let run = |seed| short_run(out, seed, &[]);
    let first = backprop(&run("1"));
    assert!(first.status.success(), "{}", stderr(&first));
    let mut previous = weights(&dir.join("model.safetensors"));
    for (attempt, stage) in ["temporary", "half", "synced", "renamed"]
        .iter()
        .enumerate()
    {
        let seed = ["2", "3"][attempt % 2];
        let mut child = Paused::start(&run(seed));
        let moment = format!("{stage} model.safetensors");
        child.reach(&moment);
        child.kill();
        assert_complete(dir);
        let now = weights(&dir.join("model.safetensors"));
        if *stage == "renamed" {
            assert_ne!(now, previous, "the renamed model is not the new one");
            previous = now;
        } else {
            assert_eq!(now, previous, "a kill at {moment} changed the model");
            assert!(writing(dir), "no temporary at {moment}");
        }
    }
}

/// A `train` run of 200 iterations into `out`, with `seed` and `extra` flags.
fn short_run<'a>(out: &'a str, seed: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--iters",
        "200",
        "--eval-every",
        "100",
        "--seed",
        seed,
        "--quiet",
        "--out",
        out,
    ];
    args.extend(extra);
    args
}

/// Runs `args` under a shell that limits file sizes to `kib` KiB, with the SIGXFSZ that
/// would kill the process ignored, so writes fail as on a full disk (`File too large`).
fn with_file_size_limit(kib: u64, args: &[&str]) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
            kib * 2 // 512-byte blocks
        ))
        .arg(env!("CARGO_BIN_EXE_backprop"))
        .args(args)
        .output()
        .unwrap()
}

/// The last line on stderr: the error, after the line naming the run.
fn last_line(out: &std::process::Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_string()
}

/// The bytes of every file in `dir`, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_failed_write_reports_it_and_keeps_the_previous_files() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path();
    let out = dir.to_str().unwrap();
    let run = |seed, extra| short_run(out, seed, extra);
    let first = backprop(&run("1", &[]));
    assert!(first.status.success(), "{}", stderr(&first));
    let before = snapshot(dir);

    // The model (159 KB) does not fit a 100 KiB file-size limit: the write fails at the end.
    let failed = with_file_size_limit(100, &run("2", &[]));
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        last_line(&failed),
        format!("error: {out}/model.safetensors: File too large (os error 27)")
    );
    assert_eq!(snapshot(dir), before, "the previous results changed");

    // A checkpoint that cannot be written stops the run at the first one, changing nothing.
    let failed = with_file_size_limit(100, &run("2", &["--checkpoint-every", "50"]));
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        last_line(&failed),
        format!("error: {out}/checkpoint.safetensors: File too large (os error 27)")
    );
    assert_eq!(snapshot(dir), before, "the previous results changed");
}

#[test]
fn a_read_only_folder_is_refused_before_training() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path();
    let out = dir.to_str().unwrap();
    let run = |seed| short_run(out, seed, &[]);
    let first = backprop(&run("1"));
    assert!(first.status.success(), "{}", stderr(&first));
    let before = snapshot(dir);

    // Root ignores permission bits; the immutable attribute stops it too.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let (lock, unlock, reason) = if root {
        (
            vec!["chattr", "+i", out],
            vec!["chattr", "-i", out],
            "Operation not permitted (os error 1)",
        )
    } else {
        (
            vec!["chmod", "555", out],
            vec!["chmod", "755", out],
            "Permission denied (os error 13)",
        )
    };
    let status = Command::new(lock[0]).args(&lock[1..]).status().unwrap();
    assert!(status.success(), "could not make {out} read-only");
    let failed = backprop(&run("2"));
    Command::new(unlock[0]).args(&unlock[1..]).status().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(stderr(&failed), format!("error: {out}: {reason}\n"));
    assert_eq!(snapshot(dir), before, "the previous results changed");
}
