//! The threads the kernels run on: how many ([`set_threads`], [`threads`]), where (rayon's
//! pool, [`on_thread_pool`]), work on disjoint parts of arrays split among them when the cost
//! model says it pays ([`parallel_each`], [`parallel_zip3`]), and sums in a fixed order
//! whatever the split ([`sum_in_fixed_groups`]).
//!
//! Threads come from rayon's pool, one per core, and the CLI runs each command on one of them
//! ([`on_thread_pool`]), so that a parallel product or pass uses the calling thread and one
//! other per remaining core: no thread is started per product, and there are never more
//! busy or spinning threads than cores. Measured on W3 (784-1000-1000-10, batch 128): faer's
//! parallel GEMM on the pool 10.5 ms per step against 12.6 for products cut into blocks run
//! on threads started per product.
//!
//! Every job of [`parallel_each`] writes only its own part of the output, so results do not
//! depend on how the jobs were split: the same bits at any thread count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayViewMut2, Dimension, NdFloat, NdProducer, Zip};

use super::cost::{self, Work};

/// Threads used by the kernels; 0 means "not set": all cores.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads the kernels use (1 = no parallelism at all).
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

thread_local! {
    /// Set on threads that are themselves one of several workers (see
    /// [`one_thread_each`]): their kernels run on that thread alone.
    static WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the kernels of the calling thread on that thread alone, for workers that
/// already share the cores among themselves (independent training runs): nested kernels then
/// do not start threads of their own. Other threads are not affected.
pub fn one_thread_each<R>(f: impl FnOnce() -> R) -> R {
    /// Puts the flag back as it was, also when `f` panics: the threads of rayon's pool
    /// outlive the panic and must not stay limited to themselves.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            WORKER.with(|w| w.set(self.0));
        }
    }
    let _restore = Restore(WORKER.with(|w| w.replace(true)));
    f()
}

/// The number of threads the kernels use: 1 inside [`one_thread_each`], else as set, else
/// one per core.
pub fn threads() -> usize {
    if WORKER.with(std::cell::Cell::get) {
        return 1;
    }
    match THREADS.load(Ordering::Relaxed) {
        0 => cores(),
        n => n,
    }
}

/// The cores this process may use, asked once: asking reads the cgroup's CPU limits from
/// `/sys` (several system calls), which, asked per product, took a third of a W2 step.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs `f` on a thread of rayon's pool, which has one thread per core, as the CLI runs
/// every command. Parallel products (see [`matmul`](super::linalg::matmul)) then run on the
/// pool's threads with the calling thread among them, instead of the caller sleeping beside
/// them while they run: as many threads as cores, and no waking of the caller after each
/// product.
///
/// The pool's threads get the 8 MiB stack of a main thread, so that a command has the same
/// room there as it would on the main thread (unless something built the pool before).
pub fn on_thread_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // An error only says that the pool exists already.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(8 << 20)
        .build_global();
    // Called from outside the pool, `rayon::scope` runs its body on a thread of the pool.
    rayon::scope(|_| f())
}

/// Runs `f` on every job, the jobs split into one contiguous group per thread that pays
/// for `work` (the jobs' total, see [`cost::threads_for`]; inline when that is one thread):
/// the calling thread runs the first group, rayon's pool the others, each with its kernels on
/// its own thread ([`one_thread_each`]). For work on disjoint parts of arrays, such as the
/// images of a batch: each job writes only its own part, so the result does not depend on
/// the split.
pub fn parallel_each<T: Send>(jobs: Vec<T>, work: Work, f: impl Fn(T) + Sync) {
    let threads = cost::threads_for(work, jobs.len());
    if threads <= 1 {
        jobs.into_iter().for_each(f);
        return;
    }
    let per_thread = jobs.len().div_ceil(threads);
    let mut jobs = jobs.into_iter();
    let own: Vec<T> = jobs.by_ref().take(per_thread).collect();
    let run = |group: Vec<T>| one_thread_each(|| group.into_iter().for_each(&f));
    let run = &run;
    let (start, mut own_part) = (Instant::now(), Duration::ZERO);
    rayon::in_place_scope(|scope| {
        loop {
            let group: Vec<T> = jobs.by_ref().take(per_thread).collect();
            if group.is_empty() {
                break;
            }
            scope.spawn(move |_| run(group));
        }
        run(own);
        own_part = start.elapsed();
    });
    report_wait(start, own_part);
}

/// `zip.for_each(f)` over arrays of `A` side by side, on all threads when the cost model
/// says a pass that reads and writes `bytes` bytes per element pays
/// ([`cost::threads_for`]): the zip cut into equal parts ([`for_each_part`]). Each element
/// is computed on its own, so the bits are the same either way. A macro: the zips of one to
/// four arrays are types with no common trait.
macro_rules! zip_for_each {
    ($zip:expr, $bytes:expr, $f:expr) => {{
        let (zip, f) = ($zip, $f);
        let work = $crate::machinery::cost::Work::bytes(zip.size() * $bytes);
        match $crate::machinery::cost::threads_for(work, zip.size()) {
            1 => zip.for_each(f),
            threads => {
                $crate::machinery::parallel::for_each_part(zip, threads, &|part| part.for_each(&f))
            }
        }
    }};
}
pub(crate) use zip_for_each;

/// A zip of arrays that can be cut in two halves (ndarray's `Zip::split`).
pub trait Halves: Sized + Send {
    /// The number of elements.
    fn size(&self) -> usize;
    /// The two halves, along the axis that keeps elements together.
    fn halves(self) -> (Self, Self);
}

/// [`Halves`] for the zips of one to four producers.
macro_rules! zip_halves {
    ($($p:ident),+) => {
        impl<D: Dimension, $($p: NdProducer<Dim = D> + Send),+> Halves for Zip<($($p,)+), D> {
            fn size(&self) -> usize {
                Zip::size(self)
            }

            fn halves(self) -> (Self, Self) {
                self.split()
            }
        }
    };
}
zip_halves!(P1);
zip_halves!(P1, P2);
zip_halves!(P1, P2, P3);
zip_halves!(P1, P2, P3, P4);

/// Runs `f` on `zip` cut into parts for `threads` threads, halved recursively with
/// `rayon::join` (which allocates nothing): `threads` equal parts when it is a power of two,
/// else twice the next power of two, which the threads share as they finish. A fixed cut,
/// rather than rayon's adaptive one, which split a pass into ever smaller parts while
/// another thread was stealing.
pub fn for_each_part<Z: Halves>(zip: Z, threads: usize, f: &(impl Fn(Z) + Sync)) {
    let parts = if threads.is_power_of_two() {
        threads
    } else {
        2 * threads.next_power_of_two()
    };
    halve_into(zip, parts, f);
}

fn halve_into<Z: Halves>(zip: Z, parts: usize, f: &(impl Fn(Z) + Sync)) {
    if parts <= 1 || zip.size() < 2 {
        return f(zip);
    }
    let (a, b) = zip.halves();
    join(
        || halve_into(a, parts / 2, f),
        || halve_into(b, parts / 2, f),
    );
}

/// `rayon::join(a, b)`, telling the cost model how long the caller waited for `b` once `a`
/// was done ([`cost::observe_split`]).
pub(crate) fn join<RA: Send, RB: Send>(
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    let start = Instant::now();
    let ((ra, own_part), rb) = rayon::join(|| (a(), start.elapsed()), b);
    report_wait(start, own_part);
    (ra, rb)
}

/// Tells the cost model how long the caller of a split that began at `start` waited for the
/// other parts after its own, which took `own_part` ([`cost::observe_split`]).
fn report_wait(start: Instant, own_part: Duration) {
    cost::observe_split(start.elapsed().saturating_sub(own_part).as_secs_f64());
}

/// How many of `items` go in each group for one group per thread that pays for `work`, the
/// items' total (at least 1).
pub fn per_thread(items: usize, work: Work) -> usize {
    items.div_ceil(cost::threads_for(work, items)).max(1)
}

/// [`parallel_each`] over three sequences side by side, such as the images of a batch with
/// their rows of two buffers.
pub fn parallel_zip3<P: Send, Q: Send, R: Send>(
    p: impl IntoIterator<Item = P>,
    q: impl IntoIterator<Item = Q>,
    r: impl IntoIterator<Item = R>,
    work: Work,
    f: impl Fn((P, Q, R)) + Sync,
) {
    let jobs = p
        .into_iter()
        .zip(q)
        .zip(r)
        .map(|((p, q), r)| (p, q, r))
        .collect();
    parallel_each(jobs, work, f);
}

/// How many threads [`sum_in_fixed_groups`] shares the groups of `items` items (`per_group`
/// each) among, for terms that cost `work` in all: how many scratch values it takes.
pub fn shares_of_groups(items: usize, per_group: usize, work: Work) -> usize {
    let groups = items.div_ceil(per_group.max(1));
    groups.div_ceil(per_thread(groups, work)).max(1)
}

/// `total ← Σₙ term(itemₙ)` over `items`, summed in a fixed order whatever the thread count:
/// partial sums over fixed groups of `per_group` items (a group on one thread, its items in
/// order), then the groups in order. The groups are shared among as many threads as there
/// are `scratch` values (at most), each thread's terms getting one of them (buffers made
/// once, by the caller, not per item; [`shares_of_groups`] says how many pay).
/// `term(item, scratch, partial, accumulate)` writes its term into `partial`, or adds it when
/// `accumulate`; `work` is what all the terms cost.
///
/// # Panics
/// When `scratch` is empty.
pub fn sum_in_fixed_groups<A: NdFloat, T: Send, S: Send>(
    mut total: ArrayViewMut2<'_, A>,
    items: Vec<T>,
    per_group: usize,
    work: Work,
    scratch: Vec<S>,
    term: impl Fn(T, &mut S, ArrayViewMut2<'_, A>, bool) + Sync,
) {
    assert!(!scratch.is_empty(), "sum_in_fixed_groups: no scratch");
    let mut partials: Vec<Array2<A>> = (0..items.len().div_ceil(per_group))
        .map(|_| Array2::zeros(total.raw_dim()))
        .collect();
    let mut items = items.into_iter();
    let mut groups = partials
        .iter_mut()
        .map(|partial| (items.by_ref().take(per_group).collect::<Vec<T>>(), partial));
    let per_share = groups.len().div_ceil(scratch.len()).max(1);
    let shares = std::iter::from_fn(|| {
        let share: Vec<_> = groups.by_ref().take(per_share).collect();
        (!share.is_empty()).then_some(share)
    });
    let jobs = shares.zip(scratch).collect();
    parallel_each(jobs, work, |(share, mut scratch)| {
        for (items, partial) in share {
            for (i, item) in items.into_iter().enumerate() {
                term(item, &mut scratch, partial.view_mut(), i > 0);
            }
        }
    });
    total.fill(A::zero());
    for partial in &partials {
        total += partial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_worker_gets_its_threads_back() {
        let worker = || WORKER.with(std::cell::Cell::get);
        let caught = std::panic::catch_unwind(|| one_thread_each(|| panic!("a worker failed")));
        assert!(caught.is_err());
        assert!(!worker(), "the thread stayed limited to itself");
        assert!(one_thread_each(worker));
        assert!(!worker());
    }

    #[test]
    fn commands_run_on_a_thread_of_the_pool() {
        assert_eq!(rayon::current_thread_index(), None);
        assert!(on_thread_pool(rayon::current_thread_index).is_some());
    }
}
