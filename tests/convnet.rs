//! Chapters 7–8 end to end: convolutional nets trained, saved, evaluated and looked at.

mod common;
use std::path::Path;

use backprop::data::{Dataset, Sampling};
use backprop::io::{ModelInfo, PIXEL_NORMALISATION, save_model};
use backprop::net::{Architecture, DeepConvNet, SimpleConvNet};
use backprop::optim::{OptimizerKind, OptimizerSpec};
use backprop::train::{TrainConfig, Trainer, evaluate};
use common::{backprop, net_bits, stderr, stdout};

fn mnist(train: usize, test: usize) -> Dataset {
    backprop::data::load(None, None)
        .unwrap()
        .subset(train, test)
}

/// Trains `arch` on 3,000 MNIST images with Adam and saves it into `dir`.
fn train_small(arch: &Architecture, iters: usize, dir: &Path) -> f64 {
    let data = mnist(3_000, 1_000);
    let config = TrainConfig {
        iters,
        batch: 50,
        eval_every: None,
        sampling: Sampling::WithReplacement,
        seed: 1,
        shards: 1,
    };
    let adam = OptimizerSpec::new(OptimizerKind::Adam);
    let mut trainer = Trainer::new(arch.build(1).unwrap(), adam.build(), &data, config).unwrap();
    trainer.run(|_| {}).unwrap();
    let info = ModelInfo {
        net: arch.clone(),
        normalisation: PIXEL_NORMALISATION.into(),
        input_shape: Some((28, 28)),
        class_names: data.class_names.clone(),
        dataset: Some("mnist".into()),
        test_accuracy: None,
        checkpoint: None,
        assumed: Vec::new(),
    };
    save_model(&dir.join("model.safetensors"), &mut trainer.net, &info).unwrap();
    evaluate(&mut trainer.net, &data.test, 10).accuracy
}

#[test]
fn simple_conv_net_learns_and_its_file_evaluates_and_shows_its_filters() {
    let dir = tempfile::tempdir().unwrap();
    let arch = Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10));
    let accuracy = train_small(&arch, 300, dir.path());
    assert!(accuracy > 0.9, "{accuracy}");

    let model = dir.path().join("model.safetensors");
    let model = model.to_str().unwrap();
    let eval = backprop(&["eval", "--model", model, "--json"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let json: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    // The whole test set now, not the 1,000 of training: close to it.
    assert!(json["accuracy"].as_f64().unwrap() > 0.88, "{json}");

    let out = backprop(&["visualize-filters", "--model", model]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("30 first-layer filters of"),
        "{}",
        stdout(&out)
    );
    let png = image::open(dir.path().join("filters.png")).unwrap();
    assert!(png.width() > 300 && png.height() > 200);

    let out = backprop(&["misclassified", "--model", model, "--count", "7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let listed: Vec<&str> = text.lines().filter(|l| l.contains("predicted")).collect();
    assert_eq!(listed.len(), 7, "{text}");
    for line in listed {
        // "  image   195: true 3, predicted 8": never a correct prediction.
        let (t, p) = line
            .split_once(": true ")
            .unwrap()
            .1
            .split_once(", predicted ")
            .unwrap();
        assert_ne!(t, p, "{line}");
    }
    assert!(dir.path().join("misclassified.png").exists());
}

#[test]
fn deep_conv_net_trains_and_round_trips_through_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let arch = Architecture::DeepConv(DeepConvNet::new((1, 28, 28), 10));
    let accuracy = train_small(&arch, 60, dir.path());
    assert!(accuracy > 0.5, "{accuracy}");
    let (mut net, info) =
        backprop::io::load_model(&dir.path().join("model.safetensors"), Default::default())
            .unwrap();
    assert_eq!(info.net, arch);
    let names: Vec<&str> = net.params_mut().into_iter().map(|p| p.name).collect();
    assert_eq!(names.first(), Some(&"W1"));
    assert_eq!(names.last(), Some(&"b8"));
}

#[test]
fn convolutional_models_refuse_fully_connected_flags() {
    for (args, expected) in [
        (
            vec!["train", "--model", "simple-conv", "--net", "784-10"],
            "--net applies to --model mlp only",
        ),
        (
            vec!["train", "--model", "deep-conv", "--init", "0.01"],
            "--init does not apply to --model deep-conv",
        ),
        (
            vec!["train", "--model", "lenet"],
            "invalid value 'lenet' for '--model <MODEL>'",
        ),
    ] {
        let out = backprop(&args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn deep_conv_net_resumes_bit_identically_dropout_and_shards_included() {
    let data = mnist(500, 100);
    let arch = Architecture::DeepConv(DeepConvNet::new((1, 28, 28), 10));
    let config = TrainConfig {
        iters: 8,
        batch: 20,
        eval_every: Some(4),
        sampling: Sampling::ShuffledEpochs,
        seed: 2,
        shards: 3,
    };
    let adam = OptimizerSpec::new(OptimizerKind::Adam);
    let new = || Trainer::new(arch.build(3).unwrap(), adam.build(), &data, config).unwrap();
    let mut whole = new();
    whole.run(|_| {}).unwrap();
    let mut first = new();
    first.run_until(4, |_| {}).unwrap();
    let info = ModelInfo {
        net: arch.clone(),
        normalisation: PIXEL_NORMALISATION.into(),
        input_shape: Some((28, 28)),
        class_names: data.class_names.clone(),
        dataset: None,
        test_accuracy: None,
        checkpoint: None,
        assumed: Vec::new(),
    };
    let bytes = first.checkpoint(&info, None);
    let path = Path::new("checkpoint.safetensors");
    let file = backprop::io::TensorFile::parse(&bytes, path).unwrap();
    let mut resumed = Trainer::resume(file, path, adam.build(), &data).unwrap();
    resumed.run(|_| {}).unwrap();
    assert_eq!(net_bits(&mut whole.net), net_bits(&mut resumed.net));
    assert_eq!(whole.losses(), resumed.losses());
}

#[test]
fn the_same_bits_on_one_two_or_three_threads() {
    let data = mnist(400, 100);
    let arch = Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10));
    for shards in [1, 3] {
        the_same_bits_at_any_thread_count(&data, &arch, shards);
    }
}

fn the_same_bits_at_any_thread_count(data: &Dataset, arch: &Architecture, shards: usize) {
    let run = |threads: usize| -> (Vec<u32>, Vec<f64>) {
        backprop::machinery::parallel::set_threads(threads);
        let config = TrainConfig {
            iters: 6,
            batch: 40,
            eval_every: None,
            sampling: Sampling::WithReplacement,
            seed: 4,
            shards,
        };
        let adam = OptimizerSpec::new(OptimizerKind::Adam);
        let mut t =
            Trainer::new(arch.build::<f32>(4).unwrap(), adam.build(), data, config).unwrap();
        t.run(|_| {}).unwrap();
        let bits = net_bits(&mut t.net);
        (bits, t.losses().to_vec())
    };
    let one = run(1);
    let two = run(2);
    let three = run(3);
    assert_eq!(one, two, "{shards} shards");
    assert_eq!(one, three, "{shards} shards");
}
