//! `train --tensorboard DIR`: what the event files hold, against `metrics.csv`, and a killed
//! run's files, readable, continued by its resumption as one run.

mod common;
use std::path::{Path, PathBuf};

use backprop::io::tensorboard::{RecordedEvent, read_events};
use common::{Paused, backprop, stderr};

/// The event files of `dir`, in the order TensorBoard reads them (by name).
fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("tfevents"))
        .collect();
    files.sort();
    files
}

/// The events of `dir` as TensorBoard keeps them: each file in order, a restart at step S
/// dropping what came before it from step S on.
fn run_events(dir: &Path) -> Vec<RecordedEvent> {
    let mut kept: Vec<RecordedEvent> = Vec::new();
    for file in event_files(dir) {
        for event in read_events(&file).unwrap() {
            if event.restart {
                kept.retain(|e| e.step < event.step);
            }
            kept.push(event);
        }
    }
    kept
}

/// `(step, value)` of every scalar `tag`, in order.
fn scalars(events: &[RecordedEvent], tag: &str) -> Vec<(i64, f32)> {
    events
        .iter()
        .flat_map(|e| {
            e.scalars
                .iter()
                .filter(|(t, _)| t == tag)
                .map(move |(_, v)| (e.step, *v))
        })
        .collect()
}

/// `metrics.csv` column `column` as `(iter, value as f32)`.
fn metric(run: &Path, column: usize) -> Vec<(i64, f32)> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            (cells[1].parse().unwrap(), cells[column].parse().unwrap())
        })
        .collect()
}

const NET: [&str; 8] = [
    "train",
    "--net",
    "784-30-10",
    "--eval-every",
    "100",
    "--checkpoint-every",
    "100",
    "--quiet",
];

fn run_args<'a>(iters: &'a str, out: &'a str, tb: &'a str) -> Vec<&'a str> {
    let mut args = NET.to_vec();
    args.extend(["--iters", iters, "--out", out, "--tensorboard", tb]);
    args
}

#[test]
fn the_events_hold_every_iteration_and_the_metrics_of_every_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let (out, tb) = (dir.path().join("run"), dir.path().join("tb"));
    let done = backprop(&run_args(
        "201",
        out.to_str().unwrap(),
        tb.to_str().unwrap(),
    ));
    assert!(done.status.success(), "{}", stderr(&done));
    let events = run_events(&tb);
    let steps: Vec<i64> = scalars(&events, "loss/batch").iter().map(|s| s.0).collect();
    assert_eq!(steps, (0..201).collect::<Vec<i64>>());
    for (tag, column) in [
        ("loss/mean", 2),
        ("accuracy/train", 3),
        ("accuracy/test", 4),
    ] {
        assert_eq!(scalars(&events, tag), metric(&out, column), "{tag}");
    }
    assert_eq!(
        scalars(&events, "learning_rate"),
        vec![(0, 0.1), (100, 0.1), (200, 0.1)]
    );
    let at_evaluations: Vec<&RecordedEvent> =
        events.iter().filter(|e| !e.histograms.is_empty()).collect();
    assert_eq!(at_evaluations.len(), 3);
    for e in at_evaluations {
        let expected: Vec<(String, f64)> = [
            ("W1", 784.0 * 30.0),
            ("b1", 30.0),
            ("W2", 300.0),
            ("b2", 10.0),
        ]
        .iter()
        .flat_map(|(name, n)| {
            [
                (format!("weights/{name}"), *n),
                (format!("gradients/{name}"), *n),
            ]
        })
        .collect();
        assert_eq!(e.histograms, expected, "step {}", e.step);
        assert_eq!(e.images, vec!["filters/first_layer".to_string()]);
    }
}

#[test]
fn a_killed_run_leaves_readable_events_that_its_resumption_continues_as_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (out, tb) = (path("run"), path("tb"));
    let mut child = Paused::start(&run_args("300", &out, &tb));
    child.reach("iter 250");
    child.kill();
    let killed = event_files(Path::new(&tb));
    assert_eq!(killed.len(), 1);
    let written = read_events(&killed[0]).unwrap();
    let last = scalars(&written, "loss/batch").last().copied().unwrap();
    assert_eq!(
        last.0, 250,
        "each iteration's event is on disk when it ends"
    );

    let resumed = backprop(&["train", "--resume", &out, "--quiet"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let files = event_files(Path::new(&tb));
    assert_eq!(
        files.len(),
        2,
        "the resumption writes a second file beside the first"
    );
    let restart = &read_events(&files[1]).unwrap()[1];
    assert_eq!((restart.restart, restart.step), (true, 200));

    let (whole_out, whole_tb) = (path("whole"), path("whole-tb"));
    let whole = backprop(&run_args("300", &whole_out, &whole_tb));
    assert!(whole.status.success(), "{}", stderr(&whole));
    let (one, two) = (run_events(Path::new(&tb)), run_events(Path::new(&whole_tb)));
    for tag in ["loss/batch", "loss/mean", "accuracy/train", "accuracy/test"] {
        assert_eq!(scalars(&one, tag), scalars(&two, tag), "{tag}");
    }
    assert_eq!(scalars(&one, "accuracy/test"), metric(Path::new(&out), 4));
}

#[test]
fn a_tensorboard_folder_that_cannot_be_made_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let out = dir.path().join("run");
    let args = run_args("50", out.to_str().unwrap(), file.to_str().unwrap());
    let refused = backprop(&args);
    assert_eq!(refused.status.code(), Some(1));
    let said = stderr(&refused);
    assert!(
        said.starts_with(&format!("error: {}: ", file.display())) && said.lines().count() == 1,
        "{said}"
    );
    assert!(!out.join("model.safetensors").exists());
}
