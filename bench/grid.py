#!/usr/bin/env python3
"""Runs the benchmark grid (bench/grid.json): backprop and its peers, cell by cell, each as its
own process, and prints a Markdown table of medians. Standard library only.

    python3 bench/grid.py [--backprop PATH] [--peers numpy,torch,burn-flex] [--cells SUBSTR,...]
                          [--reps 3] [--threads 2] [--out bench/results/NAME.jsonl]
    python3 bench/grid.py --report FILE.jsonl     # re-renders the table of a saved run

Every JSON line (the run's settings, the GEMM rate, each repetition, each failure) is appended
to --out. Prepare the peers with `bash bench/peers/setup.sh` and build backprop with
`cargo build --release` first. Run it on an otherwise idle machine.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / "bench" / "peers"
PEERS = ["numpy", "torch", "burn-flex"]
EVAL_IMAGES = 10_000
# Environment variables that slow down current numpy's OpenBLAS where a machine sets them.
NUMPY_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backprop", default=str(ROOT / "target" / "release" / "backprop"),
                    help="the backprop binary (default: target/release/backprop)")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated, of " + ", ".join(PEERS))
    ap.add_argument("--cells", default="", help="run only cells whose id contains one of these substrings")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per (implementation, cell)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--grid", default=str(ROOT / "bench" / "grid.json"))
    ap.add_argument("--out", help="JSON-lines file to append to (default bench/results/grid-<UTC>.jsonl)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed to one process")
    ap.add_argument("--report", metavar="FILE.jsonl", help="only print the table of a saved run")
    args = ap.parse_args()
    args.peers = [p for p in args.peers.split(",") if p]
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        ap.error(f"unknown peer(s) {', '.join(sorted(unknown))}; known: {', '.join(PEERS)}")
    return args


# ----------------------------------------------------------------------------- running
def peer_command(peer):
    venv = PEERS_DIR / ".venv" / "bin" / "python"
    python = str(venv) if venv.exists() else sys.executable
    return {"numpy": [python, str(PEERS_DIR / "numpy_peer.py")],
            "torch": [python, str(PEERS_DIR / "torch_peer.py")],
            "burn-flex": [str(PEERS_DIR / "burn" / "target" / "release" / "peer-burn")]}[peer]


def thread_env(threads, impl):
    env = dict(os.environ)
    for var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    if impl == "numpy":
        for var in NUMPY_UNSET:
            env.pop(var, None)
    return env


def run_process(impl, cmd, env, timeout, cell=None):
    """The JSON lines a process printed, plus a failure record if it failed or printed none."""
    base = {"impl": impl} | ({"cell": cell} if cell else {})
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [base | {"failed": True, "error": str(e).splitlines()[0] if str(e) else repr(e)}]
    records = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            try:
                records.append(base | json.loads(line))
            except json.JSONDecodeError:
                pass
    if proc.returncode != 0 or not records:
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        records.append(base | {"failed": True, "rc": proc.returncode,
                               "error": lines[-1] if lines else "no output"})
    return records


def run_grid(args, cells):
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / (
        "grid-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S") + ".jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    records = []

    def keep(new):
        with open(out, "a") as f:
            for r in new:
                f.write(json.dumps(r) + "\n")
        records.extend(new)

    keep([{"kind": "run", "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "threads": args.threads, "reps": args.reps, "peers": args.peers, "backprop": args.backprop,
           "cells": [c["id"] for c in cells]}])
    gemm = run_process("backprop", [args.backprop, "bench", "--gemm-rate", "--threads", str(args.threads),
                                    "--json"], thread_env(args.threads, "backprop"), args.timeout)
    keep([{"kind": "gemm-rate"} | r for r in gemm])
    for n, cell in enumerate(cells, 1):
        common = ["--grid", args.grid, "--cell", cell["id"], "--reps", str(args.reps),
                  "--threads", str(args.threads)]
        runs = [("backprop", [args.backprop, "bench"] + common + ["--json"])]
        runs += [(p, peer_command(p) + common + ["--data-dir", str(PEERS_DIR / ".data")]) for p in args.peers]
        for impl, cmd in runs:
            new = run_process(impl, cmd, thread_env(args.threads, impl), args.timeout, cell["id"])
            keep(new)
            print(f"[{n}/{len(cells)}] {cell['id']} {impl}: {summary(new)}", file=sys.stderr, flush=True)
    print(f"results: {out}", file=sys.stderr)
    return records


def summary(records):
    for r in records:
        if r.get("failed"):
            return "failed: " + r["error"]
        if r.get("skipped"):
            return "skipped: " + r["skipped"]
    vals = [metric(r) for r in records if metric(r) is not None]
    unit = "ms/step" if "ms_per_step" in records[0] else "images/s"
    return f"{fmt(vals)} {unit}"


# ----------------------------------------------------------------------------- report
def metric(r):
    return r.get("ms_per_step", r.get("images_per_s"))


def num(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def fmt(vals):
    if len(vals) == 1:
        return num(vals[0])
    return f"{num(statistics.median(vals))} [{num(min(vals))}–{num(max(vals))}]"


def kernel_text(k):
    if isinstance(k, list):  # threadpoolctl entries
        return "; ".join(f"{e.get('internal_api')} {e.get('version')} {e.get('architecture')}, "
                         f"{e.get('num_threads')} threads" for e in k)
    if isinstance(k, dict):
        return ", ".join(f"{key} {val}" for key, val in k.items())
    return str(k)


def target(cell, bp, peers):
    """'yes'/'no' with the criterion, or '–' when a number is missing."""
    if cell.get("mode") == "eval":
        ref, name, limit, sign = peers.get("torch"), "torch", 1.5, "≥"
    elif cell.get("net") in ("simple-conv", "deep-conv"):
        limit = 0.35 if cell["net"] == "simple-conv" else 0.8
        ref, name, sign = peers.get("torch"), "torch", "≤"
    else:
        ref, name, limit, sign = min(peers.values(), default=None), "fastest peer", 0.8, "≤"
    if bp is None or not ref:
        return "–"
    ratio = bp / ref
    met = ratio >= limit if sign == "≥" else ratio <= limit
    return f"{'yes' if met else 'no'}: {ratio:.3g} vs {sign} {limit} × {name}"


def render(records, grid_cells):
    """The Markdown table of a run's records (several runs in one file are pooled)."""
    order = {c["id"]: i for i, c in enumerate(grid_cells)}
    info = {c["id"]: c for c in grid_cells}
    vals, failed, kernels, flops = {}, {}, {}, {}
    gemm = [r for r in records if r.get("kind") == "gemm-rate" and "gflops" in r]
    cell_ids = []
    for r in records:
        if r.get("kind") or "cell" not in r:
            continue
        impl, cell = r["impl"], r["cell"]
        if cell not in cell_ids:
            cell_ids.append(cell)
        if r.get("failed") or r.get("skipped"):
            failed[impl, cell] = "skipped" if r.get("skipped") else "failed"
            continue
        if metric(r) is not None:
            vals.setdefault((impl, cell), []).append(metric(r))
            info.setdefault(cell, {"mode": "train" if "ms_per_step" in r else "eval"})
        if "kernel" in r:
            kernels.setdefault(impl, r["kernel"])
        if impl == "backprop" and "flops_per_step" in r:
            flops[cell] = r["flops_per_step"]
    cell_ids.sort(key=lambda c: order.get(c, len(order)))
    impls = [p for p in PEERS if any(k[0] == p for k in list(vals) + list(failed))]
    rate = statistics.median(r["gflops"] for r in gemm) if gemm else None

    lines = ["| cell | backprop | " + " | ".join(impls) + " | backprop / fastest peer | floor ms "
             "| backprop / floor | target met |", "|---" * (len(impls) + 6) + "|"]
    for cell in cell_ids:
        meta = info.get(cell, {})
        med = {i: statistics.median(vals[i, cell]) for i in ["backprop"] + impls if (i, cell) in vals}
        peers = {i: v for i, v in med.items() if i != "backprop"}
        bp = med.get("backprop")
        cols = [fmt(vals[i, cell]) if (i, cell) in vals else failed.get((i, cell), "–")
                for i in ["backprop"] + impls]
        train = meta.get("mode") == "train"
        if bp is None or not peers:
            ratio = "–"
        elif train:
            best = min(peers, key=peers.get)
            ratio = f"{bp / peers[best]:.3g} ({best})"
        else:
            ratio = f"{bp / peers['torch']:.3g} (torch)" if "torch" in peers else "–"
        floor = flops[cell] / (rate * 1e9) * 1e3 if rate and cell in flops else None
        bp_ms = None if bp is None else bp if train else 1e3 * EVAL_IMAGES / bp
        lines.append("| " + " | ".join([cell] + cols + [
            ratio, num(floor) if floor else "–",
            f"{bp_ms / floor:.3g}" if floor and bp_ms else "–",
            target(meta, bp, peers)]) + " |")

    notes = ["", "train cells: ms per step (lower is better); eval cells: images/s over the "
             f"{EVAL_IMAGES} test images (higher is better); median [min–max] over the repetitions.",
             "backprop / fastest peer: train = time ratio (lower is better); eval = throughput ratio "
             "backprop / torch (higher is better).",
             "floor ms: backprop's GEMM FLOPs of one step (eval: of the whole pass) at the measured GEMM rate."]
    if gemm:
        notes.append(f"GEMM rate: {rate:.1f} GFLOP/s (backprop bench --gemm-rate, shape {gemm[0].get('shape')}).")
    notes += [f"{impl} kernel: {kernel_text(k)}" for impl, k in kernels.items()]
    errors = [r for r in records if r.get("failed")]
    if errors:
        notes += ["", "failures:"] + [f"- {r['impl']} {r.get('cell', r.get('kind', ''))}: {r['error']}"
                                      for r in errors]
    return "\n".join(lines + notes)


def load_records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def main():
    args = parse_args()
    with open(args.grid) as f:
        grid_cells = json.load(f)["cells"]
    if args.report:
        records = load_records(args.report)
    else:
        wanted = [s for s in args.cells.split(",") if s]
        cells = [c for c in grid_cells if not wanted or any(s in c["id"] for s in wanted)]
        if not cells:
            sys.exit(f"no cell of {args.grid} matches --cells {args.cells}")
        records = run_grid(args, cells)
    print(render(records, grid_cells))


if __name__ == "__main__":
    main()
