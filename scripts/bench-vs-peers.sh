#!/usr/bin/env bash
# Runs backprop and the peers of ../shared/peers on the same workloads in one go, and prints one
# table (median [min–max] of the repetitions). Run on an otherwise idle machine.
#
#   scripts/bench-vs-peers.sh [--peers "numpy torch burn burn-flex candle"] [--workloads "W1 W2 W3 W4"]
#                             [--reps 3] [--data-dir DIR] [--work DIR]
#
# The peers are copied to --work (default ~/peers) and must be set up there first
# (`cd ~/peers && ./setup.sh`, see ../shared/peers/README.md); those not set up are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PEERS="numpy torch burn burn-flex candle"
WORKLOADS="W1 W2 W3 W4"
REPS=3
DATA_DIR=/usr/share/datasets/fashion-mnist
WORK=${HOME}/peers
while [ $# -gt 0 ]; do
  case "$1" in
    --peers) PEERS=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --data-dir) DATA_DIR=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -d "$WORK" ] || { cp -r ../shared/peers "$WORK"; chmod -R u+w "$WORK"; }
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
