#!/bin/bash
# Usage: tools/seeded_runs.sh BINARY OUTDIR
#
# Runs a fixed set of seeded trainings (every optimizer, sigmoid, batch norm with dropout,
# weight decay, shuffled epochs, SimpleConvNet, DeepConvNet, a checkpointed run and its
# resumption, fine-tuning with --init-from), evaluations of their models, gradient checks,
# chapter 6's experiments and the W1-W4 workloads, and prints one line each: the
# first 16 hex digits of the SHA-256 of the model file and of metrics.csv (its first five
# columns: no timings), or of the printed numbers. Two binaries that print the same lines
# compute the same bits: `diff <(tools/seeded_runs.sh old …) <(tools/seeded_runs.sh new …)`.
set -u
B=$1; O=$2; rm -rf "$O"; mkdir -p "$O"
hash() { sha256sum | cut -c1-16; }
run() {
    local name=$1; shift
    "$B" train --quiet --out "$O/$name" "$@" > "$O/$name.txt" 2>&1 || echo "$name FAILED"
    echo "$name $(hash < "$O/$name/model.safetensors") $(cut -d, -f1-5 "$O/$name/metrics.csv" | hash)"
}
run book
run sigmoid --activation sigmoid --init xavier --iters 600
run batch-norm-dropout --batch-norm --dropout 0.2 --optimizer adam --iters 600 --net 784-100-100-10 --seed 3
run momentum-l2 --optimizer momentum --weight-decay 0.01 --iters 600 --sampling shuffle
run adamw --optimizer adamw --weight-decay 0.1 --iters 300
run nesterov --optimizer nesterov --iters 300
run adagrad --optimizer adagrad --iters 300
run rmsprop --optimizer rmsprop --iters 300
run simple-conv --model simple-conv --iters 60 --eval-every 30 --seed 2
run deep-conv --model deep-conv --iters 6 --eval-every 3 --batch 20
run checkpointed --iters 500 --checkpoint-every 200 --seed 5
"$B" train --quiet --resume "$O/checkpointed" > /dev/null 2>&1 || echo "resume FAILED"
echo "resumed-from-400 $(hash < "$O/checkpointed/model.safetensors")"
run init-from --init-from "$O/book/model.safetensors" --iters 200 --seed 1
for m in book sigmoid batch-norm-dropout simple-conv deep-conv; do
    echo "eval-$m $("$B" eval --model "$O/$m/model.safetensors" --json 2>/dev/null | hash)"
done
for w in W1 W2 W3 W4; do
    echo "$w $("$B" bench "$w" --reps 1 --json 2>/dev/null | tr ',' '\n' | grep loss | tr '\n' ' ')"
done
echo "gradcheck $("$B" gradcheck 2>&1 | hash)"
echo "gradcheck-3-layers $("$B" gradcheck --net 784-30-20-10 --images 2 2>&1 | hash)"
for e in optimizer-compare weight-init-compare activation-histogram batch-norm overfit; do
    echo "$e $("$B" experiment --out "$O/experiments" "$e" 2>&1 | grep -v 'saved' | hash)"
done
