//! Evaluation runs in chunks: its memory does not grow with the number of images beyond the
//! images themselves (kept as bytes).

use std::io::Write;

use backprop::data::encode_idx;

/// The largest resident set of any child process reaped so far, in bytes.
fn children_peak_rss() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is a valid target.
    let usage = unsafe {
        assert_eq!(
            libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()),
            0
        );
        usage.assume_init()
    };
    usage.ru_maxrss as u64 * 1024 // kilobytes on Linux
}

/// Peak memory of `backprop eval` of the corpus model on a test split of `n` 28×28 images.
fn eval_peak(n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    // Written in small pieces: a child's peak counts the memory its parent held at fork.
    let write = |name: &str, dims: &[usize], item: &dyn Fn(usize) -> u8| {
        let file = std::fs::File::create(dir.path().join(name)).unwrap();
        let mut file = std::io::BufWriter::new(file);
        file.write_all(&encode_idx(dims, &[])).unwrap();
        let len: usize = dims.iter().product();
        for start in (0..len).step_by(1 << 16) {
            let piece: Vec<u8> = (start..len.min(start + (1 << 16))).map(item).collect();
            file.write_all(&piece).unwrap();
        }
    };
    let pixel = |i: usize| (i * 31 % 251) as u8;
    let label = |i: usize| (i % 10) as u8;
    write("train-images-idx3-ubyte", &[10, 28, 28], &pixel);
    write("train-labels-idx1-ubyte", &[10], &label);
    write("t10k-images-idx3-ubyte", &[n, 28, 28], &pixel);
    write("t10k-labels-idx1-ubyte", &[n], &label);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backprop"))
        .args([
            "eval",
            "--model",
            "tests/corpus/model/good.safetensors",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    children_peak_rss()
}

#[test]
fn evaluating_100_000_images_costs_their_bytes_and_no_more() {
    let small = eval_peak(1_000);
    let large = eval_peak(100_000);
    let images = 99_000 * 784;
    // The images are kept as bytes (78 MB), read from the file straight into place; the
    // evaluation itself adds no more than a few chunks. As f32 they alone would be 310 MB.
    let grown = large.saturating_sub(small);
    assert!(
        grown < images as u64 + (40 << 20),
        "peak memory grew by {} MB for {} MB of images",
        grown >> 20,
        images >> 20
    );
}
