#!/bin/bash
# Shards against the binary before them (BENCHMARKS.md, "Shards of a batch on the cores"):
# alternating runs, one process per repetition, 3 rounds, raw JSON lines into OUT.
#   bash bench/shards.sh BEFORE_BINARY OUT.jsonl
# BEFORE_BINARY is a `backprop` built from the commit before (git worktree + cargo build
# --release); the one after is target/release/backprop.
set -euo pipefail
before=$1 out=$2 after=target/release/backprop
: > "$out"
run() { # label binary args…
    local label=$1 binary=$2
    shift 2
    "$binary" bench "$@" --reps 1 --json | python3 -c "
import json, sys
for line in sys.stdin:
    r = json.loads(line); r['binary'] = '$label'; print(json.dumps(r))" >> "$out"
}
for round in 1 2 3; do
    for w in W2 W1 W3 W4; do
        run before "$before" "$w" --threads 2
        run after "$after" "$w" --threads 2
    done
    run before "$before" W2 --threads 1
    for k in 1 2; do
        run "after K=$k" "$after" W2 --threads 2 --shards $k
        run "after K=$k" "$after" W2 --threads 1 --shards $k
    done
    run before "$before" --cell deep-conv/adam/b100
    for cell in deep-conv/adam/b100 simple-conv/adam/b100 mlp/784-300-100-10/relu/momentum/b64 \
        mlp/784-300-100-10/relu/momentum/b256 mlp/784-100-100-100-100-100-10/relu/bn/dropout0.2/sgd/b100; do
        for k in 1 2 4; do
            run "after K=$k" "$after" --cell "$cell" --shards $k
        done
    done
done
for t in 1 2 1 2; do "$after" bench --gemm-rate --json --threads $t >> "$out"; done
"$after" bench --costs --json >> "$out"
