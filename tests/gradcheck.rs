//! The gradient check of §5.7.3: backprop against numerical gradients on MNIST, in f64.

mod common;
use backprop::data::{Batch, one_hot};
use backprop::functions::Targets;
use backprop::net::{NetSpec, TwoLayerNet};
use common::{backprop, stdout};

fn first_images(n: usize) -> (Batch<f64>, Targets<f64>) {
    let mnist = backprop::data::load(None, None).unwrap();
    let mut batch = Batch::default();
    batch.gather(&mnist.train, &(0..n).collect::<Vec<_>>());
    let t = Targets::OneHot(one_hot(&batch.t, 10));
    (batch, t)
}

#[test]
fn two_layer_net_matches_numerical_gradients_like_the_book() {
    let (batch, t) = first_images(3);
    let mut net = TwoLayerNet::<f64>::new(784, 50, 10, 0.01, 0);
    let report = net.gradient_check(batch.x.view().into_dyn(), &t);
    let names: Vec<&str> = report.entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["W1", "b1", "W2", "b2"]);
    for (name, c) in &report.entries {
        assert!(c.mean_abs_diff < 1e-9, "{name}: {c:?}");
    }
    assert!(report.kinks.is_empty());
}

#[test]
fn a_kink_crossing_is_detected_and_named() {
    // Seed 2 puts one of the 150 ReLU inputs within h of zero (found by scanning seeds).
    let (batch, t) = first_images(3);
    let mut net = TwoLayerNet::<f64>::new(784, 50, 10, 0.01, 2);
    let report = net.gradient_check(batch.x.view().into_dyn(), &t);
    assert_eq!(report.kinks.len(), 1);
    let kink = &report.kinks[0];
    assert_eq!(
        (kink.layer.as_str(), kink.units, kink.of),
        ("Relu1", 1, 150)
    );
    assert_eq!(kink.upstream, ["W1", "b1"]);
    assert!(
        report
            .failures(1e-9)
            .iter()
            .all(|f| ["W1", "b1"].contains(f))
    );
    assert!(report.failures_explained_by_kinks(1e-9));
    // The parameters after the ReLU are untouched by the kink.
    assert!(report.entries[2].1.mean_abs_diff < 1e-9 && report.entries[3].1.mean_abs_diff < 1e-9);
}

#[test]
fn deeper_nets_from_a_spec_pass_too() {
    let (batch, t) = first_images(2);
    let mut net = "784-20-15-10"
        .parse::<NetSpec>()
        .unwrap()
        .build::<f64>(0.1, 5);
    let report = net.gradient_check(batch.x.view().into_dyn(), &t);
    assert_eq!(report.entries.len(), 6);
    assert!(report.kinks.is_empty(), "{:?}", report.kinks);
    for (name, c) in &report.entries {
        assert!(
            c.mean_abs_diff < 1e-9 && c.max_rel_err < 1e-4,
            "{name}: {c:?}"
        );
    }
}

#[test]
fn cli_prints_one_line_per_parameter_and_json() {
    let out = backprop(&["gradcheck"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().take(4).collect();
    for (line, name) in lines.iter().zip(["W1", "b1", "W2", "b2"]) {
        let value: f64 = line
            .strip_prefix(&format!("{name}: "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(value < 1e-9, "{line}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&backprop(&["gradcheck", "--json"]).stdout).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["W1", "b1", "W2", "b2"]);
    assert!(json["W1"]["mean_abs_diff"].as_f64().unwrap() < 1e-9);
    assert!(json["b2"]["max_rel_err"].as_f64().unwrap() < 1e-6);
}

#[test]
fn cli_fails_above_tol_and_explains_kinks() {
    let out = backprop(&["gradcheck", "--seed", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("note: 1 of the 150 inputs of Relu1 crossed ReLU's kink at 0"),
        "{text}"
    );
    assert!(
        text.contains("FAILED: W1, b1 above 1e-7 (--tol), all explained by the kink crossings"),
        "{text}"
    );
    assert!(
        backprop(&["gradcheck", "--seed", "2", "--tol", "1e-4"])
            .status
            .success()
    );
}

#[test]
fn the_score_gradient_of_an_input_matches_numerical_differentiation() {
    use backprop::gradient::standard_normal;
    use backprop::layers::Mode;
    use backprop::net::{MultiLayerNet, SimpleConvNet};
    // A sigmoid MLP (smooth everywhere) and a small SimpleConvNet, in f64.
    let mut mlp = MultiLayerNet::new("12-7-5-4".parse().unwrap());
    mlp.activation = backprop::net::Activation::Sigmoid;
    let conv = SimpleConvNet {
        init: backprop::net::Init::Std(0.3),
        ..SimpleConvNet::new((1, 8, 8), 4)
    };
    let nets = [
        (mlp.build::<f64>(1), vec![2, 12]),
        (conv.build::<f64>(2).unwrap(), vec![2, 64]),
    ];
    for (mut net, shape) in nets {
        let x = standard_normal::<f64>(&shape, 3);
        let classes = [1, 3];
        let gradient = net.score_gradient(x.view(), &classes).unwrap();
        assert_eq!(gradient.shape(), x.shape());
        let h = 1e-5;
        for (n, &class) in classes.iter().enumerate() {
            for i in [0, 5, shape[1] - 1] {
                let mut score = |delta: f64| {
                    let mut moved = x.clone();
                    moved[[n, i]] += delta;
                    net.predict(moved.view(), Mode::Eval)[[n, class]]
                };
                let numerical = (score(h) - score(-h)) / (2.0 * h);
                let got = gradient[[n, i]];
                assert!(
                    (got - numerical).abs() < 1e-6,
                    "x[{n}, {i}]: {got} vs {numerical}"
                );
            }
        }
    }
    // Batch norm backpropagates its training-mode pass, not inference: no answer.
    let mut bn = MultiLayerNet::new("12-7-4".parse().unwrap());
    bn.batch_norm = true;
    let x = standard_normal::<f64>(&[2, 12], 3);
    assert!(
        bn.build::<f64>(1)
            .score_gradient(x.view(), &[0, 1])
            .is_none()
    );
}
