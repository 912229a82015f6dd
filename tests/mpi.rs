//! Training over MPI ranks (`cargo test --release --features mpi --test mpi`, Open MPI's
//! `mpirun` on the path): the same bits as one process for any number of ranks, output from
//! rank 0 alone, the errors of a wrong launch, and faults that end the job instead of hanging
//! it and leave a checkpoint that resumes on another number of ranks.
//!
//! The ranks run on this host over the TCP and self transports, oversubscribed (more ranks
//! than cores is fine: they wait for each other, never for a clock).
#![cfg(feature = "mpi")]

mod common;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use common::{Paused, backprop, stderr, stdout};

/// `mpirun` with its options for this host (as root if need be), before the programs.
fn mpirun_here() -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["--oversubscribe", "--mca", "btl", "self,tcp"])
        .args(["--mca", "btl_tcp_if_include", "lo"])
        .args(["--mca", "oob_tcp_if_include", "lo"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env(
            "BACKPROP_CACHE_DIR",
            std::env::temp_dir().join("backprop-test-empty-cache"),
        );
    command
}

const BACKPROP: &str = env!("CARGO_BIN_EXE_backprop");

/// `mpirun -np n backprop args…` on this host.
fn mpirun(n: usize, args: &[&str]) -> Command {
    let mut command = mpirun_here();
    command.args(["-np", &n.to_string(), BACKPROP]).args(args);
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("mpirun runs")
}

/// The book's net with the layers whose arithmetic depends on the batch (batch norm,
/// dropout), in 6 shards, evaluated along the way.
const MLP: [&str; 12] = [
    "train",
    "--shards",
    "6",
    "--batch-norm",
    "--dropout",
    "0.2",
    "--iters",
    "30",
    "--eval-every",
    "10",
    "--quiet",
    "--threads",
];

fn mlp_args(out: &str) -> Vec<&str> {
    let mut args = MLP.to_vec();
    args.extend(["1", "--out", out]);
    args
}

#[test]
fn any_number_of_ranks_trains_the_bits_of_one_process_and_only_rank_0_speaks() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let alone = backprop(&mlp_args(&out("alone")));
    assert!(alone.status.success(), "{}", stderr(&alone));
    let model =
        |name: &str| std::fs::read(Path::new(&out(name)).join("model.safetensors")).unwrap();
    for n in [1, 2, 3] {
        let name = format!("ranks-{n}");
        let ranks = run(mpirun(n, &mlp_args(&out(&name))));
        assert!(ranks.status.success(), "{n} ranks: {}", stderr(&ranks));
        assert!(model(&name) == model("alone"), "{n} ranks: another model");
        // The same evaluation lines, once.
        assert_eq!(stdout(&ranks), stdout(&alone), "{n} ranks");
        let said = stderr(&ranks);
        assert!(
            said.contains(&format!("batch 100 in 6 shards on {n} ranks")),
            "{said}"
        );
        assert!(said.contains("rank 0, per step"), "{said}");
        assert!(!said.contains("rank 1"), "{said}");
    }
    // SimpleConvNet, its convolution and pooling layers in shards over ranks.
    let conv = |out: &str| {
        [
            "train",
            "--model",
            "simple-conv",
            "--shards",
            "6",
            "--iters",
            "3",
        ]
        .into_iter()
        .chain(["--eval-every", "100000", "--quiet", "--out", out])
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let args = conv(&out("conv-alone"));
    let alone = backprop(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(alone.status.success(), "{}", stderr(&alone));
    for n in [2, 3] {
        let name = format!("conv-{n}");
        let args = conv(&out(&name));
        let ranks = run(mpirun(
            n,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
        assert!(ranks.status.success(), "{n} ranks: {}", stderr(&ranks));
        assert!(
            model(&name) == model("conv-alone"),
            "SimpleConvNet on {n} ranks"
        );
    }
}

#[test]
fn every_rank_speaks_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = mlp_args(out.to_str().unwrap());
    args.push("--log-all-ranks");
    let ranks = run(mpirun(3, &args));
    assert!(ranks.status.success(), "{}", stderr(&ranks));
    let said = stderr(&ranks);
    // Each rank's line whole, though the ranks write at the same moment.
    for rank in 0..3 {
        let line = format!("rank {rank}, per step (mean of 29): compute ");
        let whole = |l: &&str| l.starts_with(&line) && l.ends_with(" MB received");
        assert_eq!(said.lines().filter(whole).count(), 1, "{said}");
    }
}

#[test]
fn ranks_that_do_not_divide_the_shards_are_refused_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "train",
        "--shards",
        "3",
        "--iters",
        "5",
        "--out",
        out.to_str().unwrap(),
    ];
    let ranks = run(mpirun(2, &args));
    assert!(!ranks.status.success());
    let said = stderr(&ranks);
    let line = "error: 3 shards cannot be spread evenly over 2 ranks: run on 1, 3 ranks, or give --shards a multiple of 2";
    assert_eq!(said.matches(line).count(), 1, "{said}");
    assert!(!out.join("model.safetensors").exists());
    // A flag error, once too.
    let ranks = run(mpirun(2, &["train", "--shards", "0"]));
    assert!(!ranks.status.success());
    assert_eq!(
        stderr(&ranks).matches("error: invalid value '0'").count(),
        1,
        "{}",
        stderr(&ranks)
    );
}

#[test]
fn processes_started_alone_by_another_launcher_are_caught() {
    // What MPICH's mpiexec or a Slurm without PMIx does to a binary of Open MPI: each process
    // is told it is one of 2, and MPI starts it alone.
    let out = Command::new(BACKPROP)
        .args(["train", "--iters", "5", "--quiet", "--out"])
        .arg(tempfile::tempdir().unwrap().path().join("run"))
        .env("PMI_SIZE", "2")
        .env("PMI_RANK", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).starts_with(
            "error: the launcher started 2 processes (PMI_SIZE=2) but MPI sees 1 rank"
        ),
        "{}",
        stderr(&out)
    );
}

/// The pid of rank `rank` of the job whose command line names `marker`.
fn rank_pid(rank: usize, marker: &str) -> u32 {
    let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let read = |what| std::fs::read(format!("/proc/{pid}/{what}")).unwrap_or_default();
            let has = |bytes: Vec<u8>, text: &str| {
                bytes.split(|&b| b == 0).any(|part| part == text.as_bytes())
            };
            has(read("cmdline"), marker) && has(read("environ"), &wanted)
        })
        .unwrap_or_else(|| panic!("no process of rank {rank} for {marker}"))
}

/// What `finish` gives, failing if it has not come after 120 s: the guard against a job
/// that hangs instead of ending, far above the moment an ending takes.
fn ended<T: Send + 'static>(finish: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || send.send(finish()));
    receive
        .recv_timeout(Duration::from_secs(120))
        .expect("the job ended instead of hanging")
}

/// A job of two "nodes", each rank in its own folder with the same relative `--data-dir`:
/// rank 0 in `dir/a`, rank 1 in `dir/b`. Rank 0 trains into `dir/run`.
fn two_nodes(dir: &Path) -> Command {
    let wdir = |node: &str| dir.join(node).to_str().unwrap().to_string();
    let mut mpmd = mpirun_here();
    mpmd.args(["-np", "1", "-wdir", &wdir("a"), BACKPROP, "train"])
        .args(["--data-dir", "data", "--batch", "10", "--shards", "2"])
        .args(["--iters", "5", "--quiet", "--out"])
        .arg(dir.join("run"))
        // mpirun's syntax for a second program: rank 1, in the other folder.
        .args([":", "-np", "1", "-wdir", &wdir("b"), BACKPROP, "train"]);
    mpmd
}

const LONG_RUN: [&str; 10] = [
    "train",
    "--shards",
    "6",
    "--iters",
    "40",
    "--checkpoint-every",
    "10",
    "--eval-every",
    "1000",
    "--quiet",
];

#[test]
fn a_killed_rank_ends_the_job_and_its_checkpoint_resumes_on_other_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed");
    let out = out.to_str().unwrap();
    let mut args = LONG_RUN.to_vec();
    args.extend(["--out", out]);
    let mut job = Paused::spawn(mpirun(2, &args));
    job.reach("renamed checkpoint.safetensors"); // rank 0's first checkpoint
    // Rank 0 stands after its checkpoint, rank 1 waits for it in the next step's exchange.
    let pid = rank_pid(1, out);
    // SAFETY: a signal to a process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let (status, said) = ended(move || (job.finish(), job.said));
    assert!(!status.success());
    let said = said.join("\n");
    assert!(
        said.contains("rank 1"),
        "the message names the rank: {said}"
    );
    // The checkpoint (iteration 10) resumes on 3 ranks to the bits of a run never killed.
    let resumed = run(mpirun(3, &["train", "--resume", out, "--quiet"]));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("resuming at 10"),
        "{}",
        stderr(&resumed)
    );
    let whole = dir.path().join("whole");
    let mut args = LONG_RUN.to_vec();
    args.extend(["--out", whole.to_str().unwrap()]);
    assert!(backprop(&args).status.success());
    let model = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(
        model(Path::new(out)) == model(&whole),
        "resumed on 3 ranks: another model"
    );
}

#[test]
fn a_panicking_rank_aborts_the_job_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = LONG_RUN.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    let mut job = Paused::spawn(mpirun(2, &args));
    job.reach("iter 5");
    job.panic_here();
    let (status, said) = ended(move || (job.finish(), job.said));
    assert!(!status.success());
    let said = said.join("\n");
    assert!(
        said.contains("error: rank 0 panicked") && said.contains("asked to panic at a pause point"),
        "{said}"
    );
}

/// Writes a small data set in IDX files into `dir`: 200 training and 20 test images whose
/// pixels start at `shift`.
fn write_data(dir: &Path, shift: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, magic: u8, dims: &[u32], item: &dyn Fn(usize) -> u8| {
        let mut bytes = vec![0, 0, 8, magic];
        for d in dims {
            bytes.extend(d.to_be_bytes());
        }
        let len: u32 = dims.iter().product();
        bytes.extend((0..len as usize).map(item));
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let pixel = |i: usize| ((i * 31 + shift) % 251) as u8;
    let label = |i: usize| (i % 10) as u8;
    write("train-images-idx3-ubyte", 3, &[200, 28, 28], &pixel);
    write("train-labels-idx1-ubyte", 1, &[200], &label);
    write("t10k-images-idx3-ubyte", 3, &[20, 28, 28], &pixel);
    write("t10k-labels-idx1-ubyte", 1, &[20], &label);
}

#[test]
fn ranks_that_read_other_data_are_refused() {
    // Two "nodes": the same relative --data-dir, other files in each working folder.
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("a/data"), 0);
    write_data(&dir.path().join("b/data"), 1);
    let out = dir.path().join("run");
    let job = run(two_nodes(dir.path()));
    assert!(!job.status.success());
    let said = stderr(&job);
    let line = "error: the training images of rank 1 differ from rank 0's";
    assert_eq!(said.matches(line).count(), 1, "{said}");
    assert!(!out.join("model.safetensors").exists());
}

#[test]
fn an_error_of_rank_0_alone_ends_the_job_naming_it() {
    // Rank 0 cannot write its first checkpoint (159 KB under a 100 KiB file-size limit, the
    // signal that would kill it ignored): rank 1 would wait for it in the next step, so the
    // job is aborted rather than left hanging.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = LONG_RUN.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    let mut limited = mpirun_here();
    limited
        .args([
            "-np",
            "1",
            "sh",
            "-c",
            "trap '' XFSZ; ulimit -f 200; exec \"$0\" \"$@\"",
        ])
        .arg(BACKPROP)
        .args(&args)
        .args([":", "-np", "1", BACKPROP, "train"]);
    let ended = ended(move || run(limited));
    assert!(!ended.status.success());
    let said = stderr(&ended);
    let line = format!(
        "error: rank 0: {}: File too large (os error 27)",
        out.join("checkpoint.safetensors").display()
    );
    assert!(said.contains(&line), "{said}");
}

#[test]
fn a_rank_that_cannot_read_the_data_aborts_the_job_naming_itself() {
    // Rank 1's folder has no data: its error ends the job, though its output is silenced.
    let dir = tempfile::tempdir().unwrap();
    write_data(&dir.path().join("a/data"), 0);
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    let out = dir.path().join("run");
    let command = two_nodes(dir.path());
    let job = ended(move || run(command));
    assert!(!job.status.success());
    let said = stderr(&job);
    assert!(
        said.contains("error: rank 1: ") && said.contains("data"),
        "{said}"
    );
    assert!(!out.join("model.safetensors").exists());
}
