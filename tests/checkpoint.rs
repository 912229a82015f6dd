//! Checkpoints: a run killed mid-way and resumed ends bit-identical to an uninterrupted one.

mod common;
use std::path::Path;

use std::collections::HashMap;

use backprop::io::{TensorFile, encode_tensors};
use common::{Paused, backprop, metrics, stderr, stdout, weights};

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
    // Killed at the iteration after the second checkpoint (at 500) was renamed into place.
    let mut child = Paused::start(&args);
    child.reach("iter 500");
    child.kill();
    let checkpoint = broken.path().join("checkpoint.safetensors");
    assert!(
        !broken.path().join("model.safetensors").exists(),
        "killed before the end"
    );
    // Whatever the moment of the kill, the checkpoint is complete.
    let file = TensorFile::read(&checkpoint).unwrap();
    assert!(file.metadata["trainer"].contains(r#""iter":500,"#));

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
        .filter(|n| n.starts_with(backprop::io::TEMP_PREFIX))
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

#[test]
fn a_checkpoint_is_a_model_every_command_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = RUN.to_vec();
    args.extend(["--out", dir.path().to_str().unwrap()]);
    // Stopped for good at iteration 1000, a checkpoint of 1000 iterations done behind it.
    let mut child = Paused::start(&args);
    child.reach("iter 1000");
    child.kill();
    let checkpoint = dir.path().join("checkpoint.safetensors");
    let checkpoint_arg = checkpoint.to_str().unwrap();
    assert!(!dir.path().join("model.safetensors").exists());

    // The same weights as a plain model file, without the trainer's tensors or metadata.
    let file = TensorFile::read(&checkpoint).unwrap();
    let net: Vec<(String, ndarray::ArrayViewD<'_, f64>)> = file
        .tensors
        .iter()
        .filter(|(n, _)| !n.contains('/'))
        .map(|(n, a)| (n.clone(), a.view()))
        .collect();
    assert_eq!(net.len(), 4);
    let plain = dir.path().join("weights.safetensors");
    std::fs::write(&plain, encode_tensors(&[], &net, HashMap::new())).unwrap();

    let note =
        format!("{checkpoint_arg}: a checkpoint at iteration 1000 of 3000; using its weights\n");
    let eval = backprop(&["eval", "--model", checkpoint_arg, "--json"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    assert_eq!(stderr(&eval), note);
    let reference = backprop(&["eval", "--model", plain.to_str().unwrap(), "--json"]);
    assert!(reference.status.success(), "{}", stderr(&reference));
    assert_eq!(
        stdout(&eval),
        stdout(&reference),
        "not the checkpoint's weights"
    );
    let accuracy: f64 =
        serde_json::from_str::<serde_json::Value>(&stdout(&eval)).unwrap()["accuracy"]
            .as_f64()
            .unwrap();
    assert!(accuracy > 0.85, "{accuracy}");

    let digit = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/seven.png");
    let predict = backprop(&["predict", "--model", checkpoint_arg, digit]);
    assert!(predict.status.success(), "{}", stderr(&predict));
    assert_eq!(stderr(&predict), note);
    assert!(
        stdout(&predict).starts_with(&format!("{digit}: 7 (")),
        "{}",
        stdout(&predict)
    );

    for (command, png) in [
        ("visualize-filters", "filters.png"),
        ("misclassified", "misclassified.png"),
    ] {
        let out = backprop(&[command, "--model", checkpoint_arg]);
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(&note),
            "{command}: {}",
            stderr(&out)
        );
        image::open(dir.path().join(png)).unwrap();
    }
}
