//! Model files, `eval` and `predict`, and the output folder of `train`.

mod common;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use backprop::io::{TensorFile, encode_tensors, load_model};
use common::{backprop, stderr, stdout};
use ndarray::{ArrayD, IxDyn};

/// A short run (1,201 iterations, ~92% test accuracy, evaluated at iterations 0, 600 and 1200,
/// the last after the final update) into a fresh folder; returns the folder.
fn trained() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = backprop(&[
        "train",
        "--iters",
        "1201",
        "--out",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn train_writes_model_metrics_and_curves() {
    let dir = trained();
    let metrics = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    assert_eq!(lines[0], "epoch,iter,loss,train_acc,test_acc,elapsed_s");
    assert_eq!(lines.len(), 1 + 3, "{metrics}");
    assert!(lines[3].starts_with("2,1200,"), "{metrics}");
    let curves = image::open(dir.path().join("curves.png")).unwrap();
    assert_eq!((curves.width(), curves.height()), (1200, 480));
    assert!(
        !dir.path().join("checkpoint.safetensors").exists(),
        "no checkpoint unless asked"
    );
}

#[test]
fn a_saved_model_has_the_books_names_shapes_and_metadata_and_evaluates_alike() {
    let dir = trained();
    let model = dir.path().join("model.safetensors");
    let file = TensorFile::read(&model).unwrap();
    let shapes: Vec<(&str, &[usize])> = file
        .tensors
        .iter()
        .map(|(n, a)| (n.as_str(), a.shape()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("W1", &[784, 50][..]),
            ("W2", &[50, 10]),
            ("b1", &[50]),
            ("b2", &[10])
        ]
    );
    assert_eq!(file.metadata["net"], "784-50-10");
    assert_eq!(file.metadata["normalisation"], "pixel/255");
    assert_eq!(file.metadata["input_shape"], "28x28");
    assert_eq!(file.metadata["dataset"], "mnist");

    let out = backprop(&["eval", "--model", path_str(&model), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["n"], 10_000);
    let accuracy = json["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "{json}");
    let confusion = json["confusion"].as_array().unwrap();
    let diagonal: u64 = (0..10).map(|c| confusion[c][c].as_u64().unwrap()).sum();
    assert_eq!(diagonal as f64 / 10_000.0, accuracy);
    // The last evaluation during training came after the final update: the same number.
    let metrics = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    let last_test_acc: f64 = metrics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(accuracy, last_test_acc);
}

/// Writes `image` (28×28 MNIST bytes, light on dark) as a PNG scaled 3× with a 20-pixel
/// margin: dark on light, as a photo of a drawing would be, or light on dark when `!on_paper`.
fn as_drawing(pixels: &[u8], path: &Path, on_paper: bool) {
    let side = 28 * 3 + 40;
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        let (x, y) = (x as i64 - 20, y as i64 - 20);
        let v = if (0..84).contains(&x) && (0..84).contains(&y) {
            pixels[(y / 3 * 28 + x / 3) as usize]
        } else {
            0
        };
        image::Luma([if on_paper { 255 - v } else { v }])
    });
    img.save(path).unwrap();
}

#[test]
fn predict_reads_drawings_of_test_digits() {
    let dir = trained();
    let mnist = backprop::data::load(None, None).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for i in 0..20 {
        let path = dir.path().join(format!("digit{i}.png"));
        // Half drawn on paper, half light on dark like MNIST itself.
        as_drawing(
            mnist.test.images.row(i).as_slice().unwrap(),
            &path,
            i % 2 == 0,
        );
        files.push(path);
    }
    let model = dir.path().join("model.safetensors");
    let mut args = vec!["predict", "--model", path_str(&model)];
    args.extend(files.iter().map(|f| path_str(f)));
    let out = backprop(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let predicted: Vec<u8> = text
        .lines()
        .map(|l| {
            l.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let correct = predicted
        .iter()
        .zip(&mnist.test.labels[..20])
        .filter(|(p, t)| p == t)
        .count();
    assert!(correct >= 17, "{correct}/20 correct:\n{text}");
    // Three classes per line, probabilities in percent, most probable first.
    let first = text.lines().next().unwrap();
    assert_eq!(first.matches('%').count(), 3, "{first}");
}

#[test]
fn a_book_named_f64_file_without_metadata_loads_by_its_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("from_numpy.safetensors");
    let w1 = ArrayD::from_shape_fn(IxDyn(&[784, 20]), |i| {
        ((i[0] * 7 + i[1]) % 13) as f64 * 1e-3
    });
    let b1 = ArrayD::zeros(IxDyn(&[20]));
    let w2 = ArrayD::from_shape_fn(IxDyn(&[20, 10]), |i| (i[0] as f64 - i[1] as f64) * 1e-2);
    let b2 = ArrayD::from_elem(IxDyn(&[10]), 0.5);
    let tensors: Vec<(String, ndarray::ArrayViewD<'_, f64>)> = vec![
        ("W1".into(), w1.view()),
        ("b1".into(), b1.view()),
        ("W2".into(), w2.view()),
        ("b2".into(), b2.view()),
    ];
    std::fs::write(&path, encode_tensors(&[], &tensors, HashMap::new())).unwrap();
    let (mut net, info) = load_model(&path, Default::default()).unwrap();
    assert_eq!(info.net.layout(), "784-20-10");
    assert_eq!(info.class_names.len(), 10);
    let params = backprop::io::named_params(&mut net);
    assert_eq!(params[2].1[[3, 1]], 0.02f32);
    assert_eq!(params[3].1[[9]], 0.5f32);
    let out = backprop(&["eval", "--model", path_str(&path)]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn bad_model_files_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, f64s: Vec<(&str, Vec<usize>)>, meta: HashMap<String, String>| {
        let arrays: Vec<(String, ArrayD<f64>)> = f64s
            .into_iter()
            .map(|(n, s)| (n.to_string(), ArrayD::zeros(IxDyn(&s))))
            .collect();
        let views: Vec<(String, ndarray::ArrayViewD<'_, f64>)> =
            arrays.iter().map(|(n, a)| (n.clone(), a.view())).collect();
        let path = dir.path().join(name);
        std::fs::write(&path, encode_tensors(&[], &views, meta)).unwrap();
        path
    };
    let torch_layout = write(
        "t.safetensors",
        vec![
            ("W1", vec![784, 50]),
            ("b1", vec![50]),
            ("W2", vec![10, 50]),
            ("b2", vec![10]),
        ],
        HashMap::new(),
    );
    let missing_bias = write("m.safetensors", vec![("W1", vec![784, 10])], HashMap::new());
    // Metadata claiming nets far larger than the file: refused before anything is built.
    let claims_huge_mlp = write(
        "h.safetensors",
        vec![("W1", vec![784, 10]), ("b1", vec![10])],
        HashMap::from([("net".to_string(), "784-100000000000-10".to_string())]),
    );
    let claims_huge_conv = write(
        "c.safetensors",
        vec![("W1", vec![30, 1, 5, 5]), ("b1", vec![30])],
        HashMap::from([(
            "architecture".to_string(),
            r#"{"model":"simple-conv","input":[1,28,28],"filters":4000000000,"filter_size":5,"pad":0,"stride":1,"hidden":100,"classes":10,"init":"0.01"}"#
                .to_string(),
        )]),
    );
    let pytorch = write(
        "p.safetensors",
        vec![("fc1.weight", vec![50, 784]), ("fc1.bias", vec![50])],
        HashMap::new(),
    );
    let book_net = || {
        vec![
            ("W1", vec![784, 50]),
            ("b1", vec![50]),
            ("W2", vec![50, 10]),
            ("b2", vec![10]),
        ]
    };
    let stripped_checkpoint = write(
        "s.safetensors",
        [book_net(), vec![("optimizer/v/W1", vec![784, 50])]].concat(),
        HashMap::new(),
    );
    let extra = write(
        "e.safetensors",
        [book_net(), vec![("W3x", vec![10, 10])]].concat(),
        HashMap::new(),
    );
    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.safetensors");
    std::fs::write(&text, b"hello, world: not a model").unwrap();
    for (path, expected) in [
        (
            &torch_layout,
            "W2 has shape (10, 50) but W1 has 50 outputs; W must be (in, out) as in the book",
        ),
        (&missing_bias, "tensor b1 is missing (net 784-10)"),
        (
            &claims_huge_mlp,
            "the metadata describes a net (784-100000000000-10) of 79500000000010 values but the file holds 7850",
        ),
        (&claims_huge_conv, "but the file holds 780"),
        (
            &pytorch,
            "no tensor W1: they look like a PyTorch state_dict; name the tensors W1, b1, W2, b2, … as in the book, \
             with each W of shape (in, out) (Linear.weight transposed)",
        ),
        (
            &stripped_checkpoint,
            "unexpected tensors optimizer/v/W1: net 784-50-10 holds W1, b1, W2, b2 only; they look like a \
             checkpoint's optimizer state, but the file has no trainer state in its metadata",
        ),
        (
            &extra,
            "unexpected tensors W3x: net 784-50-10 holds W1, b1, W2, b2 only; the file seems to hold a bigger net",
        ),
        (&empty, "not a safetensors file"),
        (&text, "not a safetensors file"),
    ] {
        let out = backprop(&["eval", "--model", path_str(path)]);
        assert_eq!(out.status.code(), Some(1), "{path:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{path:?}: {err}");
    }
}
