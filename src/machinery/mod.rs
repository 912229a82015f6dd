//! How it is fast: the machinery below the layers, which a learner can skip.
//!
//! The layers in [`crate::layers`] say the book's formulas; what makes them fast lives here
//! and is called by name from them, so that a layer file reads like the book.
//!
//! | module | what it does |
//! |---|---|
//! | [`awake`] | the pool's threads kept awake between the splits of a step, instead of each split waking them |
//! | [`cost`] | the cost model that decides whether work is split among threads, measured on the machine at hand |
//! | [`linalg`] | [`linalg::matmul`]: every product (`Y = X·W`, `∂L/∂W = Xᵀ·∂L/∂Y`, …) on faer's GEMM, transposes as strided views |
//! | [`parallel`] | the threads the kernels use, rayon's pool, and work on disjoint parts of arrays split among them |
//! | [`scratch`] | buffers kept from pass to pass, so that a training step allocates nothing after its first |
//! | [`features`] | batch norm's passes with per-feature vectors, in memory order for row- and column-major batches |
//! | [`pool_kernels`] | max pooling's window scans, written with selects and a fast path for the book's 2×2 windows |
//! | [`sigmoid_lanes`] | the sigmoid of a whole `f32` array in SIMD lanes (an `exp` the compiler can vectorise) |
//!
//! ## Products
//!
//! faer's GEMM was the fastest option measured on this project's shapes (63 GFLOP/s
//! single-threaded on 100×784·784×50 against 37 for ndarray's matrixmultiply, on the
//! Skylake-SP machine of BENCHMARKS.md's GEMM ceilings). A product is split among threads
//! when [`cost`]'s model, measured on the machine at hand, says it pays: cut along the longer
//! side of the output into one block per thread, each a single-threaded faer GEMM, joined on
//! rayon's pool, on which the CLI runs its commands ([`parallel::on_thread_pool`]). The cut
//! never splits a sum, so the same seed gives the same bits at any `--threads`. After each
//! product the AVX registers' upper halves are cleared, or every SSE instruction after it
//! would stall (softmax after a product ran up to 25× slower).
//!
//! In inference, where no backward pass reads them, an Affine's outputs with fewer columns
//! than rows are written column-major ([`linalg::product_output`]), so that faer's SIMD lanes
//! run along the batch (784-50-10's evaluation: 1.1 × the images per second); the layers
//! after it take such a batch as it is, ReLU's mask and batch norm's output in its order,
//! batch norm's per-feature passes through memory in order ([`features`]).
//!
//! ## When work is split
//!
//! Every split among threads (a product, the images of a convolution or pooling pass, an
//! element-wise pass such as ReLU or an optimizer's update, evaluation blocks) asks
//! [`cost::threads_for`] with the work's size, in multiply-adds and bytes moved; the model
//! weighs it against one thread's measured rates and what handing a part to another thread
//! has cost lately (measured at start-up, then followed split by split). That cost is small when a split follows another within a millisecond: the helper
//! threads are then kept awake, taking work as soon as it comes, rather than going to sleep
//! after each part and being woken for the next ([`awake`]; 0.8 against 25 µs measured on a
//! 2-core Zen 4 virtual machine). `backprop bench --costs` prints the measurements.

//! ## Buffers
//!
//! From the second training step on, a dense net's step allocates nothing
//! (`tests/allocations.rs`; but for the job that keeps the helpers awake, started by a split
//! that finds them idle): Affine writes `∂L/∂X` over its cached `X` (no longer needed once
//! `∂L/∂W` is known) and takes the buffer of the `∂L/∂Y` it received for its next `Y`; ReLU
//! and Dropout mask the array they are given in place and keep their masks
//! ([`scratch::reuse`], [`scratch::reuse_like`]), Sigmoid its output
//! ([`scratch::keep_copy`]); Softmax-with-Loss writes `∂L/∂x` into the buffer of the `y`
//! before. Buffers are taken again only in the memory order of the array they are for, so
//! that inference's column-major batches do not carry over into training.
//! A net's first layer gets the data as a view ([`crate::layers::Layer::forward_input`]),
//! which Affine copies into the buffer of its last input in training (inference, which keeps
//! no input, reads the data where it is), and is asked for its parameter
//! gradients only ([`crate::layers::Layer::backward_params_only`]): the data needs no
//! `∂L/∂x`, a third of the first layer's backward work saved.
//!
//! ## Images
//!
//! Convolutions run image by image (im2col, product and col2im of one image stay on one core,
//! in its cache) on transposed im2col buffers `colₙᵀ (C·FH·FW, OH·OW)`, one per thread, kept
//! from pass to pass (backward unfolds each image again rather than keeping a batch's rows,
//! which for DeepConvNet at batch 100 were 110 MB), so that all three products take plain row-major operands and the output comes out in
//! the `(N, FN, OH, OW)` layout with no transposed copy. The images of a batch are shared among
//! the cores ([`parallel::parallel_each`]); `∂L/∂W` is summed in fixed groups of 8 images, then
//! the groups in order, so the bits do not depend on the thread count either. Max pooling
//! reads its windows straight from `x` instead of building im2col rows of `PH·PW` values
//! ([`pool_kernels`]).
//!
//! ## Branches
//!
//! ReLU and max pooling are written with selects rather than branches: the sign of a unit is
//! a coin flip the branch predictor cannot learn.
//!
//! ## Data and evaluation
//!
//! Images stay `u8` until a batch is gathered, the next batch's images prefetched while the
//! current one is computed; evaluation runs in blocks of
//! [`Sequential::eval_rows`](crate::net::Sequential::eval_rows) rows shared among the cores
//! (a copy of the net for each thread besides the caller's), so the book's run peaks near
//! 70 MB. `backprop bench` and `BENCHMARKS.md` compare with numpy, PyTorch, burn and candle
//! measured in the same run.

pub mod awake;
pub mod cost;
pub mod features;
pub mod linalg;
pub mod parallel;
pub mod pool_kernels;
pub mod scratch;
pub mod sigmoid_lanes;
