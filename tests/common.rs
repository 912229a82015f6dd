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

/// A `backprop` process run with its pause points on (`backprop::pause_points`): it stops at
/// each named moment until told to go on, so a test kills it exactly where it chooses.
pub struct Paused {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    waiting: bool,
    /// The lines it wrote to stderr besides the pause points.
    pub said: Vec<String>,
}

impl Paused {
    /// Starts `backprop` with `args`, paused at its first point.
    pub fn start(args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backprop"));
        command.args(args);
        Self::spawn(command)
    }

    /// Starts `command`, a `backprop` process or a launcher of some, paused at its first
    /// point.
    pub fn spawn(mut command: Command) -> Self {
        use std::process::Stdio;
        let mut child = command
            .env(backprop::pause_points::VARIABLE, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the backprop binary starts");
        let stdin = child.stdin.take();
        let stderr = std::io::BufReader::new(child.stderr.take().expect("piped"));
        Paused {
            child,
            stdin,
            stderr,
            waiting: false,
            said: Vec::new(),
        }
    }

    /// Lets the process go on to its next pause point and returns that moment, or `None`
    /// when it ended first.
    pub fn next_moment(&mut self) -> Option<String> {
        use std::io::{BufRead, Write};
        if std::mem::take(&mut self.waiting) {
            let stdin = self.stdin.as_mut()?;
            // A process that has just ended no longer reads: the next read tells.
            let _ = stdin.write_all(b"\n").and_then(|()| stdin.flush());
        }
        let mut line = String::new();
        loop {
            line.clear();
            if self.stderr.read_line(&mut line).ok()? == 0 {
                return None;
            }
            match line.trim_end().strip_prefix("pause: ") {
                Some(moment) => {
                    self.waiting = true;
                    return Some(moment.to_string());
                }
                None => self.said.push(line.trim_end().to_string()),
            }
        }
    }

    /// Goes on to the first moment for which `wanted` holds; `None` when it ended first.
    pub fn until(&mut self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        while let Some(moment) = self.next_moment() {
            if wanted(&moment) {
                return Some(moment);
            }
        }
        None
    }

    /// Goes on to the pause point `moment`, failing with what the process said if it ended
    /// first.
    #[track_caller]
    pub fn reach(&mut self, moment: &str) {
        let reached = self.until(|m| m == moment);
        assert!(
            reached.is_some(),
            "the process ended before `{moment}`; it said: {:?}",
            self.said
        );
    }

    /// Tells the process to panic where it stands (a bug's way to end).
    pub fn panic_here(&mut self) {
        use std::io::Write;
        self.waiting = false;
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(b"panic\n").and_then(|()| stdin.flush());
        }
    }

    /// Kills the process with SIGKILL where it stands and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("the process can be killed");
        self.child.wait().expect("the process is reaped");
    }

    /// Lets the process run to its end without pausing again; its exit status.
    pub fn finish(&mut self) -> std::process::ExitStatus {
        use std::io::Read;
        self.stdin = None; // the end of stdin turns the points off
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest);
        self.said.extend(rest.lines().map(str::to_string));
        self.child.wait().expect("the process is reaped")
    }
}
