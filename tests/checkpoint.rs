//! Checkpoints: a run killed mid-way and resumed ends bit-identical to an uninterrupted one.

mod common;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backprop::io::TensorFile;
use common::{backprop, metrics, stderr, weights};

const RUN: [&str; 8] = [
    "train",
    "--iters",
    "3000",
    "--eval-every",
    "500",
    "--checkpoint-every",
    "250",
    "--quiet",
];

fn train_into(dir: &Path) -> std::process::Output {
    let mut args = RUN.to_vec();
    args.extend(["--out", dir.to_str().unwrap()]);
    backprop(&args)
}

#[test]
fn a_killed_run_resumes_to_the_same_bits() {
    let whole = tempfile::tempdir().unwrap();
    let out = train_into(whole.path());
    assert!(out.status.success(), "{}", stderr(&out));

    let broken = tempfile::tempdir().unwrap();
    let mut args = RUN.to_vec();
    args.extend(["--out", broken.path().to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_backprop"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = broken.path().join("checkpoint.safetensors");
    let started = Instant::now();
    while !checkpoint.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !broken.path().join("model.safetensors").exists(),
        "killed before the end"
    );
    // Whatever the moment of the kill, the checkpoint is complete.
    let file = TensorFile::read(&checkpoint).unwrap();
    assert!(file.metadata.contains_key("trainer"));

    let out = backprop(&[
        "train",
        "--resume",
        broken.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        weights(&whole.path().join("model.safetensors")),
        weights(&broken.path().join("model.safetensors"))
    );
    assert_eq!(metrics(whole.path()), metrics(broken.path()));
    let leftovers: Vec<_> = std::fs::read_dir(broken.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn resume_refuses_a_folder_without_a_checkpoint_and_conflicting_flags() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let out = backprop(&["train", "--resume", dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("checkpoint.safetensors: No such file or directory"),
        "{}",
        stderr(&out)
    );
    let out = backprop(&["train", "--resume", dir, "--lr", "0.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'--resume <DIR>' cannot be used with '--lr <LR>'"),
        "{}",
        stderr(&out)
    );
}
