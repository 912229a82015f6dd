//! The shards of a batch spread over processes (MPI ranks, or any other transport): each of
//! the `N` ranks computes `K/N` shards, and the partials are summed in shard order on every
//! rank, so that the bits depend on `K` alone, never on `N`.
//!
//! ```text
//! rank r computes shards r·K/N … (r+1)·K/N − 1: partials p_k = [∂L_k/∂θ | buffers | L_k]
//! width W = parameters + buffers + 1, cut into N slices of elements, s_0 … s_{N−1}
//! all-to-all:  rank r receives slice s_r of every partial, p_0[s_r] … p_{K−1}[s_r]
//! sum:         Σ_r[s_r] = Σ_k (B_k/B)·p_k[s_r], k = 0, 1, …, K−1 in that order (as on one rank)
//! all-gather:  every rank receives every Σ[s_q]: the whole sum, W elements
//! ```
//!
//! This is a reduce-scatter followed by an all-gather, written out so that the sum keeps shard
//! order (MPI's own reductions may add in any order). Each rank sends and receives
//! `(K/N + 1)·(N−1)/N·W` elements a step and adds `K·W/N`, where gathering every partial on
//! every rank would move `(K − K/N)·W` and add `K·W`: at `K = N`, `N/2` times the bytes and
//! `N` times the additions (BENCHMARKS.md, "Shards over MPI ranks").

use std::fmt::Debug;
use std::ops::Range;

use bytemuck::Pod;

/// The processes that share a run's shards, as [`Shards`](super::Shards) uses them: two
/// collective operations on bytes, each called by every rank in the same order.
pub trait Ranks: Debug + Send + Sync {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;

    /// The number of ranks `N`.
    fn count(&self) -> usize;

    /// Every rank sends `send`, rank `q`'s bytes at block `q` (`send_counts[q]` bytes, the
    /// blocks back to back in rank order), and receives into `recv` the block that each rank
    /// `q` sent it (`recv_counts[q]` bytes, back to back in rank order): MPI's `Alltoallv`.
    fn all_to_all(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    );

    /// Every rank sends `mine` and receives into `all` every rank's, back to back in rank
    /// order (rank `q`'s `counts[q]` bytes): MPI's `Allgatherv`.
    fn all_gather(&self, mine: &[u8], all: &mut [u8], counts: &[usize]);
}

/// The elements of part `q` of `n` parts of `len`: contiguous, the first `len mod n` parts
/// one longer (shards of a batch, slices of a partial).
pub(super) fn part(n: usize, q: usize, len: usize) -> Range<usize> {
    let (size, longer) = (len / n, len % n);
    let start = q * size + q.min(longer);
    start..start + size + usize::from(q < longer)
}

/// Per step, what the shards cost: summed over the steps so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    /// Steps counted.
    pub steps: u64,
    /// Seconds in the forward and backward passes of this rank's shards.
    pub compute_s: f64,
    /// Seconds exchanging partials with the other ranks (waiting for them included).
    pub exchange_s: f64,
    /// Seconds adding the partials in shard order.
    pub sum_s: f64,
    /// Bytes sent to the other ranks.
    pub sent: u64,
    /// Bytes received from them.
    pub received: u64,
}

/// The buffers of the exchange, kept from step to step so that a step allocates nothing
/// after the first.
#[derive(Debug, Clone)]
pub(super) struct Exchange<A> {
    /// This rank's partials, slice by slice, for rank 0, 1, ….
    send: Vec<A>,
    /// Slice `s_r` of every partial, in shard order.
    recv: Vec<A>,
    /// The whole sum, `W` elements.
    pub(super) sum: Vec<A>,
    send_counts: Vec<usize>,
    recv_counts: Vec<usize>,
    sum_counts: Vec<usize>,
}

impl<A> Default for Exchange<A> {
    fn default() -> Self {
        Exchange {
            send: Vec::new(),
            recv: Vec::new(),
            sum: Vec::new(),
            send_counts: Vec::new(),
            recv_counts: Vec::new(),
            sum_counts: Vec::new(),
        }
    }
}

impl<A: Pod> Exchange<A> {
    /// Sends this rank's `local` partials (`width` elements each, of shards in order from
    /// this rank's first) and leaves in `self.sum` the sum over all shards that
    /// `add_in_order(values, terms, width)` makes of slice values (shard 0's, to be
    /// replaced by the sum) and terms (shards 1 … K−1, back to back). Adds to `times`.
    pub(super) fn sum(
        &mut self,
        ranks: &dyn Ranks,
        local: &[A],
        width: usize,
        times: &mut StepTimes,
        add_in_order: impl FnOnce(&mut [A], &[A], usize),
    ) {
        let (n, r) = (ranks.count(), ranks.rank());
        let per_rank = local.len() / width;
        let bytes = size_of::<A>();
        let started = std::time::Instant::now();
        self.send.clear();
        self.send_counts.clear();
        for q in 0..n {
            let slice = part(n, q, width);
            for partial in local.chunks_exact(width) {
                self.send.extend_from_slice(&partial[slice.clone()]);
            }
            self.send_counts.push(per_rank * slice.len() * bytes);
        }
        let mine = part(n, r, width).len();
        self.recv.resize(n * per_rank * mine, A::zeroed());
        self.recv_counts.clear();
        self.recv_counts.resize(n, per_rank * mine * bytes);
        ranks.all_to_all(
            bytemuck::cast_slice(&self.send),
            &self.send_counts,
            bytemuck::cast_slice_mut(&mut self.recv),
            &self.recv_counts,
        );
        let exchanged = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        if mine > 0 {
            let (first, rest) = self.recv.split_at_mut(mine);
            add_in_order(first, rest, mine);
        }
        times.sum_s += started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        self.sum.resize(width, A::zeroed());
        self.sum_counts.clear();
        self.sum_counts
            .extend((0..n).map(|q| part(n, q, width).len() * bytes));
        ranks.all_gather(
            bytemuck::cast_slice(&self.recv[..mine]),
            bytemuck::cast_slice_mut(&mut self.sum),
            &self.sum_counts,
        );
        times.exchange_s += exchanged + started.elapsed().as_secs_f64();
        let others = |counts: &[usize]| {
            let all: usize = counts.iter().sum();
            (all - counts[r]) as u64
        };
        times.sent += others(&self.send_counts) + (n as u64 - 1) * (mine * bytes) as u64;
        times.received += others(&self.recv_counts) + others(&self.sum_counts);
    }
}
