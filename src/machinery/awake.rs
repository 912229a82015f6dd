//! Keeping the pool's threads awake between the splits of a training step.
//!
//! A thread of rayon's pool that finds no work spins briefly, then sleeps; handing it the
//! next part of a split then costs a wake-up (20–45 µs measured on this project's virtual
//! machines, `backprop bench --costs`). A dense net's step splits a product, runs a short
//! element-wise pass on the calling thread, splits the next product, and so on: each gap is
//! long enough for the helpers to fall asleep, so each split paid the wake-up, which on a
//! 784-300-100-10 step at batch 64 was a sixth of the threads' time spent in the kernel's
//! scheduler.
//!
//! So every split ([`cost::threads_for`](super::cost::threads_for) returning more than one
//! thread) calls [`after_split`], which makes sure that as many helpers as the split used
//! are kept busy, each in a keeper job that takes the pool's next piece of work as soon
//! as there is one (`rayon::yield_now`), for up to [`STAY_AWAKE`] after the last split. This
//! is what OpenMP runtimes do with their spin-wait before sleeping (numpy's OpenBLAS and
//! PyTorch both wait so). Spinning only ever follows a split, which the cost model makes
//! only when the other cores were found free; it changes which thread runs a part, never
//! what a part computes, so results keep their bits.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long after the last split the helpers stay awake. Gaps between the splits of a
/// step are far shorter (tens to hundreds of µs: a bias, an activation, a softmax); a gap
/// longer than this costs a wake-up, at most a few percent of it.
pub const STAY_AWAKE: Duration = Duration::from_millis(1);

/// Keeper jobs running or queued.
static KEEPERS: AtomicUsize = AtomicUsize::new(0);

/// Keeper jobs started so far.
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// When the last split was made, in nanoseconds since [`epoch`].
static LAST_SPLIT: AtomicU64 = AtomicU64::new(0);

/// The pool index of the thread that made the last split, plus one (0: outside the pool).
/// A keeper never keeps that thread: it is the one with work of its own to do.
static SPLITTER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread runs a keeper, so that a keeper it runs inside is not another.
    static KEEPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Called by every split onto `threads` threads: keeps `threads − 1` helpers awake until
/// [`STAY_AWAKE`] after this call.
pub fn after_split(threads: usize) {
    LAST_SPLIT.store(now_ns(), Ordering::Relaxed);
    let splitter = rayon::current_thread_index().map_or(0, |i| i + 1);
    SPLITTER.store(splitter, Ordering::Relaxed);
    let helpers = threads.saturating_sub(1);
    while KEEPERS
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |k| {
            (k < helpers).then_some(k + 1)
        })
        .is_ok()
    {
        STARTED.fetch_add(1, Ordering::Relaxed);
        rayon::spawn(keeper);
    }
}

/// Keeper jobs started so far in this process. Each is one small allocation (rayon's job
/// record), made by a split after the helpers were left idle for [`STAY_AWAKE`]; a step that
/// follows another allocates none.
pub fn keepers_started() -> usize {
    STARTED.load(Ordering::Relaxed)
}

/// Keeper jobs running or queued now.
pub fn keepers() -> usize {
    KEEPERS.load(Ordering::Acquire)
}

/// Whether a keeper runs or is queued, from a split less than [`STAY_AWAKE`] ago: the next
/// split's parts are taken without a wake-up.
pub fn helpers_awake() -> bool {
    keepers() > 0 && !expired(LAST_SPLIT.load(Ordering::Relaxed))
}

/// Whether [`STAY_AWAKE`] has passed since `last_split`.
fn expired(last_split: u64) -> bool {
    let awake = u64::try_from(STAY_AWAKE.as_nanos()).unwrap_or(u64::MAX);
    now_ns().saturating_sub(last_split) > awake
}

/// Runs the pool's work as it comes until [`STAY_AWAKE`] has passed since the last split;
/// leaves at once when run by the thread that splits, or inside another keeper.
fn keeper() {
    let own = rayon::current_thread_index().map_or(0, |i| i + 1);
    let nested = KEEPING.with(|k| k.replace(true));
    let mut idle_rounds = 0u32;
    while !nested && SPLITTER.load(Ordering::Relaxed) != own {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => idle_rounds = 0,
            Some(rayon::Yield::Idle) => {
                idle_rounds = idle_rounds.wrapping_add(1);
                // Reading the clock costs as much as a look for work: look more often.
                if idle_rounds % 16 == 0 && expired(LAST_SPLIT.load(Ordering::Relaxed)) {
                    break;
                }
                std::hint::spin_loop();
            }
            None => break,
        }
    }
    KEEPING.with(|k| k.set(nested));
    KEEPERS.fetch_sub(1, Ordering::AcqRel);
}
