//! The book's weight files: pickles of numpy arrays read without running anything, in every
//! protocol, dtype, byte order and memory order numpy writes; nets recognised from the shapes
//! of their weights; the activation never assumed in silence; files converted both ways; and
//! training started from given weights.

mod common;
use std::collections::HashMap;
use std::path::Path;

use backprop::io::{LoadOptions, TensorFile, encode_tensors, load_model, named_params, pickle};
use backprop::layers::Mode;
use backprop::net::{
    Activation, Architecture, DeepConvNet, MultiLayerNet, Sequential, SimpleConvNet,
};
use common::{backprop, net_bits, stderr, stdout};
use ndarray::{Array2, ArrayD, IxDyn};

/// The arrays of every fixture in `tests/corpus/pickle/numpy` (`tests/python/make_pickles.py`).
fn expected() -> Vec<(&'static str, Vec<usize>, Vec<f64>)> {
    let range = |n: usize, shift: f64, scale: f64| -> Vec<f64> {
        (0..n).map(|i| (i as f64 - shift) / scale).collect()
    };
    vec![
        ("W1", vec![6, 4], range(24, 12.0, 8.0)),
        ("W2", vec![4, 3], range(12, 5.0, 8.0)),
        ("b1", vec![4], range(4, 0.0, 4.0)),
        ("b2", vec![3], vec![-0.5, 0.0, 0.5]),
    ]
}

#[test]
fn numpy_pickles_of_every_protocol_dtype_and_order_read_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/pickle/numpy");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = TensorFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(file.metadata.is_empty());
        let got: Vec<(&str, Vec<usize>, Vec<f64>)> = file
            .tensors
            .iter()
            .map(|(n, a)| (n.as_str(), a.shape().to_vec(), a.iter().copied().collect()))
            .collect();
        assert_eq!(got, expected(), "{}", path.display());
        seen.push(path.file_stem().unwrap().to_string_lossy().into_owned());
    }
    seen.sort();
    // Protocols 2–5, float32 and float64, both byte orders, both memory orders, OrderedDict.
    assert_eq!(
        seen,
        [
            "p2-f8-C-le-dict",
            "p3-f4-F-be-dict",
            "p4-f8-F-le-ordered",
            "p5-f4-C-be-dict",
            "p5-f4-F-be-ordered",
            "p5-f8-F-le-ordered"
        ]
    );
}

#[test]
fn what_this_crate_pickles_reads_back_bit_for_bit() {
    let w = ArrayD::from_shape_fn(IxDyn(&[3, 5]), |i| {
        (i[0] as f32 - 1.3) * (i[1] as f32 + 0.7)
    });
    let b = ArrayD::from_elem(IxDyn(&[5]), f32::MIN_POSITIVE);
    let bytes = pickle::encode(&[("W1".into(), w.view()), ("b1".into(), b.view())]);
    let file = pickle::parse(&bytes, Path::new("x.pkl")).unwrap();
    assert_eq!(file.tensors[0].0, "W1");
    assert_eq!(file.tensors[0].1, w.mapv(f64::from));
    assert_eq!(file.tensors[1].1, b.mapv(f64::from));
}

/// `net`'s tensors without metadata, as a numpy user would save them: safetensors and pickle.
fn saved_bare(net: &mut Sequential<f32>, dir: &Path) -> [std::path::PathBuf; 2] {
    let params = named_params(net);
    let views: Vec<_> = params.iter().map(|(n, a)| (n.clone(), a.view())).collect();
    let (st, pkl) = (dir.join("bare.safetensors"), dir.join("bare.pkl"));
    std::fs::write(&st, encode_tensors(&views, &[], HashMap::new())).unwrap();
    std::fs::write(&pkl, pickle::encode(&views)).unwrap();
    [st, pkl]
}

/// The scores of `net` in inference on a fixed batch of 28×28 inputs.
fn scores(net: &mut Sequential<f32>) -> Vec<u32> {
    let x = Array2::from_shape_fn((3, 784), |(n, i)| ((n * 131 + i * 7) % 255) as f32 / 255.0);
    let y = net.predict(x.view().into_dyn(), Mode::Eval);
    y.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn the_books_nets_are_recognised_from_their_shapes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let nets = [
        Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10)),
        Architecture::SimpleConv(SimpleConvNet {
            filters: 8,
            filter_size: 3,
            pad: 1,
            hidden: 20,
            ..SimpleConvNet::new((1, 28, 28), 10)
        }),
        Architecture::DeepConv(DeepConvNet::new((1, 28, 28), 10)),
    ];
    for arch in nets {
        let mut original = arch.build::<f32>(3).unwrap();
        for path in saved_bare(&mut original, dir.path()) {
            let (mut loaded, info) = load_model(&path, LoadOptions::default()).unwrap();
            assert_eq!(info.net.layout(), arch.layout(), "{}", path.display());
            assert_eq!(net_bits(&mut loaded), net_bits(&mut original));
            // The same predictions: DeepConvNet's dropout in its inference form, as trained.
            assert_eq!(scores(&mut loaded), scores(&mut original), "{arch}");
            assert_eq!(info.assumed.len(), 1, "{:?}", info.assumed);
            assert!(
                info.assumed[0].contains("images assumed 28×28"),
                "{:?}",
                info.assumed
            );
        }
    }
}

#[test]
fn an_activation_left_open_is_said_and_can_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let arch = Architecture::Mlp(MultiLayerNet {
        activation: Activation::Sigmoid,
        init: backprop::net::Init::Xavier,
        ..MultiLayerNet::new("784-30-20-10".parse().unwrap())
    });
    let mut original = arch.build::<f32>(5).unwrap();
    for path in saved_bare(&mut original, dir.path()) {
        let (mut guessed, info) = load_model(&path, LoadOptions::default()).unwrap();
        assert_eq!(
            info.assumed,
            [
                "no metadata: recognised the MLP 784-30-20-10 from the tensor shapes, hidden activation assumed relu \
              (for a sigmoid net, such as the book's chapter-3 sample_weight.pkl, pass --activation sigmoid); \
              inputs assumed pixel/255"
            ]
        );
        assert_ne!(scores(&mut guessed), scores(&mut original));
        let sigmoid = LoadOptions {
            activation: Some(Activation::Sigmoid),
            ..LoadOptions::default()
        };
        let (mut told, info) = load_model(&path, sigmoid).unwrap();
        assert_eq!(scores(&mut told), scores(&mut original));
        assert!(info.assumed[0].contains("hidden activation sigmoid, as --activation says"));

        // On the command line: said on stderr, before the results.
        let path = path.to_str().unwrap();
        let out = backprop(&["eval", "--model", path, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).starts_with(&format!(
            "{path}: no metadata: recognised the MLP 784-30-20-10"
        )));
        assert!(stderr(&out).contains("assumed relu"), "{}", stderr(&out));
    }
    // A file that names its activation refuses another one.
    let named = dir.path().join("named.safetensors");
    let info = backprop::io::ModelInfo::mnist(arch.clone());
    backprop::io::save_model(&named, &mut original, &info).unwrap();
    let named = named.to_str().unwrap();
    let out = backprop(&["eval", "--model", named, "--activation", "relu"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {named}: its metadata says the activation is sigmoid; leave out --activation or give sigmoid\n"
        )
    );
    let out = backprop(&["eval", "--model", named, "--activation", "sigmoid"]);
    assert!(out.status.success());
    assert_eq!(
        stderr(&out),
        "",
        "nothing is assumed of a file with metadata"
    );
}

#[test]
fn shapes_that_fit_no_net_name_the_tensor_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    type Tensors<'a> = &'a [(&'a str, &'a [usize])];
    let cases: [(Tensors, &str); 4] = [
        (
            &[
                ("W1", &[30, 1, 5, 5]),
                ("b1", &[30]),
                ("W2", &[1000, 100]),
                ("b2", &[100]),
                ("W3", &[100, 10]),
                ("b3", &[10]),
            ],
            "W2 has 1000 rows but SimpleConvNet's 30 filters of 5×5 (stride 1, no padding) pooled 2×2 over 28×28 images give 4320",
        ),
        (
            &[
                ("W1", &[16, 1, 3, 3]),
                ("W2", &[16, 16, 3, 3]),
                ("W3", &[32, 8, 3, 3]),
                ("W4", &[32, 32, 3, 3]),
                ("W5", &[64, 32, 3, 3]),
                ("W6", &[64, 64, 3, 3]),
                ("W7", &[1024, 50]),
                ("W8", &[50, 10]),
            ],
            "W3 has shape [32, 8, 3, 3] but DeepConvNet's convolution 3 is [32, 16, 3, 3]",
        ),
        (
            &[("W1", &[30, 1, 5, 5]), ("W2", &[4320, 100])],
            "W1 is a convolution's 4-D weight, but the weights (1 4-D, then 1 2-D) fit neither SimpleConvNet (one convolution, then W2 and W3) nor \
             DeepConvNet (six convolutions, then W7 and W8)",
        ),
        (
            &[("W1", &[784, 50]), ("W2", &[50, 10, 1])],
            "W2 has shape [50, 10, 1]; expected (in, out) as W1…W1 before it",
        ),
    ];
    for (k, (tensors, message)) in cases.iter().enumerate() {
        let arrays: Vec<(String, ArrayD<f32>)> = tensors
            .iter()
            .map(|(n, s)| (n.to_string(), ArrayD::zeros(IxDyn(s))))
            .collect();
        let views: Vec<_> = arrays.iter().map(|(n, a)| (n.clone(), a.view())).collect();
        let path = dir.path().join(format!("{k}.pkl"));
        std::fs::write(&path, pickle::encode(&views)).unwrap();
        let err = load_model(&path, LoadOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), format!("{}: {message}", path.display()));
    }
}

#[test]
fn convert_goes_both_ways_and_fine_tuning_starts_from_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = at("run");
    let out = backprop(&[
        "train",
        "--activation",
        "sigmoid",
        "--init",
        "xavier",
        "--iters",
        "300",
        "--eval-every",
        "299",
        "--quiet",
        "--out",
        &run,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let model = format!("{run}/model.safetensors");

    let out = backprop(&["convert", &model, &at("book.pkl")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{model} → {}: 784-50-10 sigmoid\n", at("book.pkl"))
    );
    assert_eq!(
        stderr(&out),
        format!(
            "{}: a pickle holds no metadata: a reader recognises the net from the tensor shapes; read it back with --activation sigmoid\n",
            at("book.pkl")
        )
    );
    let out = backprop(&[
        "convert",
        &at("book.pkl"),
        &at("back.safetensors"),
        "--activation",
        "sigmoid",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bits = |path: &str| {
        let (mut net, info) = load_model(Path::new(path), LoadOptions::default()).unwrap();
        (net_bits(&mut net), info.net.layout())
    };
    assert_eq!(bits(&model), bits(&at("back.safetensors")));

    let eval = |path: &str, extra: &[&str]| {
        let mut args = vec!["eval", "--model", path, "--json"];
        args.extend(extra);
        let out = backprop(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let accuracy = eval(&model, &[]);
    assert_eq!(
        eval(&at("book.pkl"), &["--activation", "sigmoid"]),
        accuracy
    );

    // Fine-tuning: the first evaluation (after one step of a tiny learning rate) is the
    // accuracy of the given weights, not of fresh ones.
    let tuned = at("tuned");
    let out = backprop(&[
        "train",
        "--init-from",
        &at("book.pkl"),
        "--activation",
        "sigmoid",
        "--lr",
        "1e-12",
        "--iters",
        "1",
        "--quiet",
        "--out",
        &tuned,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&accuracy).unwrap();
    let test_acc = json["accuracy"].as_f64().unwrap();
    assert!(test_acc > 0.8, "{test_acc}");
    assert!(
        stdout(&out).ends_with(&format!(", {test_acc:.4}\n")),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("hidden activation sigmoid, as --activation says"));

    let out = backprop(&["convert", &model, &at("model.txt")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {}: the output's extension says its format; use .safetensors or .pkl\n",
            at("model.txt")
        )
    );
}

#[test]
fn every_command_that_reads_a_model_reads_the_books_pickle() {
    let model = "tests/corpus/pickle/good.pkl";
    let said = format!(
        "{model}: no metadata: recognised the MLP 784-2-10 from the tensor shapes, hidden activation sigmoid, \
         as --activation says; inputs assumed pixel/255\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("figure.png");
    let png = png.to_str().unwrap();
    let digit = "tests/corpus/image/digit.png";
    // Each command with the file, the activation, and what it needs besides.
    let commands: [(&str, &[&str]); 4] = [
        ("eval", &[]),
        ("predict", &[digit]),
        ("visualize-filters", &["--out", png]),
        ("misclassified", &["--out", png]),
    ];
    for (command, extra) in commands {
        let mut args = vec![command, "--model", model, "--activation", "sigmoid"];
        args.extend(extra);
        let out = backprop(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with(&said), "{args:?}: {err}");
        assert!(!stdout(&out).is_empty(), "{args:?}");
    }
    image::open(png).unwrap();
}

#[test]
fn an_empty_array_of_protocol_2_reads() {
    // pickle.dumps({'e': np.zeros(0, np.float32)}, protocol=2): its empty data is `bytes()`.
    let hex = "80027d71005801000000657101636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e737472\
               7563740a7102636e756d70790a6e6461727261790a71034b00857104635f636f646563730a656e636f64650a7105\
               580100000062710658060000006c6174696e31710786710852710987710a52710b284b014b0085710c636e756d70\
               790a64747970650a710d58020000006634710e898887710f527110284b0358010000003c71114e4e4e4affffffff\
               4affffffff4b007471126289635f5f6275696c74696e5f5f0a62797465730a71132952711474711562732e";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let file = pickle::parse(&bytes, Path::new("empty.pkl")).unwrap();
    assert_eq!(file.tensors.len(), 1);
    assert_eq!(
        (file.tensors[0].0.as_str(), file.tensors[0].1.shape()),
        ("e", &[0][..])
    );
}

#[test]
fn float64_weights_beyond_float32_are_refused_not_made_infinite() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = ArrayD::from_elem(IxDyn(&[784, 10]), 1e300);
    let b1 = ArrayD::zeros(IxDyn(&[10]));
    let path = dir.path().join("huge.safetensors");
    let tensors = [("W1".to_string(), w1.view()), ("b1".to_string(), b1.view())];
    std::fs::write(&path, encode_tensors(&[], &tensors, HashMap::new())).unwrap();
    let err = load_model(&path, LoadOptions::default()).unwrap_err();
    assert!(
        err.to_string().ends_with("tensor W1 holds NaN or infinite values: the weights are unusable (saved from a diverged run?)"),
        "{err}"
    );
}
