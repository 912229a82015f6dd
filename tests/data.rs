//! Data sets: the built-in MNIST, Fashion-MNIST, folders of IDX files, and bad files.

mod common;
use std::path::Path;

use backprop::data::{FILE_NAMES, Known, Source, encode_idx, load, verify};
use common::{backprop, stderr, stdout};

const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn built_in_mnist_matches_the_known_facts() {
    let mnist = load(None, None).unwrap();
    assert_eq!(mnist.name, "mnist");
    assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
    assert_eq!(mnist.train.images.dim(), (60_000, 784));
    assert_eq!((mnist.train.rows, mnist.train.cols), (28, 28));
    assert_eq!(mnist.train.labels[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(mnist.test.labels[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    assert_eq!(
        mnist.train.class_counts(10),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        mnist.test.class_counts(10),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let pixel_sum = |row: ndarray::ArrayView1<u8>| row.iter().map(|&p| u64::from(p)).sum::<u64>();
    assert_eq!(pixel_sum(mnist.train.images.row(0)), 27525);
    assert_eq!(pixel_sum(mnist.test.images.row(0)), 18454);
    assert!(
        verify(Known::Mnist, &Source::BuiltIn)
            .unwrap()
            .iter()
            .all(|(_, ok)| *ok)
    );
}

#[test]
fn fashion_mnist_loads_from_the_debian_package() {
    if !Path::new(FASHION_DIR).is_dir() {
        // CI installs dataset-fashion-mnist, so there a missing folder is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install dataset-fashion-mnist"
        );
        eprintln!("skipped: {FASHION_DIR} is missing (apt-get install dataset-fashion-mnist)");
        return;
    }
    let fashion = load(Some(Known::FashionMnist), None).unwrap();
    assert_eq!((fashion.train.len(), fashion.test.len()), (60_000, 10_000));
    assert_eq!(fashion.class_names[9], "Ankle boot");
    assert_eq!(fashion.train.class_counts(10), [6000; 10]);
    assert_eq!(fashion.test.class_counts(10), [1000; 10]);
    assert_eq!(fashion.train.labels[..5], [9, 0, 0, 3, 0]);
    let source = backprop::data::locate(Known::FashionMnist).unwrap();
    assert!(
        verify(Known::FashionMnist, &source)
            .unwrap()
            .iter()
            .all(|(_, ok)| *ok)
    );
    let listed = stdout(&backprop(&["data", "list"]));
    assert!(
        listed.contains(&format!("fashion-mnist  {FASHION_DIR}  (checksums ok)")),
        "{listed}"
    );
}

/// Writes a tiny data set of `n` 2×3 images in `dir`, `gz` or raw.
fn write_tiny(dir: &Path, labels: &[u8], gz: bool) {
    let n = labels.len();
    let images: Vec<u8> = (0..n * 6).map(|i| (i * 37 % 256) as u8).collect();
    let files = [
        encode_idx(&[n, 2, 3], &images),
        encode_idx(&[n], labels),
        encode_idx(&[n, 2, 3], &images),
        encode_idx(&[n], labels),
    ];
    for (name, bytes) in FILE_NAMES.iter().zip(files) {
        if gz {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&bytes).unwrap();
            std::fs::write(dir.join(format!("{name}.gz")), enc.finish().unwrap()).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn any_folder_of_idx_files_loads_raw_or_gzipped() {
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_tiny(dir.path(), &[0, 3, 1, 2], gz);
        let data = load(None, Some(dir.path())).unwrap();
        assert_eq!(data.train.labels, [0, 3, 1, 2]);
        assert_eq!(data.class_names, ["0", "1", "2", "3"]);
        assert_eq!(data.input_size(), 6);
        assert_eq!(data.train.images[[1, 0]], 222); // pixel 6 of the sequence i·37 mod 256
    }
}

#[test]
fn a_missing_file_or_bad_label_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), &[0, 1], false);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let err = load(None, Some(dir.path())).unwrap_err().to_string();
    assert!(
        err.contains(
            "has no t10k-labels-idx1-ubyte.gz, t10k-labels-idx1-ubyte.xz or t10k-labels-idx1-ubyte"
        ),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), &[0, 10], false);
    let err = load(Some(Known::Mnist), Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("label 10 is out of range for 10 classes"),
        "{err}"
    );
}

#[test]
fn mismatched_counts_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), &[0, 1, 2], false);
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        encode_idx(&[2], &[0, 1]),
    )
    .unwrap();
    let err = load(None, Some(dir.path())).unwrap_err().to_string();
    assert!(
        err.contains("train-labels-idx1-ubyte: 2 labels for 3 images"),
        "{err}"
    );
}

#[test]
fn the_cli_reports_bad_data_in_one_line_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), &[0, 1], false);
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte"),
        b"\x00\x00\x08\x03\x00\x00",
    )
    .unwrap();
    let out = backprop(&[
        "train",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "train-images-idx3-ubyte: truncated header: 3 dimension sizes need 12 bytes, found 2"
        ),
        "{err}"
    );
}
