//! Data-parallel gradients: a mini-batch cut into `K` shards whose gradients are computed
//! apart, each on a copy of the net (on the threads of this machine), and summed in shard
//! order, so that the bits do not depend on how many threads did the work.
//!
//! ```text
//! batch of B examples → shards S₁ … S_K, contiguous, of B₁ … B_K examples (sizes differ by at
//!                       most one, the larger first)
//! gₖ = ∂Lₖ/∂θ           Lₖ the mean loss of shard k: one forward and backward pass
//! ∂L/∂θ = Σₖ (Bₖ/B)·gₖ  summed for k = 1, 2, …, K in that order (= Σₙ ∂Lₙ/∂θ / B)
//! L     = Σₖ (Bₖ/B)·Lₖ  then weight decay's ½λΣ‖W‖², and its λW added to ∂L/∂W, once
//! ```
//!
//! What a layer computes over the batch, it computes over its shard:
//! - **Batch normalisation** normalises each shard with the shard's own statistics ("ghost
//!   batch norm"): `μₖ = 1/Bₖ Σ_{n∈Sₖ} xₙ`, `σ²ₖ = 1/Bₖ Σ_{n∈Sₖ} (xₙ − μₖ)²`. Every shard
//!   starts from the step's running statistics, and the net keeps their weighted mean,
//!   `running ← Σₖ (Bₖ/B)·(m·running + (1 − m)·μₖ) = m·running + (1 − m)·Σₖ (Bₖ/B)·μₖ`.
//! - **Dropout** keys its masks by (seed, pass, index of the example in the whole batch), so
//!   an example gets its mask wherever its shard ran.
//!
//! With `K = 1` the step is [`Sequential::gradient`] itself, bit for bit.

use std::ops::Range;
use std::sync::Arc;

use bytemuck::Pod;
use ndarray::{ArrayViewD, ArrayViewMutD, Axis, NdFloat, Slice};
use rayon::prelude::*;

use super::ranks::{Exchange, Ranks, StepTimes, part};
use super::{ProductMacs, Sequential};
use crate::error::{Error, Result};
use crate::functions::Targets;
use crate::layers::BatchPosition;
use crate::machinery::cost::{self, Work};
use crate::machinery::parallel::{one_thread_each, threads};

/// The most shards [`Shards::default_count`] cuts a batch into: enough for the cores of
/// most machines, which otherwise also share each shard's products.
pub const MOST_SHARDS: usize = 8;

/// The fewest examples of a shard by default: fewer make row-thin products, slower per
/// multiply-add.
pub const FEWEST_EXAMPLES: usize = 32;

/// The least multiply-adds per weight of a shard by default. A shard costs a few passes over
/// the parameters (its gradient written, then summed; a replica's copy of the weights), and a
/// pass over memory costs about as long as 5 multiply-adds per element at the rates `backprop
/// bench --costs` measures (19 G multiply-adds/s against 4.5 G floats/s): 400 keeps the copies
/// near 5% of the shard's products. DeepConvNet's step uses each weight ~160 times per
/// example, an MLP's about 3.
pub const LEAST_REUSE: f64 = 400.0;

/// The least multiply-adds of a shard by default (about 0.1 ms on one core): well above
/// what handing it to another thread costs (`backprop bench --costs`, tens of µs).
pub const LEAST_WORK: f64 = 2e6;

/// The gradient of a mini-batch computed shard by shard: the copies of the net that compute
/// the shards, and the buffers that carry the partial results, kept from step to step so
/// that a step allocates nothing after the first.
#[derive(Debug, Clone)]
pub struct Shards<A: NdFloat> {
    /// `K`.
    count: usize,
    /// One copy of the net per thread at work, given the net's parameters at each step.
    replicas: Vec<Sequential<A>>,
    /// The net's parameters, then its buffers (running statistics), flat, as the step starts:
    /// what every replica copies.
    start: Vec<A>,
    /// The partial results of this process's shards, `width` = parameters + buffers + 1
    /// elements each: a shard's gradient, its buffers after its pass, its loss. On one
    /// process, those of shards `1 … K−1` (shard 0 leaves its own in the net); on ranks,
    /// those of all this rank's shards.
    partials: Vec<A>,
    /// `wₖ = Bₖ/B`.
    weights: Vec<A>,
    /// Shard `k`'s targets.
    targets: Vec<Targets<A>>,
    /// The processes that share the shards, when there are several ([`Ranks`]).
    ranks: Option<Arc<dyn Ranks>>,
    /// The buffers of the exchange between ranks.
    exchange: Exchange<A>,
    /// What the steps so far cost, from the second: the first also allocates, and on ranks
    /// waits for every rank to start.
    times: StepTimes,
    /// Whether the first step is done.
    warm: bool,
}

impl<A: NdFloat + Pod> Shards<A> {
    /// `count` shards (at least 1).
    pub fn new(count: usize) -> Self {
        Shards {
            count: count.max(1),
            replicas: Vec::new(),
            start: Vec::new(),
            partials: Vec::new(),
            weights: Vec::new(),
            targets: Vec::new(),
            ranks: None,
            exchange: Exchange::default(),
            times: StepTimes::default(),
            warm: false,
        }
    }

    /// The same shards spread over `ranks`: this process computes `K/N` of them, the rank's
    /// own run of consecutive shards, and gets the others' partials from the other ranks.
    /// Every rank must hold the same net and call [`gradient`](Self::gradient) with the same
    /// batch.
    ///
    /// # Errors
    /// When `N` does not divide `K`, naming the rank counts that do.
    pub fn spread_over(&mut self, ranks: Arc<dyn Ranks>) -> Result<()> {
        let (k, n) = (self.count, ranks.count());
        if n == 0 || k % n != 0 {
            let divisors: Vec<String> = (1..=k)
                .filter(|d| k % d == 0)
                .map(|d| d.to_string())
                .collect();
            let plural = |count: usize, what: &str| match count {
                1 => what.to_string(),
                _ => format!("{what}s"),
            };
            return Err(Error::Invalid(format!(
                "{k} {} cannot be spread evenly over {n} ranks: run on {} {}, or give --shards a multiple of {n}",
                plural(k, "shard"),
                divisors.join(", "),
                plural(k, "rank")
            )));
        }
        self.ranks = Some(ranks);
        Ok(())
    }

    /// What the steps so far cost, summed, from the second step on (the first also
    /// allocates, and on ranks waits for every rank to start).
    pub fn times(&self) -> StepTimes {
        self.times
    }

    /// The default `K` for a batch of `batch` examples through `net`, from those two alone
    /// (never from the machine, whose threads or ranks must not change the bits): the most
    /// shards, a power of two up to [`MOST_SHARDS`], of at least [`FEWEST_EXAMPLES`] examples
    /// and [`LEAST_WORK`] multiply-adds each, whose products use each weight at least
    /// [`LEAST_REUSE`] times. 1 when no such cut exists: for the fully connected nets of the
    /// book, whose training step uses each weight about 3 times per example, the copies of the
    /// weights and gradients that a shard costs would outweigh what it saves.
    pub fn default_count(net: &Sequential<A>, batch: usize) -> usize {
        let macs = ProductMacs::of(net);
        let per_example = macs.training_step();
        let pays = |count: usize| {
            let examples = batch / count;
            let work = examples as f64 * per_example;
            count <= MOST_SHARDS
                && examples >= FEWEST_EXAMPLES
                && work >= LEAST_WORK
                && work >= LEAST_REUSE * macs.weights
        };
        let mut count = 1;
        while pays(count * 2) {
            count *= 2;
        }
        count
    }

    /// Backpropagation over the batch `x, t` shard by shard, the shards spread over the ranks
    /// (when [`spread_over`](Self::spread_over) some) and over as many threads as there are
    /// shards and kernel threads: leaves `∂L/∂θ` in `net`'s parameters, moves its running
    /// statistics, counts one training pass, and returns the mean loss `L` (see the module's
    /// formulas).
    ///
    /// # Panics
    /// When the batch has fewer examples than there are shards, or `t` another number.
    #[track_caller]
    pub fn gradient(&mut self, net: &mut Sequential<A>, x: ArrayViewD<'_, A>, t: &Targets<A>) -> A {
        if self.count == 1 && self.ranks.is_none() {
            return net.gradient(x, t);
        }
        let batch = x.shape().first().copied().unwrap_or(0);
        assert!(
            batch >= self.count && t.len() == batch,
            "Shards::gradient: {batch} examples with {} targets cannot be cut into {} shards",
            t.len(),
            self.count
        );
        let started = std::time::Instant::now();
        let params = flat_len(net, Part::Params);
        let width = params + flat_len(net, Part::Buffers) + 1;
        // This process's shards: all, or its rank's run of them.
        let mine = match &self.ranks {
            None => 0..self.count,
            Some(ranks) => {
                let each = self.count / ranks.count();
                ranks.rank() * each..(ranks.rank() + 1) * each
            }
        };
        let workers = threads().min(mine.len());
        self.start.resize(width - 1, A::zero());
        if workers > 1 {
            write_flat(net, Part::Params, &mut self.start[..params]);
        }
        write_flat(net, Part::Buffers, &mut self.start[params..]);
        self.targets
            .resize_with(self.count, || Targets::Indices(Vec::new()));
        for (k, targets) in self.targets.iter_mut().enumerate() {
            t.copy_rows_into(part(self.count, k, batch), targets);
        }
        while self.replicas.len() + 1 < workers {
            self.replicas.push(net.clone());
        }
        // On ranks the net's own shard is sent too: room for it in front.
        let own = usize::from(self.ranks.is_some());
        self.partials
            .resize((mine.len() - 1 + own) * width, A::zero());
        let pass = net.training_passes();
        let job = Job {
            count: self.count,
            first: mine.start,
            x,
            targets: &self.targets,
            start: &self.start,
            pass,
            params,
            width,
            alone: workers == threads(),
        };
        let own_loss = job
            .run(
                Some(&mut *net),
                &mut self.replicas[..workers - 1],
                mine,
                &mut self.partials[own * width..],
            )
            .expect("the net computes its own shard");
        self.weights.clear();
        self.weights.extend((0..self.count).map(|k| {
            let rows = part(self.count, k, batch).len();
            A::from(rows).expect("a count fits") / A::from(batch).expect("a count fits")
        }));
        self.times.steps += 1;
        self.times.compute_s += started.elapsed().as_secs_f64();
        let loss = match &self.ranks {
            None => {
                let started = std::time::Instant::now();
                let loss = add_partials(net, own_loss, &self.partials, &self.weights);
                self.times.sum_s += started.elapsed().as_secs_f64();
                loss
            }
            Some(ranks) => {
                let (gradient, rest) = self.partials[..width].split_at_mut(params);
                write_flat(net, Part::Grads, gradient);
                write_flat(net, Part::Buffers, &mut rest[..width - params - 1]);
                rest[width - params - 1] = own_loss;
                let weights = &self.weights;
                self.exchange.sum(
                    ranks.as_ref(),
                    &self.partials,
                    width,
                    &mut self.times,
                    |values, terms, len| add_weighted(values, 0, terms, len, weights),
                );
                let sum = &self.exchange.sum;
                read_flat(net, Part::Grads, &sum[..params]);
                read_flat(net, Part::Buffers, &sum[params..width - 1]);
                sum[width - 1]
            }
        };
        if !std::mem::replace(&mut self.warm, true) {
            self.times = StepTimes::default();
        }
        net.set_training_passes(pass + 1);
        net.add_decay_gradient();
        loss + net.decay_loss()
    }
}

/// One step's shards, as the threads that compute them see it.
struct Job<'a, A: NdFloat> {
    count: usize,
    /// The shard the net itself computes (0 on one process, a rank's first on ranks).
    first: usize,
    x: ArrayViewD<'a, A>,
    targets: &'a [Targets<A>],
    start: &'a [A],
    /// The training pass of the step.
    pass: u64,
    /// The parameters' and a partial's lengths.
    params: usize,
    width: usize,
    /// Whether the shards keep every kernel thread busy, so that each runs its kernels on
    /// its own thread.
    alone: bool,
}

impl<A: NdFloat> Job<'_, A> {
    /// Computes `shards` on the nets at hand, the net itself (`net`, when given, with shard
    /// `first`) and `replicas`, no more of them than shards: a contiguous run of the shards
    /// per net, the nets side by side. Shard `k > first` leaves its partial in `partials`
    /// (their slice, from the run's first shard above `first`); shard `first` leaves its
    /// gradient and buffers in `net` and returns its loss.
    fn run(
        &self,
        net: Option<&mut Sequential<A>>,
        replicas: &mut [Sequential<A>],
        shards: Range<usize>,
        partials: &mut [A],
    ) -> Option<A> {
        let first = self.first;
        let nets = replicas.len() + usize::from(net.is_some());
        if nets == 1 {
            let compute = || match net {
                // Shard `first` last, so that its results stay in the net.
                Some(net) => {
                    let others = first + 1..shards.end;
                    for (k, partial) in others.zip(partials.chunks_exact_mut(self.width)) {
                        self.shard(net, k, Some(partial));
                    }
                    Some(self.shard(net, first, None))
                }
                None => {
                    let replica = &mut replicas[0];
                    read_flat(replica, Part::Params, &self.start[..self.params]);
                    for (k, partial) in shards.zip(partials.chunks_exact_mut(self.width)) {
                        self.shard(replica, k, Some(partial));
                    }
                    None
                }
            };
            return if self.alone {
                one_thread_each(compute)
            } else {
                compute()
            };
        }
        let left = nets / 2;
        let middle = shards.start + shards.len() * left / nets;
        let (left_replicas, right_replicas) =
            replicas.split_at_mut(left - usize::from(net.is_some()));
        // Shard `first` has no partial: a run's partials start at its first shard above it.
        let above_first = |shard: usize| shard.saturating_sub(first + 1);
        let (left_partials, right_partials) =
            partials.split_at_mut((above_first(middle) - above_first(shards.start)) * self.width);
        let (own_loss, _) = rayon::join(
            || self.run(net, left_replicas, shards.start..middle, left_partials),
            || self.run(None, right_replicas, middle..shards.end, right_partials),
        );
        own_loss
    }

    /// Shard `k`'s forward and backward pass on `net`, from the step's running statistics:
    /// its gradient and buffers left in `net`, or copied into `partial` with its loss after
    /// them. Returns the loss.
    fn shard(&self, net: &mut Sequential<A>, k: usize, partial: Option<&mut [A]>) -> A {
        let rows = part(self.count, k, self.x.shape()[0]);
        read_flat(net, Part::Buffers, &self.start[self.params..]);
        net.set_position(BatchPosition {
            pass: self.pass,
            first_example: rows.start,
        });
        let x = self.x.slice_axis(Axis(0), Slice::from(rows));
        let loss = net.data_gradient(x, &self.targets[k]);
        if let Some(partial) = partial {
            let (gradient, rest) = partial.split_at_mut(self.params);
            let (buffers, last) = rest.split_at_mut(rest.len() - 1);
            write_flat(net, Part::Grads, gradient);
            write_flat(net, Part::Buffers, buffers);
            last[0] = loss;
        }
        loss
    }
}

/// `θ ← w₀·θ + Σₖ wₖ·partialₖ` for the gradient and the buffers of `net`, which hold shard
/// 0's, with the partials of shards `k = 1, 2, …` side by side in `partials`, added in that
/// order, each element on its own (so the same bits on any thread); returns the loss the same
/// way from shard 0's `first_loss` and the partials' last elements.
fn add_partials<A: NdFloat>(
    net: &mut Sequential<A>,
    first_loss: A,
    partials: &[A],
    weights: &[A],
) -> A {
    let width = partials.len() / (weights.len() - 1);
    let mut offset = 0;
    for part in [Part::Grads, Part::Buffers] {
        visit(net, part, &mut |mut tensor| {
            let start = offset;
            offset += tensor.len();
            match tensor.as_slice_mut() {
                Some(values) => add_weighted(values, start, partials, width, weights),
                // A layer's own arrays are contiguous; a view that is not, element by element.
                None => {
                    for (i, value) in tensor.iter_mut().enumerate() {
                        add_weighted(
                            std::slice::from_mut(value),
                            start + i,
                            partials,
                            width,
                            weights,
                        );
                    }
                }
            }
        });
    }
    let mut loss = first_loss;
    add_weighted(
        std::slice::from_mut(&mut loss),
        width - 1,
        partials,
        width,
        weights,
    );
    loss
}

/// `values ← w₀·values + Σₖ wₖ·partialₖ[start..]`, `k = 1, 2, …` in order, on the threads
/// the cost model pays for: each element on its own, the same bits whatever the split.
fn add_weighted<A: NdFloat>(
    values: &mut [A],
    start: usize,
    partials: &[A],
    width: usize,
    weights: &[A],
) {
    let serial = |values: &mut [A], start: usize| {
        values.iter_mut().for_each(|v| *v = weights[0] * *v);
        for (partial, &w) in partials.chunks_exact(width).zip(&weights[1..]) {
            let terms = &partial[start..start + values.len()];
            values.iter_mut().zip(terms).for_each(|(v, &p)| *v += w * p);
        }
    };
    let work = Work::bytes(values.len() * (weights.len() + 1) * size_of::<A>());
    let threads = cost::threads_for(work, values.len());
    if threads <= 1 {
        return serial(values, start);
    }
    let chunk = values.len().div_ceil(threads);
    values
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, values)| serial(values, start + c * chunk));
}

/// Which of a net's tensors a flat buffer holds, each tensor's elements in order, the
/// tensors in the net's order.
#[derive(Debug, Clone, Copy)]
enum Part {
    Params,
    Grads,
    Buffers,
}

/// Hands each tensor of `part` of `net` to `f`.
fn visit<'a, A: NdFloat>(
    net: &'a mut Sequential<A>,
    part: Part,
    f: &mut dyn FnMut(ArrayViewMutD<'a, A>),
) {
    match part {
        Part::Params => net.visit_params(&mut |p| f(p.param.value)),
        Part::Grads => net.visit_params(&mut |p| f(p.param.grad)),
        Part::Buffers => net.visit_buffers(f),
    }
}

/// The elements of `part` of `net`.
fn flat_len<A: NdFloat>(net: &mut Sequential<A>, part: Part) -> usize {
    let mut len = 0;
    visit(net, part, &mut |tensor| len += tensor.len());
    len
}

/// Copies `part` of `net` into `out`.
fn write_flat<A: NdFloat>(net: &mut Sequential<A>, part: Part, out: &mut [A]) {
    let mut rest = out;
    visit(net, part, &mut |tensor| {
        let (here, after) = std::mem::take(&mut rest).split_at_mut(tensor.len());
        match tensor.as_slice() {
            Some(slice) => here.copy_from_slice(slice),
            None => here.iter_mut().zip(&tensor).for_each(|(o, &v)| *o = v),
        }
        rest = after;
    });
}

/// Copies `from` into `part` of `net`.
fn read_flat<A: NdFloat>(net: &mut Sequential<A>, part: Part, from: &[A]) {
    let mut rest = from;
    visit(net, part, &mut |mut tensor| {
        let (here, after) = rest.split_at(tensor.len());
        match tensor.as_slice_mut() {
            Some(slice) => slice.copy_from_slice(here),
            None => tensor.iter_mut().zip(here).for_each(|(v, &h)| *v = h),
        }
        rest = after;
    });
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, Axis};

    use super::*;
    use crate::gradient::standard_normal;
    use crate::machinery::parallel::set_threads;
    use crate::net::{MultiLayerNet, NetSpec};

    /// A net with every layer that depends on its batch: batch norm, dropout, weight decay.
    fn net(batch_norm: bool, dropout: Option<f64>) -> Sequential<f64> {
        let mut spec = MultiLayerNet::new("12-9-7-4".parse::<NetSpec>().unwrap());
        spec.batch_norm = batch_norm;
        spec.dropout = dropout;
        spec.weight_decay = 0.01;
        spec.build(5)
    }

    fn batch(n: usize) -> (ArrayD<f64>, Targets<f64>) {
        let x = standard_normal(&[n, 12], 3);
        (x, Targets::Indices((0..n).map(|i| (i * 7) % 4).collect()))
    }

    /// Loss, gradients and buffers, in order.
    fn results(net: &mut Sequential<f64>, loss: f64) -> Vec<f64> {
        let mut all = vec![loss];
        for part in [Part::Grads, Part::Buffers] {
            let mut flat = vec![0.0; flat_len(net, part)];
            write_flat(net, part, &mut flat);
            all.extend(flat);
        }
        all
    }

    fn sharded(count: usize, mut net: Sequential<f64>, n: usize) -> Vec<f64> {
        let (x, t) = batch(n);
        let loss = Shards::new(count).gradient(&mut net, x.view(), &t);
        results(&mut net, loss)
    }

    #[test]
    fn by_default_only_nets_that_reuse_their_weights_are_cut() {
        use crate::net::{DeepConvNet, SimpleConvNet};
        let mlp = |spec: &str| NetSpec::build::<f32>(&spec.parse().unwrap(), 0.01, 0);
        // An MLP's step uses each weight ~3 times per example: 400 uses need 133 examples.
        assert_eq!(Shards::default_count(&mlp("784-50-10"), 100), 1);
        assert_eq!(Shards::default_count(&mlp("784-1000-1000-10"), 256), 1);
        assert_eq!(Shards::default_count(&mlp("784-50-10"), 4096), 8);
        let deep = DeepConvNet::new((1, 28, 28), 10).build::<f32>(0).unwrap();
        let counts: Vec<usize> = [16, 32, 64, 100, 256, 1000]
            .into_iter()
            .map(|batch| Shards::default_count(&deep, batch))
            .collect();
        assert_eq!(counts, [1, 1, 2, 2, 8, 8]);
        let simple = SimpleConvNet::new((1, 28, 28), 10).build::<f32>(0).unwrap();
        assert_eq!(Shards::default_count(&simple, 100), 1);
    }

    #[test]
    fn shards_cover_the_batch_in_order_the_longer_first() {
        let rows: Vec<_> = (0..3).map(|k| part(3, k, 7)).collect();
        assert_eq!(rows, [0..3, 3..5, 5..7]);
        assert_eq!(part(1, 0, 5), 0..5);
    }

    #[test]
    fn the_bits_do_not_depend_on_the_threads() {
        for count in [2, 3, 5] {
            let runs: Vec<Vec<u64>> = [1, 2, 3]
                .into_iter()
                .map(|threads| {
                    set_threads(threads);
                    let all = sharded(count, net(true, Some(0.3)), 11);
                    all.iter().map(|v| v.to_bits()).collect()
                })
                .collect();
            set_threads(0);
            assert_eq!(runs[0], runs[1], "{count} shards, 1 and 2 threads");
            assert_eq!(runs[0], runs[2], "{count} shards, 1 and 3 threads");
        }
    }

    /// `N` ranks in threads of this process: what MPI does between processes, through
    /// shared memory.
    #[derive(Debug)]
    struct ThreadRanks {
        rank: usize,
        shared: Arc<Mailbox>,
    }

    /// What each rank posted, with the counts of its blocks, for the others to read.
    #[derive(Debug)]
    struct Mailbox {
        count: usize,
        barrier: std::sync::Barrier,
        posted: std::sync::Mutex<Vec<(Vec<u8>, Vec<usize>)>>,
    }

    impl ThreadRanks {
        /// Posts `bytes`, then hands every rank's posts to `read` once all have posted. A
        /// failure in `read` is raised after the other ranks are let go, not in their way.
        fn post(
            &self,
            bytes: &[u8],
            counts: &[usize],
            read: impl FnOnce(&[(Vec<u8>, Vec<usize>)]),
        ) {
            let lock = || self.shared.posted.lock().unwrap_or_else(|e| e.into_inner());
            lock()[self.rank] = (bytes.to_vec(), counts.to_vec());
            self.shared.barrier.wait();
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&lock())));
            self.shared.barrier.wait();
            if let Err(failure) = read {
                std::panic::resume_unwind(failure);
            }
        }
    }

    impl Ranks for ThreadRanks {
        fn rank(&self) -> usize {
            self.rank
        }

        fn count(&self) -> usize {
            self.shared.count
        }

        fn all_to_all(
            &self,
            send: &[u8],
            send_counts: &[usize],
            recv: &mut [u8],
            recv_counts: &[usize],
        ) {
            self.post(send, send_counts, |posted| {
                let mut at = 0;
                for ((bytes, counts), &count) in posted.iter().zip(recv_counts) {
                    assert_eq!(counts[self.rank], count, "what is sent is what is expected");
                    let from: usize = counts[..self.rank].iter().sum();
                    recv[at..at + count].copy_from_slice(&bytes[from..from + count]);
                    at += count;
                }
            });
        }

        fn all_gather(&self, mine: &[u8], all: &mut [u8], counts: &[usize]) {
            self.post(mine, &[], |posted| {
                let mut at = 0;
                for ((bytes, _), &count) in posted.iter().zip(counts) {
                    all[at..at + count].copy_from_slice(bytes);
                    at += count;
                }
            });
        }
    }

    #[test]
    fn the_bits_do_not_depend_on_the_ranks() {
        let (x, t) = batch(13);
        for (shard_count, count) in [(1, 1), (6, 1), (6, 2), (6, 3), (6, 6), (8, 4)] {
            let alone = sharded(shard_count, net(true, Some(0.3)), 13);
            let shared = Arc::new(Mailbox {
                count,
                barrier: std::sync::Barrier::new(count),
                posted: std::sync::Mutex::new(vec![(Vec::new(), Vec::new()); count]),
            });
            let results: Vec<Vec<f64>> = std::thread::scope(|scope| {
                let ranks: Vec<_> = (0..count)
                    .map(|rank| {
                        let ranks = Arc::new(ThreadRanks {
                            rank,
                            shared: shared.clone(),
                        });
                        let (x, t) = (&x, &t);
                        scope.spawn(move || {
                            let mut net = net(true, Some(0.3));
                            let mut shards = Shards::new(shard_count);
                            shards.spread_over(ranks).unwrap();
                            shards.gradient(&mut net.clone(), x.view(), t);
                            let loss = shards.gradient(&mut net, x.view(), t);
                            let times = shards.times();
                            assert_eq!(times.steps, 1, "the first step is not counted");
                            assert_eq!(times.sent > 0, count > 1, "rank {rank} of {count}");
                            results(&mut net, loss)
                        })
                    })
                    .collect();
                ranks.into_iter().map(|r| r.join().unwrap()).collect()
            });
            for (rank, got) in results.iter().enumerate() {
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(got),
                    bits(&alone),
                    "{shard_count} shards, rank {rank} of {count}"
                );
            }
        }
    }

    #[test]
    fn ranks_must_divide_the_shards() {
        let shared = Arc::new(Mailbox {
            count: 4,
            barrier: std::sync::Barrier::new(4),
            posted: std::sync::Mutex::new(Vec::new()),
        });
        let ranks = Arc::new(ThreadRanks { rank: 0, shared });
        let error = Shards::<f32>::new(6).spread_over(ranks).unwrap_err();
        assert_eq!(
            error.to_string(),
            "6 shards cannot be spread evenly over 4 ranks: run on 1, 2, 3, 6 ranks, or give --shards a multiple of 4"
        );
    }

    #[test]
    fn one_shard_is_the_whole_batch_and_more_give_its_gradient_without_batch_norm() {
        let (x, t) = batch(12);
        let mut whole = net(false, Some(0.3));
        let loss = whole.gradient(x.view(), &t);
        let expected = results(&mut whole, loss);
        assert_eq!(sharded(1, net(false, Some(0.3)), 12), expected);
        // Dropout keyed by example: the same masks, so the same gradient up to rounding.
        for count in [2, 3, 4] {
            let got = sharded(count, net(false, Some(0.3)), 12);
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g - e).abs() <= 1e-12 * (1.0 + e.abs()),
                    "{count} shards: {g} ≠ {e}"
                );
            }
        }
    }

    #[test]
    fn batch_norm_normalises_each_shard_by_itself() {
        // Two shards of 4 and 3 examples, each computed alone from the same start: the
        // sharded step is their weighted sum (ghost batch norm).
        let (x, t) = batch(7);
        let mut expected = vec![0.0; results(&mut net(true, None), 0.0).len()];
        for (k, weight) in [(0, 4.0 / 7.0), (1, 3.0 / 7.0)] {
            let rows = part(2, k, 7);
            let mut alone = net(true, None);
            alone.set_weight_decay(0.0);
            let mut targets = Targets::Indices(Vec::new());
            t.copy_rows_into(rows.clone(), &mut targets);
            let loss = alone.gradient(x.slice_axis(Axis(0), Slice::from(rows)), &targets);
            for (e, v) in expected.iter_mut().zip(results(&mut alone, loss)) {
                *e += weight * v;
            }
        }
        let mut decayed = net(true, None);
        let mut got = sharded(2, decayed.clone(), 7);
        // Take weight decay's terms out again: they are added once, to the sum.
        got[0] -= decayed.decay_loss();
        let mut offset = 1;
        decayed.visit_params(&mut |p| {
            if p.param.name == "W" {
                for (g, &w) in got[offset..].iter_mut().zip(p.param.value.iter()) {
                    *g -= 0.01 * w;
                }
            }
            offset += p.param.value.len();
        });
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-12 * (1.0 + e.abs()), "{g} ≠ {e}");
        }
    }
}
