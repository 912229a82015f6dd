//! When work is split across threads: a cost model, measured on the machine at hand.
//!
//! A piece of work that takes `w` seconds on one thread takes about `w / t + s·(t − 1)` on
//! `t` threads, where `s` is what it costs to hand a part to another thread (waking it, and
//! the caller waiting for the slowest part). `s` has two values: a helper asleep must be
//! woken; one kept awake after a recent split ([`awake`]) takes the part at once.
//! [`threads_for`] picks the `t` (up to [`threads`]) for which that is least; so a product,
//! an im2col, a pooling pass or an optimizer update is split when, and only when, its own
//! size makes splitting pay, on this machine, whatever the net.
//!
//! `w` comes from the work's size ([`Work`]: multiply-adds of products, bytes moved by
//! passes over memory) and two rates; the rates, and the costs `s` starts from, are measured
//! once per process, the first time a decision is made ([`rates`], about 3 ms):
//!
//! | constant | how it is measured |
//! |---|---|
//! | multiply-adds per second | a 64×256·256×64 `f32` product on one thread (faer), best of 5 |
//! | bytes per second | `y ← y/2 + x` over two 4 MiB `f32` arrays on one thread, best of 3 |
//! | split cost `s`, asleep | from a call to a part running on another thread, after the pool's threads have slept (0.5 ms idle), median of 3 |
//! | split cost `s`, awake | the same, right after a split, the helpers kept awake, median of 5 |
//!
//! Measured on the 2-core AMD EPYC (Zen, AVX2) machine of `BENCHMARKS.md` (`backprop bench
//! --costs`, five runs): 15.9–19.4 G multiply-adds/s, 14.4–16.1 GB/s and a split cost of
//! 18–23 µs (a virtual machine's wake-up). There a product is split from about 0.8 M
//! multiply-adds (40 µs of work; the book's 100×784·784×50 is 3.9 M), where the constant
//! it replaces said 16 M for every machine, and an Adam update from about 20 K parameters.
//! On a machine with faster cores or slower wake-ups the line moves with the measurements.
//! On a 2-core Zen 4 (AVX-512) machine: 53–57 G multiply-adds/s, a split cost of 19–48 µs
//! asleep and 0.2–0.8 µs awake, so that within a step, after its first split, products from
//! about 0.1 M multiply-adds are split (as small as [`super::linalg`] cuts them).
//!
//! The measurements are made once, at start-up, and a machine changes after it (another
//! program takes the other cores, the host runs another guest on them), or was not itself
//! during it (a measurement that caught the other core away for a few milliseconds). So the
//! `s` of a decision is what splits have cost lately: every split reports how long its
//! caller waited for the other parts once its own was done (`observe_split`), and a moving
//! average of these waits, one for helpers asleep and one for helpers awake, each started at
//! its measured cost, is `s`. When parts start late, splitting stops; one refused split in
//! 16 is made anyway, in two (one in up to 1,024 while such probes keep not paying), so that
//! splitting resumes when the cores are free again, or after a start-up measurement that was
//! wrong.
//! With another program spinning on one of two cores from a second after start-up, a
//! 784-300-100-10 step at batch 64 on 2 threads took 0.88 ms against 1.09 ms without the
//! averages (one thread: 0.80 ms).
//!
//! Splitting never changes a result: each part computes whole output elements with the same
//! additions in the same order (see [`super::linalg::matmul`] and
//! [`super::parallel::parallel_each`]), so the measurements, which vary from run to run,
//! decide only the speed, never the bits.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::awake;
use super::parallel::threads;

/// The size of a piece of work: multiply-adds of `f32` products and bytes read or written by
/// passes over memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Work {
    /// Multiply-adds, counted as `f32` ones (an `f64` one counts twice).
    pub macs: f64,
    /// Bytes read and written by element-wise passes and copies.
    pub bytes: f64,
}

impl Work {
    /// The multiply-adds of an `(m, k)·(k, n)` product of elements of `size` bytes.
    pub fn product(m: usize, k: usize, n: usize, size: usize) -> Self {
        Work {
            macs: (m * k * n) as f64 * (size as f64 / 4.0),
            bytes: 0.0,
        }
    }

    /// A pass that reads and writes `bytes` bytes in all.
    pub fn bytes(bytes: usize) -> Self {
        Work {
            macs: 0.0,
            bytes: bytes as f64,
        }
    }

    /// This work done `times` times.
    pub fn times(self, times: usize) -> Self {
        Work {
            macs: self.macs * times as f64,
            bytes: self.bytes * times as f64,
        }
    }

    /// Both works.
    pub fn and(self, other: Work) -> Self {
        Work {
            macs: self.macs + other.macs,
            bytes: self.bytes + other.bytes,
        }
    }

    /// Seconds on one thread at `rates`.
    pub fn seconds(self, rates: &Rates) -> f64 {
        self.macs / rates.macs_per_s + self.bytes / rates.bytes_per_s
    }
}

/// How fast one thread of this machine computes and moves memory, and what a split costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// `f32` multiply-adds per second of a product on one thread.
    pub macs_per_s: f64,
    /// Bytes per second of an element-wise pass on one thread.
    pub bytes_per_s: f64,
    /// Seconds that handing part of the work to a thread asleep costs.
    pub split_s: f64,
    /// Seconds that handing part of the work to a thread kept awake costs.
    pub awake_split_s: f64,
}

/// The threads that do `work` fastest, at most [`threads`] and at most `max_parts`: the `t`
/// with the least `w / t + s·(t − 1)` (see the module doc). The caller splits the work
/// onto that many threads; when more than one, their helpers are kept awake for the next
/// split ([`awake::after_split`]).
pub fn threads_for(work: Work, max_parts: usize) -> usize {
    let most = threads().min(max_parts);
    if most <= 1 {
        return 1;
    }
    let w = work.seconds(rates());
    let helpers = if awake::helpers_awake() {
        Helpers::Awake
    } else {
        Helpers::Asleep
    };
    let mut probed = false;
    let threads = decide(w, lately(helpers), most, || {
        probed = probe();
        probed
    });
    if threads > 1 {
        LAST_SPLIT.set(LastSplit {
            found: helpers,
            probe_of: probed.then_some(w),
        });
        awake::after_split(threads);
    }
    threads
}

/// The threads for `w` seconds of work when a split costs `s`: as [`fastest`] says, or two
/// where that is one and `probe` says to try a split.
fn decide(w: f64, s: f64, most: usize, probe: impl FnOnce() -> bool) -> usize {
    match fastest(w, s, most) {
        1 if w > 0.0 && probe() => 2,
        threads => threads,
    }
}

/// The pool's helper threads as a split finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Helpers {
    /// Asleep: the split wakes one.
    Asleep,
    /// Kept awake by a recent split ([`awake`]).
    Awake,
}

/// What splits have cost lately, with the helpers asleep and awake: moving averages (weight
/// 1/8 for the newest) of the time each caller waited past its own part ([`observe_split`]),
/// in `f64` bits, starting from the costs measured at start-up ([`rates`]).
static LATELY: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// What [`observe_split`] needs to know of a thread's last split.
#[derive(Debug, Clone, Copy)]
struct LastSplit {
    /// How it found the helpers.
    found: Helpers,
    /// The work's seconds on one thread, when it was a probe.
    probe_of: Option<f64>,
}

thread_local! {
    /// This thread's last split.
    static LAST_SPLIT: Cell<LastSplit> = const {
        Cell::new(LastSplit { found: Helpers::Awake, probe_of: None })
    };
}

/// Splits refused since the last probe.
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// One split in [`PROBE_EVERY`] refused ones, at first, is made anyway, in two, so that the
/// averages follow the machine: back down when its other cores are free again, or after a
/// measurement at start-up that caught the host running something else on them. Each probe
/// that does not pay doubles the interval, up to one in [`PROBE_EVERY_MOST`], so that while
/// the other cores stay busy the probes cost little; one that pays brings it back to 16.
const PROBE_EVERY: usize = 16;

/// The longest interval between probes, in refused splits.
const PROBE_EVERY_MOST: usize = 1024;

/// Refused splits from one probe to the next.
static PROBE_INTERVAL: AtomicUsize = AtomicUsize::new(PROBE_EVERY);

/// Whether to make a split the cost refuses: once in [`PROBE_INTERVAL`] refusals.
fn probe() -> bool {
    let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    let due = refused >= PROBE_INTERVAL.load(Ordering::Relaxed);
    if due {
        REFUSED.store(0, Ordering::Relaxed);
    }
    due
}

/// The interval between probes after one of `w` seconds of work whose caller waited `wait`.
fn next_interval(interval: usize, w: f64, wait: f64) -> usize {
    if fastest(w, wait, 2) > 1 {
        PROBE_EVERY
    } else {
        (2 * interval).min(PROBE_EVERY_MOST)
    }
}

/// What a split finding the helpers so has cost lately, in seconds.
fn lately(helpers: Helpers) -> f64 {
    f64::from_bits(LATELY[helpers as usize].load(Ordering::Relaxed))
}

/// Records that a caller, its own part done, waited `seconds` for the other parts of its
/// last split (a wake-up, a part that started late, or a thread of this process the system
/// ran something else on). The averages of these times, not the costs measured at start-up,
/// decide whether a split is worth it: when another program takes the other cores after
/// start-up, splitting stops paying and stops; when a measurement at start-up caught the
/// other cores away for a few milliseconds (on the 2-vCPU machine of BENCHMARKS.md, 7 of 60
/// start-ups measured 4 ms for a split to helpers awake against 0.2–0.3 µs for the others,
/// 25 measured 3.4 ms for helpers asleep), the waits of the probes bring the cost back down
/// within a few steps, instead of the process running on one thread. After a probe, the
/// first wait its thread reports (of the probe's own join, or of one nested in it) says
/// whether it paid.
pub(crate) fn observe_split(seconds: f64) {
    let last = LAST_SPLIT.get();
    let _ = LATELY[last.found as usize].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(moving_average(f64::from_bits(old), seconds).to_bits())
    });
    if let Some(w) = last.probe_of {
        LAST_SPLIT.set(LastSplit {
            probe_of: None,
            ..last
        });
        let _ = PROBE_INTERVAL.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |interval| {
            Some(next_interval(interval, w, seconds))
        });
    }
}

/// The average after `newest`, which weighs 1/8.
fn moving_average(average: f64, newest: f64) -> f64 {
    average + (newest.max(0.0) - average) / 8.0
}

/// The `t` in `1..=most` with the least `w / t + s·(t − 1)`, for `w` seconds of work on one
/// thread and a split cost of `s` seconds.
fn fastest(w: f64, s: f64, most: usize) -> usize {
    let time = |t: usize| w / t as f64 + s * (t - 1) as f64;
    (1..=most.max(1))
        .min_by(|&a, &b| time(a).total_cmp(&time(b)))
        .unwrap_or(1)
}

/// This machine's [`Rates`], measured on first use, which also starts the averages of what
/// splits cost (`observe_split`) at the measured costs.
pub fn rates() -> &'static Rates {
    static RATES: OnceLock<Rates> = OnceLock::new();
    RATES.get_or_init(|| {
        let rates = measure();
        LATELY[Helpers::Asleep as usize].store(rates.split_s.to_bits(), Ordering::Relaxed);
        LATELY[Helpers::Awake as usize].store(rates.awake_split_s.to_bits(), Ordering::Relaxed);
        rates
    })
}

fn measure() -> Rates {
    Rates {
        macs_per_s: product_rate(),
        bytes_per_s: stream_rate(),
        split_s: split_cost(3, || std::thread::sleep(Duration::from_micros(500))),
        awake_split_s: split_cost(5, || awake::after_split(2)),
    }
}

/// The fastest of `runs` timings of `f`, in seconds.
fn best_of(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
        .max(1e-9)
}

fn product_rate() -> f64 {
    let (m, k, n) = (64, 256, 64);
    let a = faer::Mat::<f32>::from_fn(m, k, |i, j| ((i + 2 * j) % 7) as f32);
    let b = faer::Mat::<f32>::from_fn(k, n, |i, j| ((3 * i + j) % 5) as f32);
    let mut c = faer::Mat::<f32>::zeros(m, n);
    let mut product = || {
        faer::linalg::matmul::matmul(
            c.as_mut(),
            faer::Accum::Replace,
            a.as_ref(),
            b.as_ref(),
            1.0,
            faer::Par::Seq,
        );
    };
    product(); // warm caches and the kernel dispatch
    (m * k * n) as f64 / best_of(5, product)
}

fn stream_rate() -> f64 {
    let len = 1 << 20; // 4 MiB of f32: beyond most L2 caches, as a large layer's update
    let x = vec![1.0f32; len];
    let mut y = vec![2.0f32; len];
    let seconds = best_of(3, || {
        for (y, &x) in y.iter_mut().zip(&x) {
            *y = *y * 0.5 + x;
        }
        std::hint::black_box(&mut y);
    });
    (3 * 4 * len) as f64 / seconds // two arrays read, one written
}

/// Waiting longer than this for another thread to take work ends a measurement of the split
/// cost at this value: splitting then pays only for work of 10 ms and more.
const GIVE_UP: Duration = Duration::from_millis(5);

/// The median of `runs` times from a `rayon::join` to its second part starting on another
/// thread, `before` run before each (sleeping, so that the pool's threads fall asleep; or
/// keeping them awake); [`GIVE_UP`] at most (a pool of one thread, or a machine whose other
/// cores are busy elsewhere).
fn split_cost(runs: usize, before: impl Fn()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            before();
            let started = AtomicBool::new(false);
            let start = Instant::now();
            let mut taken = None;
            rayon::join(
                || {
                    while !started.load(Ordering::Acquire) && start.elapsed() < GIVE_UP {
                        std::hint::spin_loop();
                    }
                },
                || {
                    if !started.swap(true, Ordering::AcqRel) {
                        taken = Some(start.elapsed());
                    }
                },
            );
            taken.unwrap_or(GIVE_UP).min(GIVE_UP).as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_timed_at_the_rates() {
        let rates = Rates {
            macs_per_s: 1e10,
            bytes_per_s: 2e9,
            split_s: 2e-5,
            awake_split_s: 2e-6,
        };
        let seconds = |work: Work| work.seconds(&rates);
        assert_eq!(seconds(Work::product(100, 784, 50, 4)), 3.92e-4);
        assert_eq!(
            seconds(Work::product(100, 784, 50, 8)),
            7.84e-4,
            "f64 counts twice"
        );
        assert_eq!(seconds(Work::bytes(1000).times(3)), 1.5e-6);
        let both = Work::product(10, 10, 10, 4).and(Work::bytes(2000));
        assert_eq!(seconds(both), 1e-7 + 1e-6);
    }

    #[test]
    fn work_is_split_when_the_time_saved_outweighs_the_split() {
        let s = 20e-6;
        assert_eq!(fastest(0.0, s, 8), 1, "no work, no split");
        assert_eq!(fastest(30e-6, s, 2), 1, "15 µs saved, 20 µs spent");
        assert_eq!(fastest(50e-6, s, 2), 2, "25 µs saved, 20 µs spent");
        // t = 3 beats 2 once w/6 > s, and 4 beats 3 once w/12 > s.
        assert_eq!(fastest(130e-6, s, 8), 3);
        assert_eq!(fastest(250e-6, s, 8), 4);
        assert_eq!(fastest(1.0, s, 4), 4, "never more than allowed");
        assert_eq!(fastest(1.0, s, 0), 1);
    }

    #[test]
    fn splits_that_cost_more_of_late_stop_but_for_probes() {
        let (w, most) = (100e-6, 4);
        assert_eq!(decide(w, 1e-6, most, || false), 4);
        assert_eq!(decide(w, 20e-6, most, || false), 2, "still pays, in two");
        assert_eq!(decide(w, 1e-3, most, || false), 1, "a late part each time");
        assert_eq!(decide(w, 1e-3, most, || true), 2, "a probe, in two");
        assert_eq!(decide(0.0, 1e-3, most, || true), 1, "no work, no probe");
        // The average follows: 8 µs after an average of 0 moves it to 1 µs; the same time
        // over and over brings it there, from a measurement of 4 ms as from one of 0.
        assert_eq!(moving_average(0.0, 8e-6), 1e-6);
        for start in [4e-3, 0.0] {
            let settled = (0..200).fold(start, |a, _| moving_average(a, 2e-6));
            assert!((settled - 2e-6).abs() < 1e-9, "{settled}");
        }
    }

    #[test]
    fn a_wrong_measurement_at_start_up_is_outlived() {
        // Splits measured at 4 ms at start-up (the other core away during the measurement);
        // the machine's real cost is 0.5 µs. A 20 µs product, refused at 4 ms, is probed once
        // in 16 refusals, and the probes' waits bring the average down until the product is
        // split every time.
        let (w, mut s) = (20e-6, 4e-3);
        let mut refused = 0usize;
        let mut splits = Vec::new();
        for _ in 0..2000 {
            let threads = decide(w, s, 2, || {
                refused += 1;
                refused % PROBE_EVERY == 0
            });
            if threads > 1 {
                s = moving_average(s, 0.5e-6);
            }
            splits.push(threads);
        }
        assert!(splits[..15].iter().all(|&t| t == 1), "refused at first");
        assert!(splits[1900..].iter().all(|&t| t == 2), "{s}");
    }

    #[test]
    fn probes_that_do_not_pay_come_ever_more_rarely() {
        let w = 100e-6;
        let busy = (0..10).fold(PROBE_EVERY, |i, _| next_interval(i, w, 1e-3));
        assert_eq!(busy, PROBE_EVERY_MOST, "a core away: 1 ms waits");
        assert_eq!(next_interval(64, w, 60e-6), 128, "60 µs of 100 do not pay");
        assert_eq!(next_interval(busy, w, 1e-6), PROBE_EVERY, "the core back");
    }

    #[test]
    fn the_measurements_are_rates_and_the_limits_hold() {
        let r = *rates();
        assert!(r.macs_per_s > 1e7 && r.macs_per_s.is_finite(), "{r:?}");
        assert!(r.bytes_per_s > 1e6 && r.bytes_per_s.is_finite(), "{r:?}");
        for s in [r.split_s, r.awake_split_s] {
            assert!(s > 0.0 && s <= GIVE_UP.as_secs_f64(), "{r:?}");
        }
        let huge = Work::product(4096, 4096, 4096, 4);
        assert_eq!(threads_for(huge, 1), 1, "one part, one thread");
        assert!(threads_for(huge, 3) <= 3);
        assert_eq!(threads_for(Work::default(), 64), 1, "no work, no split");
    }
}
