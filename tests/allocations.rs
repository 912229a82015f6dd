//! A training step of a dense net allocates nothing once the first steps have sized every
//! buffer: counted by a global allocator that tallies the allocations of the calling thread.
//! Products and passes that the cost model splits among threads are split with `rayon::join`,
//! whose job records live on the stack, so the count holds with them too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use backprop::data::{Dataset, Sampling, load};
use backprop::layers::{Affine, Sigmoid};
use backprop::net::{NetSpec, Sequential};
use backprop::optim::{Adam, Optimizer, Sgd};
use backprop::train::{TrainConfig, Trainer};
use rand::SeedableRng;

thread_local! {
    /// Allocations (and reallocations) made by this thread so far.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting per thread.
struct Counting;

impl Counting {
    fn count() {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
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

/// Allocations made by `f` on this thread.
fn allocations_of(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Runs 3 warm-up steps, then returns the allocations of the next 50.
fn allocations_per_50_steps<O: Optimizer<f32>>(
    net: Sequential<f32>,
    optimizer: O,
    data: &Dataset,
    sampling: Sampling,
) -> usize {
    let config = TrainConfig {
        iters: 53,
        batch: 100,
        eval_every: None,
        sampling,
        seed: 1,
    };
    let mut trainer = Trainer::new(net, optimizer, data, config).unwrap();
    trainer.run_until(3, |_| {}).unwrap();
    let allocations = allocations_of(|| trainer.run_until(53, |_| {}).unwrap());
    assert_eq!(trainer.iteration(), 53);
    assert!(trainer.losses()[52] < trainer.losses()[0], "it trained");
    allocations
}

#[test]
fn the_books_training_step_allocates_nothing() {
    let data = load(None, None).unwrap().subset(2_000, 10);
    let net = "784-50-10".parse::<NetSpec>().unwrap().build(0.01, 0);
    let n = allocations_per_50_steps(net, Sgd::new(0.1), &data, Sampling::WithReplacement);
    assert_eq!(n, 0, "{n} allocations in 50 steps");
}

#[test]
fn a_sigmoid_net_with_adam_over_shuffled_epochs_allocates_nothing() {
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
    let n = allocations_per_50_steps(net, adam, &data, Sampling::ShuffledEpochs);
    assert_eq!(n, 0, "{n} allocations in 50 steps");
}

#[test]
fn the_counter_sees_an_allocation() {
    // The property above would hold trivially if the counter missed allocations.
    let n = allocations_of(|| drop(std::hint::black_box(vec![0u8; 100])));
    assert_eq!(n, 1);
}
