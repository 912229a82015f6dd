//! Malformed inputs: every command that reads a file is run against the corpus in
//! `tests/corpus` (written by `make_corpus.py` there) and must exit 1 with one line naming the
//! file and the problem, print nothing on stdout, and write no output file.

mod common;
use std::path::{Path, PathBuf};

use backprop::data::encode_idx;
use common::{backprop, stderr, stdout};

/// A corpus file, as the relative path the messages show (tests run in the crate's folder).
fn corpus(name: &str) -> String {
    format!("tests/corpus/{name}")
}

/// Runs `args` and checks the whole outcome: exit code 1, nothing on stdout, and exactly the
/// one line `error: {message}` on stderr.
#[track_caller]
fn fails_with(args: &[&str], message: &str) {
    let out = backprop(args);
    assert_eq!(
        (out.status.code(), stderr(&out), stdout(&out)),
        (Some(1), format!("error: {message}\n"), String::new()),
        "backprop {}",
        args.join(" ")
    );
}

/// The files in `dir` (none when it does not exist), sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Model files that no command may load, with the error each gives after its path.
const BAD_MODELS: [(&str, &str); 12] = [
    ("empty", "not a safetensors file: header too small"),
    ("text", "not a safetensors file: header too large"),
    (
        "truncated",
        "not a safetensors file: incomplete metadata, file not fully covered",
    ),
    ("lying-header", "not a safetensors file: header too large"),
    (
        "wrong-dtype",
        "tensor W1 has dtype I32; expected F32 or F64",
    ),
    (
        "transposed",
        "tensor W1 has shape [2, 784] but net 784-2-10 needs [784, 2]",
    ),
    ("missing-tensor", "tensor b2 is missing (net 784-2-10)"),
    (
        "nan-weights",
        "tensor W2 holds NaN or infinite values: the weights are unusable (saved from a diverged run?)",
    ),
    (
        "huge-net",
        "the metadata describes a net (784-100000000-10) of 79500000010 values but the file holds 1600",
    ),
    (
        "bad-spec",
        "invalid net spec \"784-two-10\": \"two\" is not a layer size; a spec lists layer sizes from input to output, such as 784-100-10",
    ),
    (
        "unknown-architecture",
        "metadata architecture: unknown variant `transformer`, expected one of `mlp`, `simple-conv`, `deep-conv` at line 1 column 23",
    ),
    ("not-a-model", "not a safetensors file: header too large"),
];

/// Pickles that no command may load, with the error each gives after its path.
const BAD_PICKLES: [(&str, &str); 14] = [
    (
        "runs-a-command",
        "not a pickle of numpy arrays: it names the global posix.system, which is refused: only numpy arrays \
         in a dict are read, and unpickling it could run any code",
    ),
    (
        "protocol-1",
        "not a pickle of numpy arrays: no protocol header: protocols 0 and 1 are not read; save with protocol 2 or later",
    ),
    (
        "not-a-dict",
        "not a pickle of numpy arrays: it holds a list, not a dict",
    ),
    (
        "list-value",
        "not a pickle of numpy arrays: W1 is a list, not a numpy array",
    ),
    (
        "truncated",
        "not a pickle of numpy arrays: an argument at byte 84 claims 1 bytes but 0 are left (a truncated file?)",
    ),
    (
        "huge-bytes",
        "not a pickle of numpy arrays: a bytes object at byte 145 claims 1152921504606846976 bytes but 4 are left \
         (a truncated file?)",
    ),
    (
        "wrong-dtype",
        "not a pickle of numpy arrays: byte 103: an array of dtype i8; float32 (f4) and float64 (f8) are read",
    ),
    (
        "short-data",
        "not a pickle of numpy arrays: byte 150: an array of shape [1000, 1000] with 8 bytes of data (expected 4 per value)",
    ),
    (
        "rebuilt-array",
        "not a pickle of numpy arrays: byte 19244: it builds far more data than it holds (one stored array used again and again?)",
    ),
    (
        "shared-array",
        "not a pickle of numpy arrays: it builds far more data than it holds (one stored array used again and again?)",
    ),
    (
        "many-dims",
        "not a pickle of numpy arrays: byte 461: an array of 65 dimensions; numpy's have at most 64",
    ),
    (
        "deep-tuples",
        "not a pickle of numpy arrays: tuples nested 9 deep; numpy's pickles nest them 2 deep",
    ),
    (
        "unset-memo",
        "not a pickle of numpy arrays: byte 13: memo slot 7 was never stored",
    ),
    (
        "out-of-band",
        "not a pickle of numpy arrays: an out-of-band buffer at byte 11: the data is not in the file",
    ),
];

/// The path of a bad model: the corpus file, or a picture posing as a model.
fn bad_model(name: &str) -> String {
    match name {
        "not-a-model" => corpus("image/digit.png"),
        name => corpus(&format!("model/{name}.safetensors")),
    }
}

#[test]
fn every_command_refuses_every_bad_model_file() {
    let good_image = corpus("image/digit.png");
    let models = BAD_MODELS.iter().map(|(name, why)| (bad_model(name), why));
    let pickles = BAD_PICKLES
        .iter()
        .map(|(name, why)| (corpus(&format!("pickle/{name}.pkl")), why));
    for (model, why) in models.chain(pickles) {
        let name = &model;
        let message = format!("{model}: {why}");
        fails_with(&["eval", "--model", &model], &message);
        fails_with(&["predict", "--model", &model, &good_image], &message);

        let out = tempfile::tempdir().unwrap();
        let png = out.path().join("figure.png");
        let png = png.to_str().unwrap();
        fails_with(
            &["visualize-filters", "--model", &model, "--out", png],
            &message,
        );
        fails_with(
            &["misclassified", "--model", &model, "--out", png],
            &message,
        );
        let converted = out.path().join("converted.safetensors");
        fails_with(&["convert", &model, converted.to_str().unwrap()], &message);
        let onnx = out.path().join("model.onnx");
        fails_with(
            &[
                "export",
                "--model",
                &model,
                "--onnx",
                onnx.to_str().unwrap(),
            ],
            &message,
        );
        let run = out.path().join("run");
        fails_with(
            &[
                "train",
                "--init-from",
                &model,
                "--out",
                run.to_str().unwrap(),
            ],
            &message,
        );
        assert_eq!(files_in(out.path()), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn a_bad_checkpoint_stops_resume_and_changes_nothing() {
    for (name, why) in BAD_MODELS {
        let run = tempfile::tempdir().unwrap();
        let checkpoint = run.path().join("checkpoint.safetensors");
        std::fs::copy(bad_model(name), &checkpoint).unwrap();
        let before = std::fs::read(&checkpoint).unwrap();
        let why = match name {
            // Valid model files, but not checkpoints.
            "transposed"
            | "missing-tensor"
            | "nan-weights"
            | "huge-net"
            | "bad-spec"
            | "unknown-architecture" => {
                "not a checkpoint of `backprop train`: no run settings in its metadata"
            }
            _ => why,
        };
        let dir = run.path().to_str().unwrap();
        fails_with(
            &["train", "--resume", dir, "--quiet"],
            &format!("{}: {why}", checkpoint.display()),
        );
        assert_eq!(files_in(run.path()), ["checkpoint.safetensors"], "{name}");
        assert_eq!(std::fs::read(&checkpoint).unwrap(), before, "{name}");
    }
}

#[test]
fn a_model_for_other_images_is_refused_by_the_commands_that_read_data() {
    let model = corpus("model/wrong-inputs.safetensors");
    let message = format!(
        "{model}: the net takes 100 inputs but mnist images have 28×28 = 784 pixels; use a net spec starting with 784"
    );
    fails_with(&["eval", "--model", &model], &message);
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("m.png");
    fails_with(
        &[
            "misclassified",
            "--model",
            &model,
            "--out",
            png.to_str().unwrap(),
        ],
        &message,
    );
    assert!(!png.exists());
}

#[test]
fn predict_refuses_every_bad_picture_before_printing_anything() {
    let model = corpus("model/good.safetensors");
    let good = corpus("image/digit.png");
    let cases = [
        (
            "empty.png",
            "not a readable PNG or JPEG image (The image format could not be determined)",
        ),
        (
            "text.png",
            "not a readable PNG or JPEG image (The image format could not be determined)",
        ),
        (
            "truncated.png",
            "not a readable PNG or JPEG image (unexpected end of file)",
        ),
        (
            "huge.png",
            "the picture is 100000×100000 pixels, larger than this command reads (16384 on a side, 24 megapixels in all); scale it down first",
        ),
        ("blank.png", "no digit found: the picture is a single shade"),
        (
            "truncated.jpg",
            "not a readable PNG or JPEG image (Format error decoding Jpeg: I/O errors Not enough bytes, expected 162 but found 44 )",
        ),
    ];
    for (name, why) in cases {
        let image = corpus(&format!("image/{name}"));
        // The good picture first: one bad file stops the command before any output.
        fails_with(
            &["predict", "--model", &model, &good, &image],
            &format!("{image}: {why}"),
        );
    }
    let model_file = corpus("model/good.safetensors");
    fails_with(
        &["predict", "--model", &model, &model_file],
        &format!(
            "{model_file}: not a readable PNG or JPEG image (The image format could not be determined)"
        ),
    );
}

/// A data folder of three 28×28 training and test images, with `bad` (a corpus file) in place
/// of the training images; and the path the bad file has there.
fn data_folder_with(bad: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let images = encode_idx(&[3, 28, 28], &[7; 3 * 28 * 28]);
    let labels = encode_idx(&[3], &[1, 2, 3]);
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    write("train-labels-idx1-ubyte", &labels);
    write("t10k-images-idx3-ubyte", &images);
    write("t10k-labels-idx1-ubyte", &labels);
    let compressed = [".gz", ".xz"].into_iter().find(|ext| bad.ends_with(ext));
    let file = dir.path().join(format!(
        "train-images-idx3-ubyte{}",
        compressed.unwrap_or("")
    ));
    std::fs::copy(corpus(&format!("idx/{bad}")), &file).unwrap();
    (dir, file)
}

#[test]
fn every_command_that_reads_data_refuses_every_bad_idx_file() {
    let cases = [
        (
            "empty",
            "too short for an IDX header: 0 bytes; an IDX file starts with 4 magic bytes",
        ),
        (
            "bad-magic",
            "not an IDX file: it starts with bytes 89 50, expected 00 00 (IDX magic number)",
        ),
        (
            "wrong-dtype",
            "element type 0x0d (f32) is not supported: image and label files hold unsigned bytes (0x08)",
        ),
        (
            "truncated-header",
            "truncated header: 3 dimension sizes need 12 bytes, found 6",
        ),
        (
            "truncated",
            "truncated: the header says [3, 28, 28] = 2352 bytes of data, but only 1168 follow",
        ),
        (
            "trailing-bytes",
            "the header says [3, 28, 28] = 2352 bytes of data, but more follow (trailing bytes)",
        ),
        (
            "lying-header",
            "the header claims dimensions [4294967295, 4294967295, 28], more than 4294967296 items",
        ),
        (
            "lying-header.gz",
            "truncated: the header says [60000, 28, 28] = 47040000 bytes of data, but only 2352 follow",
        ),
        ("corrupt.gz", "corrupt gzip data: unexpected end of file"),
        ("corrupt.xz", "corrupt xz data: dist overflow"),
        (
            "huge-dictionary.xz",
            "xz data whose dictionary needs more than 64 MiB; recompress it with xz -9 or less",
        ),
    ];
    let model = corpus("model/good.safetensors");
    for (bad, why) in cases {
        let (data, file) = data_folder_with(bad);
        let dir = data.path().to_str().unwrap();
        refused_everywhere(dir, &model, &format!("{}: {why}", file.display()));
    }
    // Images of another size than the test images: a data set, not a file, is wrong.
    let (data, _) = data_folder_with("small-images");
    let dir = data.path().to_str().unwrap();
    refused_everywhere(
        dir,
        &model,
        &format!("{dir}: training images are 20×20 but test images are 28×28"),
    );
}

/// Every command with `--data-dir` fails on `dir` with `message` and writes nothing.
#[track_caller]
fn refused_everywhere(dir: &str, model: &str, message: &str) {
    let out = tempfile::tempdir().unwrap();
    let target = |name: &str| -> PathBuf { out.path().join(name) };
    let run = target("run");
    let png = target("m.png");
    let figures = target("figures");
    let (run, png, figures) = (
        run.to_str().unwrap(),
        png.to_str().unwrap(),
        figures.to_str().unwrap(),
    );
    fails_with(
        &["train", "--data-dir", dir, "--out", run, "--quiet"],
        message,
    );
    fails_with(&["eval", "--model", model, "--data-dir", dir], message);
    fails_with(
        &[
            "misclassified",
            "--model",
            model,
            "--data-dir",
            dir,
            "--out",
            png,
        ],
        message,
    );
    fails_with(&["gradcheck", "--data-dir", dir], message);
    fails_with(
        &[
            "experiment",
            "--data-dir",
            dir,
            "--out",
            figures,
            "optimizer-compare",
        ],
        message,
    );
    fails_with(&["bench", "W2", "--data-dir", dir, "--reps", "1"], message);
    assert_eq!(files_in(out.path()), Vec::<String>::new());
}

#[test]
fn bench_refuses_an_unknown_cell_or_grid_before_loading_anything() {
    let out = backprop(&["bench", "--cell", "mlp/no-such-net", "--reps", "1"]);
    assert_eq!((out.status.code(), stdout(&out)), (Some(1), String::new()));
    let err = stderr(&out);
    assert!(
        err.starts_with(
            "error: no cell \"mlp/no-such-net\" in bench/grid.json: its cells are mlp/"
        ) && err.lines().count() == 1,
        "{err}"
    );
    fails_with(
        &[
            "bench",
            "--cell",
            "x",
            "--grid",
            "tests/corpus/no-such-grid.json",
        ],
        "cannot read the grid tests/corpus/no-such-grid.json: No such file or directory (os error 2); \
         give the grid file with --grid (bench/grid.json of the repository)",
    );
    let out = backprop(&["bench", "--cell", "x", "--grid", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: Cargo.toml is not a grid of cells: "));
}
