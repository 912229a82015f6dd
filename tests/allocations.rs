//! A training step of a dense net allocates nothing once the first steps have sized every
//! buffer: counted by a global allocator that tallies the allocations of the calling thread
//! and of rayon's pool, where split products and the shards of a batch run (the tests take
//! turns, so that one's pool work is not counted for another). Products, passes and shards
//! that are split among threads are split with `rayon::join`, whose job records live on the
//! stack, so the count holds with them too; the one allocation a split makes when it finds
//! the helpers idle (the job that keeps them awake, `machinery::awake`) is told apart.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use backprop::data::{Dataset, Sampling, load};
use backprop::layers::{Affine, Sigmoid};
use backprop::machinery::awake::keepers_started;
use backprop::machinery::parallel::on_thread_pool;
use backprop::net::{MultiLayerNet, NetSpec, Sequential};
use backprop::optim::{Adam, Optimizer, Sgd};
use backprop::train::{TrainConfig, Trainer};
use rand::SeedableRng;

thread_local! {
    /// Allocations (and reallocations) made by this thread so far, when not one of rayon's.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Allocations made by the threads of rayon's pool so far.
static POOL_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Held by each test while it counts.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The system allocator, counting per thread.
struct Counting;

impl Counting {
    fn count() {
        if rayon::current_thread_index().is_some() {
            POOL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        } else {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
    }
}

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: the caller's guarantees for `layout` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Makes the tests run one at a time (held for the whole test: loading data uses the pool).
fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Allocations made by `f` on this thread and on rayon's pool.
fn allocations_of(f: impl FnOnce()) -> usize {
    let before = (
        ALLOCATIONS.with(Cell::get),
        POOL_ALLOCATIONS.load(Ordering::Relaxed),
    );
    f();
    ALLOCATIONS.with(Cell::get) - before.0 + POOL_ALLOCATIONS.load(Ordering::Relaxed) - before.1
}

/// Runs 3 warm-up steps, then returns the allocations of the next 50.
fn allocations_per_50_steps<O: Optimizer<f32>>(
    net: Sequential<f32>,
    optimizer: O,
    data: &Dataset,
    sampling: Sampling,
    shards: usize,
) -> usize {
    let config = TrainConfig {
        iters: 53,
        batch: 100,
        eval_every: None,
        sampling,
        seed: 1,
        shards,
    };
    let mut trainer = Trainer::new(net, optimizer, data, config).unwrap();
    trainer.run_until(3, |_| {}).unwrap();
    // faer keeps a packing buffer per thread, made by the thread's first product: make sure
    // every thread of the pool has made its own, whichever threads the warm-up steps used.
    rayon::broadcast(|_| {
        let a = ndarray::Array2::<f32>::ones((64, 256));
        let mut c = ndarray::Array2::<f32>::zeros((64, 64));
        backprop::machinery::linalg::matmul(a.view(), a.t(), c.view_mut(), false);
    });
    // On the pool, as the CLI runs its commands: from outside, each parallel product would
    // also queue a job through rayon's injector, which allocates a block every 63 jobs.
    let (allocations, keepers) = on_thread_pool(|| {
        let keepers = keepers_started();
        let allocations = allocations_of(|| trainer.run_until(53, |_| {}).unwrap());
        (allocations, keepers_started() - keepers)
    });
    assert_eq!(trainer.iteration(), 53);
    assert!(trainer.losses()[52] < trainer.losses()[0], "it trained");
    // A split after the helpers were left idle starts a keeper job: one allocation each.
    allocations.saturating_sub(keepers)
}

#[test]
fn the_books_training_step_allocates_nothing() {
    let _turn = turn();
    let data = load(None, None).unwrap().subset(2_000, 10);
    let net = "784-50-10".parse::<NetSpec>().unwrap().build(0.01, 0);
    let n = allocations_per_50_steps(net, Sgd::new(0.1), &data, Sampling::WithReplacement, 1);
    assert_eq!(n, 0, "{n} allocations in 50 steps");
}

#[test]
fn a_step_allocates_nothing_with_batch_norm_dropout_and_weight_decay_in_shards_or_not() {
    let _turn = turn();
    // In 4 shards of 25 on every thread there is, the copies of the net, their partial
    // gradients and the shards' targets are made in the first step and kept.
    let data = load(None, None).unwrap().subset(2_000, 10);
    let mut spec = MultiLayerNet::new("784-60-30-10".parse().unwrap());
    spec.batch_norm = true;
    spec.dropout = Some(0.2);
    spec.weight_decay = 0.01;
    for shards in [1, 4] {
        let adam = Adam::new(0.001, 0.9, 0.999);
        let n = allocations_per_50_steps(
            spec.build(0),
            adam,
            &data,
            Sampling::WithReplacement,
            shards,
        );
        assert_eq!(n, 0, "{n} allocations in 50 steps in {shards} shards");
    }
}

#[test]
fn a_sigmoid_net_with_adam_over_shuffled_epochs_allocates_nothing() {
    let _turn = turn();
    // 300 training images: the permutation is drawn anew every third step.
    let data = load(None, None).unwrap().subset(300, 10);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut net = Sequential::new();
    net.push(Affine::randn(784, 100, 0.1, &mut rng))
        .push(Sigmoid::new())
        .push(Affine::randn(100, 40, 0.1, &mut rng))
        .push(Sigmoid::new())
        .push(Affine::randn(40, 10, 0.1, &mut rng));
    let adam = Adam::new(0.001, 0.9, 0.999);
    let n = allocations_per_50_steps(net, adam, &data, Sampling::ShuffledEpochs, 1);
    assert_eq!(n, 0, "{n} allocations in 50 steps");
}

#[test]
fn the_counter_sees_an_allocation() {
    let _turn = turn();
    // The property above would hold trivially if the counter missed allocations.
    let n = allocations_of(|| drop(std::hint::black_box(vec![0u8; 100])));
    assert_eq!(n, 1);
    let on_the_pool = on_thread_pool(|| {
        allocations_of(|| {
            rayon::join(|| (), || drop(std::hint::black_box(vec![0u8; 100])));
        })
    });
    assert_eq!(on_the_pool, 1);
}
