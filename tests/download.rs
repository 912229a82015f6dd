//! Checked downloads against a local HTTP server on 127.0.0.1 that serves good, corrupt,
//! truncated and missing files.
#![cfg(feature = "download")]

mod common;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use backprop::data::{FILE_NAMES, Known, Source, fetch, verify};
use common::{backprop, stderr};

/// Serves `/good/F`, `/corrupt/F` (one byte flipped), `/truncated/F` (half the bytes, full
/// Content-Length), `/wrong/F` (a valid gzip of other content: the test labels) for each
/// MNIST file F, and 404 otherwise. Returns the base URL and a
/// request counter. Stops after 200 connections.
fn serve() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut parts = path.trim_start_matches('/').splitn(2, '/');
            let (kind, file) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let file = if kind == "wrong" {
                "t10k-labels-idx1-ubyte.gz"
            } else {
                file
            };
            let body = match (kind, original_gz(file)) {
                (_, Err(_)) | ("missing", _) => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                (_, Ok(body)) => body,
            };
            let (send, claimed) = match kind {
                "corrupt" => {
                    let mut bad = body.clone();
                    let mid = bad.len() / 2;
                    bad[mid] ^= 0x55;
                    (bad, body.len())
                }
                "truncated" => (body[..body.len() / 2].to_vec(), body.len()),
                _ => (body.clone(), body.len()),
            };
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&send);
        }
    });
    (base, count)
}

/// `NAME.gz` as the mirrors serve it: the original bytes of the repository's
/// `data/mnist/NAME.xz`, gzip-compressed (once per test binary).
fn original_gz(file: &str) -> std::io::Result<Vec<u8>> {
    static ORIGINALS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    let originals = ORIGINALS.get_or_init(|| {
        FILE_NAMES
            .iter()
            .map(|name| {
                let xz =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("data/mnist/{name}.xz"));
                let idx = backprop::data::read_idx(&xz).unwrap();
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&backprop::data::encode_idx(&idx.dims, &idx.data))
                    .unwrap();
                (format!("{name}.gz"), gz.finish().unwrap())
            })
            .collect()
    });
    originals
        .iter()
        .find(|(name, _)| name == file)
        .map(|(_, gz)| gz.clone())
        .ok_or(std::io::ErrorKind::NotFound.into())
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn bad_mirrors_are_skipped_and_only_verified_files_land() {
    let (base, count) = serve();
    let dest = tempfile::tempdir().unwrap();
    let mirrors: Vec<String> = ["corrupt", "truncated", "missing", "good"]
        .iter()
        .map(|k| format!("{base}/{k}/"))
        .collect();
    let saved = fetch(Known::Mnist, dest.path(), &mirrors, false).unwrap();
    assert_eq!(saved.len(), 4);
    let expected: Vec<PathBuf> = {
        let mut names: Vec<PathBuf> = FILE_NAMES
            .iter()
            .map(|n| dest.path().join(format!("{n}.gz")))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        files_in(dest.path()),
        expected,
        "no temporary files are left behind"
    );
    let checks = verify(Known::Mnist, &Source::Dir(dest.path().to_path_buf())).unwrap();
    assert!(checks.iter().all(|(_, ok)| *ok), "{checks:?}");

    // Everything is there and verified: a second fetch asks no mirror.
    let before = count.load(Ordering::SeqCst);
    fetch(Known::Mnist, dest.path(), &mirrors, false).unwrap();
    assert_eq!(count.load(Ordering::SeqCst), before);
}

#[test]
fn when_every_mirror_fails_nothing_is_written_and_each_reason_is_given() {
    let (base, _) = serve();
    let dest = tempfile::tempdir().unwrap();
    let mirrors = vec![
        format!("{base}/corrupt/"),
        format!("{base}/truncated/"),
        format!("{base}/missing/"),
    ];
    let err = fetch(Known::Mnist, dest.path(), &mirrors, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("could not fetch train-images-idx3-ubyte.gz for mnist from any mirror:"),
        "{err}"
    );
    assert!(
        err.contains("/corrupt/train-images-idx3-ubyte.gz: "),
        "{err}"
    );
    assert!(
        err.contains("/corrupt/train-images-idx3-ubyte.gz: corrupt download: "),
        "{err}"
    );
    assert!(
        err.contains("/truncated/train-images-idx3-ubyte.gz: interrupted after "),
        "{err}"
    );
    let served = original_gz("train-images-idx3-ubyte.gz").unwrap().len();
    assert!(err.contains(&format!(" of {served} bytes")), "{err}");
    assert!(
        err.contains("/missing/train-images-idx3-ubyte.gz: http status: 404"),
        "{err}"
    );
    assert!(
        files_in(dest.path()).is_empty(),
        "{:?}",
        files_in(dest.path())
    );
}

#[test]
fn a_valid_file_with_other_content_fails_its_checksum() {
    let (base, _) = serve();
    let dest = tempfile::tempdir().unwrap();
    let err = fetch(
        Known::Mnist,
        dest.path(),
        &[format!("{base}/wrong/")],
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.ends_with(
            "/wrong/train-images-idx3-ubyte.gz: train-images-idx3-ubyte.gz: SHA-256 mismatch \
             (expected ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db, \
             found ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2)"
        ),
        "{err}"
    );
    assert!(files_in(dest.path()).is_empty());
}

#[test]
fn the_cli_fetches_into_a_folder_and_reports_failure_in_one_line() {
    let (base, _) = serve();
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().to_str().unwrap();
    let good = format!("{base}/good");
    let out = backprop(&[
        "data", "fetch", "mnist", "--dir", dir, "--mirror", &good, "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(dest.path()).len(), 4);

    let empty = tempfile::tempdir().unwrap();
    let missing = format!("{base}/missing");
    let out = backprop(&[
        "data",
        "fetch",
        "fashion-mnist",
        "--dir",
        empty.path().to_str().unwrap(),
        "--mirror",
        &missing,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .starts_with("error: could not fetch train-images-idx3-ubyte.gz for fashion-mnist")
    );
    assert!(files_in(empty.path()).is_empty());
}
