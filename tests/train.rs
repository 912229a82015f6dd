//! Training: the book's chapter-5 run, determinism, divergence, and refused settings.

mod common;
use backprop::data::{Dataset, load};
use backprop::net::NetSpec;
use backprop::optim::Sgd;
use backprop::train::{Record, TrainConfig, Trainer};
use common::{backprop, stderr, stdout};

fn mnist() -> Dataset {
    load(None, None).unwrap()
}

/// Trains `spec` with SGD on MNIST and returns the history and the final weights.
fn run(
    data: &Dataset,
    spec: &str,
    lr: f64,
    config: TrainConfig,
    seed: u64,
) -> (Vec<Record>, Vec<Vec<f32>>) {
    let net = spec.parse::<NetSpec>().unwrap().build::<f32>(0.01, seed);
    let mut trainer =
        Trainer::new(net, Sgd::new(lr), data, TrainConfig { seed, ..config }).unwrap();
    trainer.run(|_| {}).unwrap();
    let history = trainer.history().to_vec();
    let weights = trainer
        .net
        .params_mut()
        .into_iter()
        .map(|p| p.param.value.iter().copied().collect())
        .collect();
    (history, weights)
}

#[test]
fn the_books_run_reaches_97_percent_and_other_seeds_stay_close() {
    let data = mnist();
    let book = TrainConfig::book(data.train.len());
    assert_eq!(
        (book.iters, book.batch, book.eval_every),
        (10_000, 100, Some(600))
    );
    let mut finals = Vec::new();
    for seed in 0..=3 {
        let (history, _) = run(&data, "784-50-10", 0.1, book, seed);
        assert_eq!(
            history.len(),
            17,
            "evaluations at iterations 0, 600, …, 9600"
        );
        assert_eq!(history[16].iter, 9600);
        finals.push(history[16].test_acc);
    }
    assert!(finals[0] >= 0.97, "default seed: {finals:?}");
    let mean: f64 = finals[1..].iter().sum::<f64>() / 3.0;
    assert!(mean >= 0.968, "seeds 1–3: {finals:?}");
}

#[test]
fn the_same_seed_gives_bit_identical_weights_and_numbers() {
    let data = mnist();
    let config = TrainConfig {
        iters: 300,
        eval_every: Some(100),
        ..TrainConfig::book(data.train.len())
    };
    let (h1, w1) = run(&data, "784-30-10", 0.1, config, 7);
    let (h2, w2) = run(&data, "784-30-10", 0.1, config, 7);
    let (_, w3) = run(&data, "784-30-10", 0.1, config, 8);
    assert_eq!(w1, w2);
    let strip = |h: &[Record]| {
        h.iter()
            .map(|r| (r.loss, r.train_acc, r.test_acc))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&h1), strip(&h2));
    assert_ne!(w1, w3);
}

#[test]
fn deeper_nets_from_a_spec_train_too() {
    let data = mnist();
    let config = TrainConfig {
        iters: 1801,
        ..TrainConfig::book(data.train.len())
    };
    let (history, _) = run(&data, "784-100-100-10", 0.1, config, 0);
    assert!(history.last().unwrap().test_acc > 0.92, "{history:?}");
}

#[test]
fn an_absurd_iteration_count_trains_without_reserving_memory_for_it() {
    // A loss per iteration is kept; room for 2⁴⁰ of them (8 TB) must not be asked for up front.
    let data = mnist().subset(1_000, 100);
    let config = TrainConfig {
        iters: 1 << 40,
        ..TrainConfig::book(data.train.len())
    };
    let net = "784-50-10"
        .parse::<NetSpec>()
        .unwrap()
        .build::<f32>(0.01, 0);
    let mut trainer = Trainer::new(net, Sgd::new(0.1), &data, config).unwrap();
    trainer.run_until(20, |_| {}).unwrap();
    assert_eq!(trainer.losses().len(), 20);
    assert!(trainer.losses()[19] < trainer.losses()[0]);
}

#[test]
fn divergence_stops_with_the_iteration_named() {
    let out = backprop(&[
        "train",
        "--lr",
        "1e35",
        "--weight-init-std",
        "1",
        "--iters",
        "50",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("error: training diverged at iteration "),
        "{err}"
    );
    assert!(err.contains("try a smaller learning rate (--lr)"), "{err}");
}

#[test]
fn a_net_that_does_not_fit_the_data_is_refused_before_training() {
    let out = backprop(&["train", "--net", "100-10", "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "error: the net takes 100 inputs but mnist images have 28×28 = 784 pixels; use a net spec starting with 784"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn bad_flags_are_refused_in_one_line_with_exit_code_2() {
    for (args, expected) in [
        (
            &["train", "--net", "784-x-10"][..],
            "\"x\" is not a layer size",
        ),
        (&["train", "--lr", "-1"], "-1 is not a positive number"),
        (&["train", "--batch", "0"], "0 is not at least 1"),
        (&["train", "--shards", "0"], "0 is not at least 1"),
        (
            &["gradcheck", "--net", "784"],
            "it needs at least an input and an output size",
        ),
        (
            &["train", "--dataset", "cifar"],
            "unknown dataset \"cifar\"",
        ),
    ] {
        let out = backprop(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn the_thread_count_does_not_change_a_single_bit() {
    // 100×784·784×300 (23.5 M multiply-adds) is split across threads by the cost model on
    // any machine with two cores and a split cost under a millisecond; the second net's
    // batches are cut into 3 shards of 34, 33 and 33 examples, as many as there are threads
    // or more, with batch norm and dropout, which depend on where a shard's examples are.
    for net in [
        &["--net", "784-300-10"][..],
        &[
            "--net",
            "784-40-20-10",
            "--batch-norm",
            "--dropout",
            "0.2",
            "--shards",
            "3",
        ],
    ] {
        let model = |threads: &str| {
            let dir = tempfile::tempdir().unwrap();
            let mut args = vec!["train", "--iters", "60", "--eval-every", "30", "--quiet"];
            args.extend(net);
            args.extend(["--threads", threads, "--out", dir.path().to_str().unwrap()]);
            let out = backprop(&args);
            assert!(out.status.success(), "{}", stderr(&out));
            (
                std::fs::read(dir.path().join("model.safetensors")).unwrap(),
                stdout(&out),
            )
        };
        let (one, printed_one) = model("1");
        for threads in ["2", "3"] {
            let (other, printed) = model(threads);
            assert_eq!(printed_one, printed, "{net:?}");
            assert!(
                one == other,
                "{net:?}: model files differ between --threads 1 and --threads {threads}"
            );
        }
    }
}

#[test]
fn the_train_line_names_the_shards_and_too_many_are_refused() {
    for (flags, expected) in [
        (&[][..], "batch 100,"),
        (&["--shards", "2"], "batch 100 in 2 shards,"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "train",
            "--iters",
            "2",
            "--out",
            dir.path().to_str().unwrap(),
        ];
        args.extend(flags);
        let out = backprop(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    }
    let out = backprop(&["train", "--iters", "2", "--batch", "10", "--shards", "11"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("use --shards 10 or fewer"), "{err}");
}

/// A cell of the benchmark grid reports, in the grid's JSON fields, a positive step time and
/// the FLOPs of its products: for 784-50-10 at batch 100, forward 784·50 + 50·10 multiply-adds
/// per example, backward twice that less the first layer's ∂L/∂x (784·50).
#[test]
fn a_grid_cell_reports_its_step_time_and_flops() {
    let out = backprop(&[
        "bench",
        "--cell",
        "mlp/784-50-10/relu/sgd/b100",
        "--reps",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (rep, r) in lines.iter().enumerate() {
        assert_eq!(r["impl"], "backprop");
        assert_eq!(r["cell"], "mlp/784-50-10/relu/sgd/b100");
        assert_eq!(r["rep"], rep);
        assert!(r["ms_per_step"].as_f64().unwrap() > 0.0);
        let forward = 784.0 * 50.0 + 50.0 * 10.0;
        assert_eq!(
            r["flops_per_step"],
            2.0 * (3.0 * forward - 784.0 * 50.0) * 100.0
        );
        assert!(r["loss_last"].as_f64().unwrap() < r["loss_first"].as_f64().unwrap());
    }
    assert_ne!(
        lines[0]["loss_first"], lines[1]["loss_first"],
        "each rep its own seed"
    );
}
