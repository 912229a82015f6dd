//! `mpirun -np N backprop train …` (cargo feature `mpi`): the processes of a data-parallel
//! run, one per MPI rank.
//!
//! Rank 0 reads the flags (or the checkpoint of `--resume`), builds the trainer, and
//! broadcasts it to the other ranks as a checkpoint: the net's weights, the optimizer's state,
//! the sampler, the settings. Every rank then runs the same iterations, computing its `K/N`
//! shards of each batch and exchanging partials with the others ([`Ranks`]), so every rank
//! holds the same bits at every step. Rank 0 alone prints, evaluates and writes files; the
//! other ranks' output goes to `/dev/null` unless `--log-all-ranks`.
//!
//! Faults never leave a job hanging: a panic on any rank aborts the whole job (`MPI_Abort`),
//! an error of one rank alone (a file rank 0 cannot write, data another rank cannot read)
//! too, with a line naming the rank; Open MPI's `mpirun` ends the job when a rank is killed.

use std::os::fd::{AsFd, FromRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use std::hash::Hasher;

use backprop::Error;
use backprop::data::Dataset;
use backprop::net::{Ranks, StepTimes};
use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use mpi::{Count, Threading};

/// The variables by which launchers tell each process they start how many they started and
/// which one it is: Open MPI's `mpirun`, PMI (MPICH's `mpiexec`, Intel MPI, Slurm's PMI2),
/// Slurm's `srun`.
const LAUNCHERS: [(&str, &str); 3] = [
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
    ("PMI_SIZE", "PMI_RANK"),
    ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID"),
];

/// What a launcher told this process: the processes it started, this one's rank, and the
/// variable that said so. `None` when no launcher started it, or another launcher than Open
/// MPI's only one process (as `srun` does for jobs that are not MPI's).
fn launched() -> Option<(usize, usize, &'static str)> {
    LAUNCHERS.iter().find_map(|&(size, rank)| {
        let read = |name| std::env::var(name).ok()?.trim().parse::<usize>().ok();
        let processes = read(size)?;
        let mpirun = size == LAUNCHERS[0].0;
        (processes > 1 || mpirun).then(|| (processes, read(rank).unwrap_or(0), size))
    })
}

/// Whether this process is one of several a launcher started but not the first: the one
/// whose messages the others' would repeat.
pub fn quiet_rank() -> bool {
    launched().is_some_and(|(_, rank, _)| rank > 0)
}

/// This process's place in the job.
#[derive(Debug)]
pub struct Member {
    /// Its rank, from 0.
    pub rank: usize,
    /// The number of ranks.
    pub size: usize,
    /// The standard error this process started with, for the lines that must be seen even
    /// when its output is silenced.
    stderr: std::fs::File,
    /// Whether rank 0 has broadcast the trainer (or told the others to stop).
    started: AtomicBool,
}

static MEMBER: OnceLock<Member> = OnceLock::new();

/// This process's place in the job, when it is one of several ranks.
pub fn member() -> Option<&'static Member> {
    MEMBER.get()
}

/// Joins the job's ranks when a launcher started several processes: initialises MPI, checks
/// that it sees as many ranks as the launcher started (a launcher of another MPI starts each
/// process alone, and they would each train the whole run), silences every rank but 0 unless
/// `log_all_ranks`, and makes a panic abort the job. `Ok(None)` when this process runs alone.
///
/// # Errors
/// When MPI cannot be initialised or sees another number of ranks.
pub fn join(log_all_ranks: bool) -> Result<Option<Universe>, Error> {
    let Some((processes, launcher_rank, variable)) = launched() else {
        return Ok(None);
    };
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| Error::Invalid(format!("cannot keep standard error: {e}")))?;
    if launcher_rank > 0 && !log_all_ranks {
        silence();
    }
    let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
        .ok_or_else(|| Error::Invalid("MPI was initialised twice".into()))?;
    if threading < Threading::Serialized {
        return Err(Error::Invalid(format!(
            "this MPI library offers threads {threading:?}, backprop needs Serialized (calls from one thread at a time)"
        )));
    }
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    if size != processes {
        return Err(Error::Invalid(format!(
            "the launcher started {processes} processes ({variable}={processes}) but MPI sees {size} rank{}: each would train alone; launch with the mpirun of the Open MPI backprop was built with, or srun --mpi=pmix",
            if size == 1 { "" } else { "s" }
        )));
    }
    let member = Member {
        rank,
        size,
        stderr,
        started: AtomicBool::new(false),
    };
    let _ = MEMBER.set(member);
    std::panic::set_hook(Box::new(move |info| {
        fatal(&format!("rank {rank} panicked: {info}"));
        SimpleCommunicator::world().abort(101);
    }));
    Ok(Some(universe))
}

/// Sends standard output and error to `/dev/null`.
fn silence() {
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return;
    };
    let null = null.into_raw_fd();
    // SAFETY: `dup2` on descriptors this process owns: `null`, just opened, onto 1 and 2.
    unsafe {
        libc::dup2(null, 1);
        libc::dup2(null, 2);
        drop(std::fs::File::from_raw_fd(null));
    }
}

/// Writes `line` where it is seen, silenced or not.
fn fatal(line: &str) {
    match member() {
        Some(member) => crate::write_line(&member.stderr, &format!("error: {line}")),
        None => crate::say_line(&format!("error: {line}")),
    }
}

/// Ends the whole job with `line`, naming the rank: for an error of this rank alone, which
/// would leave the others waiting for it.
pub fn abort(member: &Member, line: &str) -> ! {
    fatal(&format!("rank {}: {line}", member.rank));
    SimpleCommunicator::world().abort(1)
}

/// The ranks as [`Shards`](backprop::net::Shards) exchanges partials over them.
#[derive(Debug)]
struct MpiRanks {
    rank: usize,
    count: usize,
    /// MPI's counts and displacements of the blocks sent and received, kept from step to
    /// step (a step allocates nothing for them after the first).
    blocks: Mutex<[Vec<Count>; 4]>,
}

/// Fills `counts` and `displs` with MPI's counts and displacements of blocks of `bytes`
/// bytes back to back.
fn partition(bytes: &[usize], counts: &mut Vec<Count>, displs: &mut Vec<Count>) {
    let fit = |n: usize| {
        Count::try_from(n).unwrap_or_else(|_| {
            panic!("{n} bytes in one MPI message: more than MPI's 2 GiB; use more ranks")
        })
    };
    counts.clear();
    displs.clear();
    let mut at = 0;
    for &b in bytes {
        counts.push(fit(b));
        displs.push(fit(at));
        at += b;
    }
}

impl Ranks for MpiRanks {
    fn rank(&self) -> usize {
        self.rank
    }

    fn count(&self) -> usize {
        self.count
    }

    fn all_to_all(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        let [sc, sd, rc, rd] = &mut *blocks;
        partition(send_counts, sc, sd);
        partition(recv_counts, rc, rd);
        SimpleCommunicator::world().all_to_all_varcount_into(
            &Partition::new(send, &sc[..], &sd[..]),
            &mut PartitionMut::new(recv, &rc[..], &rd[..]),
        );
    }

    fn all_gather(&self, mine: &[u8], all: &mut [u8], counts: &[usize]) {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        let [c, d, _, _] = &mut *blocks;
        partition(counts, c, d);
        SimpleCommunicator::world()
            .all_gather_varcount_into(mine, &mut PartitionMut::new(all, &c[..], &d[..]));
    }
}

/// The ranks of this job, for [`Trainer::spread_over`](backprop::train::Trainer::spread_over).
pub fn ranks(member: &Member) -> Arc<dyn Ranks> {
    Arc::new(MpiRanks {
        rank: member.rank,
        count: member.size,
        blocks: Mutex::default(),
    })
}

/// The largest piece of a broadcast: MPI counts in `int`.
const PIECE: usize = 1 << 30;

/// Rank 0 sends the trainer as checkpoint bytes (`None`: stop, it has said why) to every
/// rank; every other rank receives them. Once per job.
pub fn broadcast(member: &Member, bytes: Option<Vec<u8>>) -> Option<Vec<u8>> {
    if member.started.swap(true, Ordering::SeqCst) {
        return None;
    }
    let world = SimpleCommunicator::world();
    let root = world.process_at_rank(0);
    let mut len = bytes.as_ref().map_or(0, Vec::len) as u64;
    root.broadcast_into(&mut len);
    if len == 0 {
        return None;
    }
    let mut bytes = bytes.unwrap_or_else(|| vec![0; len as usize]);
    for piece in bytes.chunks_mut(PIECE) {
        root.broadcast_into(piece);
    }
    Some(bytes)
}

/// On rank 0, before the run starts: tells the other ranks to stop (this one failed).
pub fn stop_others() {
    if let Some(member) = member().filter(|m| m.rank == 0) {
        broadcast(member, None);
    }
}

/// Whether every rank loaded the training split rank 0 did: a digest of its images and labels
/// from each rank, gathered on all (a node with other files would train on other examples
/// and say nothing).
///
/// # Errors
/// The same on every rank, naming the ranks whose data differ.
pub fn check_same_data(member: &Member, data: &Dataset) -> Result<(), Error> {
    // SipHash with fixed keys: the same digest on every node, for one build of the binary.
    let mut hasher = std::hash::DefaultHasher::new();
    match data.train.images.as_slice() {
        Some(pixels) => hasher.write(pixels),
        None => data.train.images.iter().for_each(|&p| hasher.write_u8(p)),
    }
    hasher.write(&data.train.labels);
    let digest = hasher.finish();
    let mut all = vec![0u64; member.size];
    SimpleCommunicator::world().all_gather_into(&digest, &mut all[..]);
    let differ: Vec<String> = (1..member.size)
        .filter(|&r| all[r] != all[0])
        .map(|r| r.to_string())
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "the training images of rank {} differ from rank 0's ({}, {}): every node must read the same files",
        differ.join(", "),
        data.name,
        data.source
    )))
}

/// One line of what a step cost this rank, averaged over the steps.
pub fn step_line(rank: usize, times: StepTimes) -> String {
    let steps = times.steps.max(1) as f64;
    let ms = |s: f64| s * 1e3 / steps;
    let mb = |b: u64| b as f64 / 1e6 / steps;
    format!(
        "rank {rank}, per step (mean of {}): compute {:.2} ms, exchange {:.2} ms, sum {:.2} ms; {:.2} MB sent, {:.2} MB received",
        times.steps,
        ms(times.compute_s),
        ms(times.exchange_s),
        ms(times.sum_s),
        mb(times.sent),
        mb(times.received)
    )
}
