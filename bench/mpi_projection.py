#!/usr/bin/env python3
"""Projects a training step on MPI ranks from what `bench/mpi.sh` measured on one machine.

    python3 bench/mpi_projection.py bench/results/mpi-2026-12-03.txt

The model (BENCHMARKS.md, "Shards over MPI ranks"): weak scaling, one shard of 50 examples per
rank (batch 100 in 2 shards here, so K = N and a batch of 50·N on N ranks); each step on each
rank costs the measured compute and sum of rank 0 on 2 ranks of one thread, plus the exchange
of partials of W elements (4 bytes each: parameters, buffers and the loss), with a latency α per
message and a bandwidth β per rank:

    reduce-scatter + all-gather (implemented): 2(N−1)·α + 2·(N−1)/N·4W/β, sum as measured
    all-gather of every partial (the naive form): (N−1)·α + (N−1)·4W/β, and every rank sums
                                                  all N partials: N × the measured sum
"""
import re
import statistics
import sys

NETWORKS = {"10 Gbit/s": (25e-6, 10e9 / 8), "100 Gbit/s": (2e-6, 100e9 / 8)}
RANKS = [8, 32, 128]
LINE = re.compile(
    r"^(\S+) ranks=(\d+) threads=(\d+): rank (\d+), per step \(mean of \d+\): compute ([\d.]+) ms, "
    r"exchange ([\d.]+) ms, sum ([\d.]+) ms; ([\d.]+) MB sent, ([\d.]+) MB received"
)


def main(path):
    rows = {}
    for line in open(path):
        m = LINE.match(line.strip())
        if not m:
            continue
        model, ranks, threads, rank = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        compute, exchange, total, sent = (float(m.group(i)) for i in (5, 6, 7, 8))
        rows.setdefault((model, ranks, threads, rank), []).append((compute, exchange, total, sent))

    def median(key, i):
        return statistics.median(r[i] for r in rows[key])

    print("Measured (rank 0, median of the rounds, ms per step):\n")
    print("| net | ranks × threads | compute | exchange | sum | MB sent per step |")
    print("|---|---|---|---|---|---|")
    models = sorted({k[0] for k in rows}, key=["mlp", "simple-conv", "deep-conv"].index)
    for model in models:
        for ranks, threads in [(1, 2), (2, 1)]:
            key = (model, ranks, threads, 0)
            if key in rows:
                print(f"| {model} | {ranks} × {threads} | {median(key, 0):.2f} | {median(key, 1):.2f} "
                      f"| {median(key, 2):.2f} | {median(key, 3):.2f} |")
    print("\nProjected step (ms) on N ranks, one shard of 50 per rank; in brackets the naive "
          "all-gather of every partial:\n")
    head = " | ".join(f"N = {n}, {net}" for net in NETWORKS for n in RANKS)
    print(f"| net | W | compute + sum | {head} |")
    print("|---|---|---|" + "---|" * (len(NETWORKS) * len(RANKS)))
    for model in models:
        key = (model, 2, 1, 0)
        compute, total = median(key, 0) * 1e-3, median(key, 2) * 1e-3
        width = median(key, 3) * 1e6 / 4  # at N = K = 2 a rank sends 4W bytes a step
        cells = []
        for alpha, beta in NETWORKS.values():
            for n in RANKS:
                scatter = 2 * (n - 1) * alpha + 2 * (n - 1) / n * 4 * width / beta
                gather = (n - 1) * alpha + (n - 1) * 4 * width / beta + (n - 1) * total
                cells.append(f"{(compute + total + scatter) * 1e3:.1f} ({(compute + total + gather) * 1e3:.0f})")
        print(f"| {model} | {width / 1e6:.2f} M | {(compute + total) * 1e3:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
