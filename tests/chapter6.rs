//! Chapter 6 end to end: the optimizers, batch norm, dropout and weight decay in training runs,
//! their checkpoints, their model files, and the experiment commands.

mod common;
use std::path::Path;

use backprop::data::{Dataset, Sampling};
use backprop::io::{ModelInfo, PIXEL_NORMALISATION, TensorFile};
use backprop::net::{Architecture, Init, MultiLayerNet};
use backprop::optim::{OptimizerKind, OptimizerSpec};
use backprop::train::{TrainConfig, Trainer};
use common::{backprop, net_bits, stderr, stdout};

fn mnist() -> Dataset {
    backprop::data::load(None, None)
        .unwrap()
        .subset(2_000, 1_000)
}

fn net() -> MultiLayerNet {
    MultiLayerNet {
        init: Init::He,
        batch_norm: true,
        dropout: Some(0.2),
        weight_decay: 0.01,
        ..MultiLayerNet::new("784-40-30-10".parse().unwrap())
    }
}

fn info(data: &Dataset) -> ModelInfo {
    ModelInfo {
        net: Architecture::Mlp(net()),
        normalisation: PIXEL_NORMALISATION.into(),
        input_shape: Some((28, 28)),
        class_names: data.class_names.clone(),
        dataset: Some(data.name.clone()),
        test_accuracy: None,
        checkpoint: None,
        assumed: Vec::new(),
    }
}

#[test]
fn every_optimizer_resumes_bit_identically_with_batch_norm_and_dropout() {
    let data = mnist();
    let config = TrainConfig {
        iters: 60,
        batch: 50,
        eval_every: Some(20),
        sampling: Sampling::ShuffledEpochs,
        seed: 3,
        shards: 1,
    };
    for kind in OptimizerKind::ALL {
        let spec = OptimizerSpec::new(kind);
        let mut whole = Trainer::new(net().build(5), spec.build(), &data, config).unwrap();
        whole.run(|_| {}).unwrap();

        let mut first = Trainer::new(net().build(5), spec.build(), &data, config).unwrap();
        first.run_until(30, |_| {}).unwrap();
        let bytes = first.checkpoint(&info(&data), None);
        let path = Path::new("checkpoint.safetensors");
        let file = TensorFile::parse(&bytes, path).unwrap();
        let mut resumed = Trainer::resume(file, path, spec.build(), &data).unwrap();
        resumed.run(|_| {}).unwrap();

        assert_eq!(
            net_bits(&mut whole.net),
            net_bits(&mut resumed.net),
            "{kind}"
        );
        let numbers = |t: &Trainer<'_, f32, _>| -> Vec<(usize, u64, u64, u64)> {
            t.history()
                .iter()
                .map(|r| {
                    (
                        r.iter,
                        r.loss.to_bits(),
                        r.train_acc.to_bits(),
                        r.test_acc.to_bits(),
                    )
                })
                .collect()
        };
        assert_eq!(numbers(&whole), numbers(&resumed), "{kind}");
        assert!(
            whole.losses()[59] < whole.losses()[0],
            "{kind} did not learn"
        );
    }
}

#[test]
fn a_checkpoint_of_one_optimizer_is_refused_by_another() {
    let data = mnist();
    let config = TrainConfig {
        iters: 5,
        batch: 50,
        eval_every: None,
        sampling: Sampling::WithReplacement,
        seed: 0,
        shards: 1,
    };
    let adam = OptimizerSpec::new(OptimizerKind::Adam);
    let mut trainer = Trainer::new(net().build(1), adam.build(), &data, config).unwrap();
    trainer.run_until(2, |_| {}).unwrap();
    let bytes = trainer.checkpoint(&info(&data), None);
    let path = Path::new("c.safetensors");
    let momentum = OptimizerSpec::new(OptimizerKind::Momentum).build::<f32>();
    let err = Trainer::resume(
        TensorFile::parse(&bytes, path).unwrap(),
        path,
        momentum,
        &data,
    )
    .err()
    .expect("refused");
    assert!(
        err.to_string()
            .contains("optimizer state \"m/W1\" does not belong to this optimizer"),
        "{err}"
    );
}

#[test]
fn train_with_chapter_6_flags_saves_a_model_that_evaluates_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let run = backprop(&[
        "train",
        "--net",
        "784-100-100-10",
        "--optimizer",
        "adam",
        "--init",
        "he",
        "--batch-norm",
        "--dropout",
        "0.1",
        "--weight-decay",
        "0.0001",
        "--iters",
        "601",
        "--eval-every",
        "300",
        "--quiet",
        "--out",
        out,
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run)
            .contains("784-100-100-10 relu, he init, batch norm, dropout 0.1, weight decay 0.0001"),
        "{}",
        stderr(&run)
    );
    assert!(stderr(&run).contains("Adam lr 0.001 β₁ 0.9 β₂ 0.999"));
    // The last line: epoch 2 at iteration 600, test accuracy after 600 Adam steps.
    let last = stdout(&run).lines().last().unwrap().to_string();
    let test_acc: f64 = last.rsplit(", ").next().unwrap().trim().parse().unwrap();
    assert!(test_acc > 0.95, "{last}");

    let model = dir.path().join("model.safetensors");
    let file = TensorFile::read(&model).unwrap();
    for name in ["gamma1", "beta2", "running_mean1", "running_var2", "W3"] {
        assert!(
            file.tensors.iter().any(|(n, _)| n == name),
            "{name} missing"
        );
    }
    assert_eq!(file.metadata["batch_norm"], "true");
    assert_eq!(file.metadata["dropout"], "0.1");
    // Inference with the saved running statistics gives the accuracy the run printed.
    let eval = backprop(&["eval", "--model", model.to_str().unwrap(), "--json"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let json: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let accuracy = json["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - test_acc).abs() < 1e-4,
        "{accuracy} vs {test_acc}"
    );
}

#[test]
fn bad_chapter_6_flags_are_refused_in_one_line() {
    for (args, expected) in [
        (
            vec!["train", "--optimizer", "adamm"],
            "unknown optimizer \"adamm\": expected one of sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw",
        ),
        (vec!["train", "--dropout", "1"], "1 is not in [0, 1)"),
        (
            vec!["train", "--weight-decay", "-1"],
            "-1 is not zero or positive",
        ),
        (
            vec!["train", "--activation", "tanh"],
            "unknown activation \"tanh\"",
        ),
        (
            vec!["train", "--init", "0"],
            "expected a positive standard deviation",
        ),
        (vec!["train", "--beta2", "1.5"], "1.5 is not in [0, 1)"),
    ] {
        let out = backprop(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// Rows of a printed table whose first column is a number, as columns of numbers.
fn table(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .filter_map(|l| {
            let cols: Vec<f64> = l
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            (!cols.is_empty() && l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
                .then_some(cols)
        })
        .collect()
}

#[test]
fn optimizer_compare_shows_the_adaptive_optimizers_ahead_of_sgd() {
    let dir = tempfile::tempdir().unwrap();
    let out = backprop(&[
        "experiment",
        "optimizer-compare",
        "--iters",
        "300",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = table(&stdout(&out));
    assert_eq!(rows.len(), 4, "iterations 0, 100, 200, 299");
    // Columns: iteration, SGD, Momentum, AdaGrad, Adam; the same start for all.
    assert!(rows[0][1..].iter().all(|&l| l == rows[0][1]));
    let last = &rows[3];
    for (name, loss) in ["Momentum", "AdaGrad", "Adam"].iter().zip(&last[2..]) {
        assert!(*loss < 0.6 * last[1], "{name} {loss} vs SGD {}", last[1]);
    }
    assert!(dir.path().join("optimizer-compare.png").exists());
}

#[test]
fn batch_norm_learns_where_the_plain_net_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let out = backprop(&[
        "experiment",
        "batch-norm",
        "--scales",
        "5",
        "--epochs",
        "10",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // Scales 1, 0.1, 0.01, 0.001, 0.0001: at 0.01 and below the plain net stays near chance
    // (≈ 0.12) while batch norm learns.
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("e-")).collect();
    assert_eq!(rows.len(), 4, "{text}");
    for row in &rows[1..3] {
        let cols: Vec<f64> = row
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect();
        assert!(cols[1] < 0.2 && cols[2] > 0.5, "{row}");
    }
}

#[test]
fn hyperparameter_search_is_ranked_and_the_same_on_one_or_two_cores() {
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: &str| {
        let out = backprop(&[
            "experiment",
            "hyperparameter-search",
            "--trials",
            "6",
            "--epochs",
            "4",
            "--quiet",
            "--threads",
            threads,
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let one = run("1");
    assert_eq!(one, run("2"));
    let accs: Vec<f64> = one
        .lines()
        .filter_map(|l| l.split("val acc:").nth(1))
        .map(|r| r.split(')').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(accs.len(), 6, "{one}");
    assert!(accs.windows(2).all(|w| w[0] >= w[1]), "{one}");
    assert!(dir.path().join("hyperparameter-search.png").exists());
}
