//! Pause points: named moments at which a process can be stopped from outside, so that the
//! fault tests kill it at a moment they choose from what it reports, not after a guessed
//! delay (which lands elsewhere on a faster or busier machine).
//!
//! With `BACKPROP_PAUSE_POINTS=1` in the environment, the process writes a line
//! `pause: <moment>` to stderr at each point below and waits for a line on stdin before it
//! goes on; at the end of stdin it stops pausing (and at an error reading it, which it
//! says). The test reads the lines and either answers or kills the process, which is then
//! exactly at that moment; the answer `panic` makes it panic there (a bug's way to end).
//! Without the variable a point costs one load of a flag.
//!
//! | moment | where |
//! |---|---|
//! | `iter N` | after the update of training iteration `N` |
//! | `evaluated N` | after the evaluation taken at iteration `N` |
//! | `temporary FILE` | an atomic write of `FILE` has created its empty temporary file |
//! | `half FILE` | half of `FILE`'s bytes are in the temporary file |
//! | `synced FILE` | all of them, synced to disk, not yet renamed |
//! | `renamed FILE` | the temporary has been renamed to `FILE` (the others of a set may not be yet) |

use std::io::{BufRead, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that turns the points on.
pub const VARIABLE: &str = "BACKPROP_PAUSE_POINTS";

/// Whether the points pause: the variable is set and stdin has not ended.
fn active() -> &'static AtomicBool {
    static ACTIVE: OnceLock<AtomicBool> = OnceLock::new();
    ACTIVE.get_or_init(|| AtomicBool::new(std::env::var_os(VARIABLE).is_some()))
}

/// A pause point named by `moment` (evaluated only when the points are on).
pub(crate) fn pause(moment: impl FnOnce() -> String) {
    if !active().load(Ordering::Relaxed) {
        return;
    }
    // One write: a launcher merging several processes' output (mpirun) cannot cut the line.
    let told = std::io::stderr().write_all(format!("pause: {}\n", moment()).as_bytes());
    let mut line = String::new();
    let answered = std::io::stdin().lock().read_line(&mut line);
    if told.is_err() || !matches!(answered, Ok(n) if n > 0) {
        active().store(false, Ordering::Relaxed);
    }
    if let Err(e) = answered {
        // Not the end of stdin that a test gives: said, so that the test can tell why.
        let _ = std::io::stderr().write_all(format!("pause points off: stdin: {e}\n").as_bytes());
    }
    assert!(line.trim() != "panic", "asked to panic at a pause point");
}
