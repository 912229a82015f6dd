#!/usr/bin/env bash
# Runs backprop and peer programs on the same workloads (BENCHMARKS.md) in one go, and prints
# one table (median [min–max] of the repetitions). Run on an otherwise idle machine.
#
#   scripts/bench-vs-peers.sh --peers-dir DIR [--peers "numpy torch burn burn-flex candle"]
#                             [--workloads "W1 W2 W3 W4"] [--reps 3] [--data-dir DIR]
#
# DIR holds the peer programs, set up: its run.sh runs them (--peers, --workloads, --reps,
# --data-dir), appending their JSON lines to DIR/results/raw/, and DIR/common/report.py
# prints the table. The peer programs are not part of this repository yet (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PEERS="numpy torch burn burn-flex candle"
WORKLOADS="W1 W2 W3 W4"
REPS=3
DATA_DIR=/usr/share/datasets/fashion-mnist
WORK=
while [ $# -gt 0 ]; do
  case "$1" in
    --peers) PEERS=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --data-dir) DATA_DIR=$2; shift 2 ;;
    --peers-dir) WORK=$2; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$WORK" ] && [ -x "$WORK/run.sh" ] || { echo "error: --peers-dir DIR must name a folder with the peers' run.sh (see --help)" >&2; exit 2; }
cargo build --release --quiet
OUT=$(mktemp --suffix=.jsonl)
# One workload at a time, backprop then the peers, so that a drift in the machine's speed
# (it is shared) lands on all of them alike.
for w in $WORKLOADS; do
  echo "## backprop $w ..." >&2
  "$REPO/target/release/backprop" bench "$w" --reps "$REPS" --threads 2 --data-dir "$DATA_DIR" --json >> "$OUT"
  (cd "$WORK" && ./run.sh --peers "$PEERS" --workloads "$w" --reps "$REPS" --data-dir "$DATA_DIR" >/dev/null)
  LATEST=$(ls -t "$WORK"/results/raw/*.jsonl | head -1)
  cat "$LATEST" >> "$OUT"
done
echo "raw results: $OUT" >&2
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; data: $DATA_DIR; reps: $REPS; threads: 2"
python3 "$WORK/common/report.py" "$OUT"
