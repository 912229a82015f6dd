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
//! passes over memory) and two rates; `s` and the rates are measured once per process, the
//! first time a decision is made ([`rates`], about 3 ms):
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
//! The measurements are made once, at start-up; a machine changes after it (another program
//! takes the other cores, the host runs another guest on them). So every split also reports
//! how long its caller waited for the other parts once its own was done
//! ([`observe_split`]), and the larger of that moving average and the measured cost is the
//! `s` of a decision: when parts start late, splitting stops; one refused split in 16 is
//! made anyway, so that splitting resumes when the cores are free again. With another
//! program spinning on one of two cores from a second after start-up, a 784-300-100-10
//! step at batch 64 on 2 threads took 0.88 ms against 1.09 ms without this average (one
//! thread: 0.80 ms).
//!
//! Splitting never changes a result: each part computes whole output elements with the same
//! additions in the same order (see [`super::linalg::matmul`] and
//! [`super::parallel::parallel_each`]), so the measurements, which vary from run to run,
//! decide only the speed, never the bits.

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
    let rates = rates();
    let w = work.seconds(rates);
    let measured = if awake::helpers_awake() {
        rates.awake_split_s
    } else {
        rates.split_s
    };
    let threads = decide(w, observed_split_s(), measured, most, probe);
    if threads > 1 {
        awake::after_split(threads);
    }
    threads
}

/// The threads for `w` seconds of work when splits cost `lately` of late and `measured` when
/// last measured: as [`fastest`] says for the larger of the two, except where only `lately`
/// refuses a split and `probe` says to try one.
fn decide(
    w: f64,
    lately: f64,
    measured: f64,
    most: usize,
    probe: impl FnOnce(bool) -> bool,
) -> usize {
    match fastest(w, lately.max(measured), most) {
        1 if probe(fastest(w, measured, most) > 1) => fastest(w, measured, most),
        threads => threads,
    }
}

/// What splits have cost lately: a moving average (weight 1/8 for the newest) of the time
/// each caller waited past its own part ([`observe_split`]), in `f64` bits.
static LATELY: AtomicU64 = AtomicU64::new(0);

/// Splits refused because of what splits cost lately although the measured cost allows them.
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// One split in [`PROBE_EVERY`] that what splits cost lately would refuse is made anyway, so
/// that the average follows the machine back when its other cores are free again.
const PROBE_EVERY: usize = 16;

/// Whether to make a split that the measured cost allows (`allowed`) but what splits cost
/// lately refuses: once in [`PROBE_EVERY`] such refusals.
fn probe(allowed: bool) -> bool {
    allowed && REFUSED.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == PROBE_EVERY - 1
}

/// The moving average of [`observe_split`]'s times, in seconds.
fn observed_split_s() -> f64 {
    f64::from_bits(LATELY.load(Ordering::Relaxed))
}

/// Records that a caller, its own part done, waited `seconds` for the other parts of a split
/// (a wake-up, a part that started late, or a thread of this process the system ran
/// something else on). The average of these times, not only the cost measured at start-up,
/// decides whether helpers kept awake are worth a split: when another program takes the other
/// cores after start-up, splitting stops paying and stops.
pub fn observe_split(seconds: f64) {
    let _ = LATELY.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(moving_average(f64::from_bits(old), seconds).to_bits())
    });
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

/// This machine's [`Rates`], measured on first use.
pub fn rates() -> &'static Rates {
    static RATES: OnceLock<Rates> = OnceLock::new();
    RATES.get_or_init(measure)
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
        let (w, measured, most) = (100e-6, 1e-6, 2);
        assert_eq!(decide(w, 0.0, measured, most, |_| false), 2);
        assert_eq!(decide(w, 2e-6, measured, most, |_| false), 2, "still pays");
        assert_eq!(
            decide(w, 1e-3, measured, most, |_| false),
            1,
            "a late part each time"
        );
        assert_eq!(
            decide(w, 1e-3, measured, most, |allowed| allowed),
            2,
            "a probe"
        );
        assert_eq!(
            decide(1e-6, 1e-3, measured, most, |allowed| allowed),
            1,
            "never paid"
        );
        // The average follows: 8 µs after an average of 0 moves it to 1 µs; the same time
        // over and over brings it there.
        assert_eq!(moving_average(0.0, 8e-6), 1e-6);
        let settled = (0..200).fold(1e-3, |a, _| moving_average(a, 2e-6));
        assert!((settled - 2e-6).abs() < 1e-9, "{settled}");
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
