#!/usr/bin/env bash
# Prepares the peers of bench/grid.py; safe to re-run (each step is skipped when done).
#   bash bench/peers/setup.sh [venv] [data] [burn]      (default: all three)
#   venv: bench/peers/.venv with numpy, threadpoolctl and torch from PyPI (the torch wheel pulls
#         ~4 GB of CUDA libraries; only the CPU is used)
#   data: the repository's MNIST (data/mnist/*.xz) as raw IDX files in bench/peers/.data
#   burn: cargo build --release of bench/peers/burn (its own project and target folder)
# Set JOBS (default 1) for cargo's -j; builds run under nice so the machine stays usable.
set -euo pipefail
PEERS=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$PEERS/../.." && pwd)
for step in ${*:-venv data burn}; do
  case "$step" in
    venv)
      [ -x "$PEERS/.venv/bin/python" ] || python3 -m venv "$PEERS/.venv"
      "$PEERS/.venv/bin/python" -c 'import numpy, threadpoolctl, torch' 2>/dev/null ||
        "$PEERS/.venv/bin/pip" install -q "numpy>=2" threadpoolctl torch ;;
    data)
      mkdir -p "$PEERS/.data"
      for xz in "$ROOT"/data/mnist/*.xz; do
        raw="$PEERS/.data/$(basename "$xz" .xz)"
        if [ ! -s "$raw" ]; then
          python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$xz" "$raw.part"
          mv "$raw.part" "$raw"
        fi
      done ;;
    burn)
      nice -n 19 cargo build --release -j "${JOBS:-1}" --manifest-path "$PEERS/burn/Cargo.toml" \
        --target-dir "$PEERS/burn/target" ;;
    *) echo "unknown step $step (venv, data, burn)" >&2; exit 2 ;;
  esac
done
