//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs the `backprop` binary with `args` and an isolated cache folder.
pub fn backprop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backprop"))
        .args(args)
        .env(
            "BACKPROP_CACHE_DIR",
            std::env::temp_dir().join("backprop-test-empty-cache"),
        )
        .output()
        .expect("the backprop binary runs")
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every parameter and buffer of `net` as exact bit patterns, in the net's order.
pub fn net_bits(net: &mut backprop::net::Sequential<f32>) -> Vec<u32> {
    backprop::io::named_params(net)
        .into_iter()
        .flat_map(|(_, a)| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// Tensors of a model file, by name, as exact bit patterns.
pub fn weights(path: &std::path::Path) -> Vec<(String, Vec<u64>)> {
    backprop::io::TensorFile::read(path)
        .unwrap()
        .tensors
        .into_iter()
        .map(|(n, a)| (n, a.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

/// A run folder's metrics.csv without the elapsed-time column.
pub fn metrics(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}
