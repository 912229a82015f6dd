#!/bin/bash
# What a training step costs on MPI ranks (BENCHMARKS.md, "Shards over MPI ranks"): the
# book's net, SimpleConvNet and DeepConvNet at batch 100 in 2 shards, on 1 rank of 2 threads
# and on 2 ranks of 1 thread each, alternating, 3 rounds; every rank's line of per-step
# times (compute, exchange, sum, bytes) into OUT, prefixed with the net, ranks and threads.
#   cargo build --release --features mpi && bash bench/mpi.sh OUT.txt
# Then `python3 bench/mpi_projection.py OUT.txt` projects them to 8, 32 and 128 ranks.
set -euo pipefail
out=$1 backprop=target/release/backprop
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # harmless when not root
mpi=(mpirun --mca btl self,vader)
runs=$(mktemp -d)
: > "$out"
for round in 1 2 3; do
    for model_iters in mlp:2000 simple-conv:200 deep-conv:21; do
        model=${model_iters%:*} iters=${model_iters#*:}
        for ranks_threads in 1:2 2:1; do
            ranks=${ranks_threads%:*} threads=${ranks_threads#*:}
            "${mpi[@]}" --map-by "slot:PE=$threads" -np "$ranks" "$backprop" train --model "$model" --shards 2 \
                --iters "$iters" --eval-every 1000000 --threads "$threads" --quiet \
                --log-all-ranks --out "$runs/$model-$ranks-$round" 2>&1 |
                grep "per step" | sed "s/^/$model ranks=$ranks threads=$threads: /" >> "$out"
        done
    done
done
rm -rf "$runs"
