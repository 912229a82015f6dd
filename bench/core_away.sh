#!/bin/bash
# The other core taken away (BENCHMARKS.md, "What splits cost, followed"): two builds on one
# cell, 3 alternating rounds of one process of 8 repetitions, in two scenarios, raw JSON lines
# (tagged with build and scenario) into OUT. Needs 2 cores or more, `taskset` and root (nice -20).
#   bash bench/core_away.sh BEFORE_BINARY AFTER_BINARY OUT.jsonl [CELL]
# at-start-up: a spinning program at nice -20 holds core 1 for the first 1.2 s of the process
#   (the cost model's start-up measurement included), backprop at nice 19; then the core is free.
# after-start-up: a spinning program takes core 1 from 1.1 s after start-up, for 2 s.
set -euo pipefail
before=$1 after=$2 out=$3 cell=${4:-mlp/784-300-100-10/relu/momentum/b64}
: > "$out"
spin() { timeout "$1" sh -c 'while :; do :; done'; }
run() { # scenario label binary
    local scenario=$1 label=$2 binary=$3
    if [ "$scenario" = at-start-up ]; then
        nice -n -20 taskset -c 1 bash -c "$(declare -f spin); spin 1.2" &
        nice -n 19 "$binary" bench --cell "$cell" --reps 8 --threads 2 --json > "$out.part"
    else
        (sleep 1.1; taskset -c 1 bash -c "$(declare -f spin); spin 2") &
        "$binary" bench --cell "$cell" --reps 8 --threads 2 --json > "$out.part"
    fi
    wait
    python3 -c "
import json, sys
for line in open('$out.part'):
    r = json.loads(line); r.update(build='$label', scenario='$scenario'); print(json.dumps(r))" >> "$out"
    python3 -c "
import json
print('$scenario $label', [round(json.loads(l)['ms_per_step'], 3) for l in open('$out.part')])"
    rm -f "$out.part"
}
for round in 1 2 3; do
    for scenario in at-start-up after-start-up; do
        run "$scenario" before "$before"
        run "$scenario" after "$after"
    done
done
