#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs: the malformed-input corpus of the tests, and
# small valid model files of every architecture, trained here on a synthetic 6×6 data set.
# Usage (from the repository root): fuzz/seeds.sh [path to a built backprop binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/backprop}
[ -x "$bin" ] || cargo build --release --quiet
out=fuzz/corpus
mkdir -p "$out"/{idx,model,net_spec,image,pickle}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# idx: the first byte chooses raw (even) or gzip-compressed (odd) input.
for f in tests/corpus/idx/*; do
  name=$(basename "$f")
  { printf '\x00'; cat "$f"; } > "$out/idx/raw-$name"
  { printf '\x01'; cat "$f"; } > "$out/idx/gz-$name"
done

# A synthetic data set of 6×6 images in 3 classes, for tiny models of each architecture.
python3 - "$work/data" <<'PY'
import os, struct, sys
d = sys.argv[1]; os.makedirs(d)
def idx(dims, data): return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", x) for x in dims) + bytes(data)
n = 30
images = [((i * 37 + j * 11) % 256) for i in range(n) for j in range(36)]
labels = [i % 3 for i in range(n)]
for split in ("train", "t10k"):
    open(f"{d}/{split}-images-idx3-ubyte", "wb").write(idx([n, 6, 6], images))
    open(f"{d}/{split}-labels-idx1-ubyte", "wb").write(idx([n], labels))
PY
train() { "$bin" train --data-dir "$work/data" --iters 2 --batch 5 --quiet --out "$work/$1" "${@:2}" > /dev/null 2>&1; cp "$work/$1/model.safetensors" "$out/model/$1.safetensors"; }
train mlp --net 36-4-3
train mlp-bn-dropout --net 36-5-4-3 --batch-norm --dropout 0.2 --activation sigmoid --weight-decay 0.01
train simple-conv --model simple-conv
train deep-conv --model deep-conv
cp tests/corpus/model/*.safetensors "$out/model/"

# net_spec: specs, and the architecture JSON of the conv models' metadata.
printf '784-50-10' > "$out/net_spec/book"
printf '784-100-100-100-100-100-100-10' > "$out/net_spec/deep"
printf '3-1' > "$out/net_spec/small"
for m in simple-conv deep-conv; do
  python3 - "$out/model/$m.safetensors" > "$out/net_spec/$m.json" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"]["architecture"], end="")
PY
done

cp tests/corpus/image/* "$out/image/"
# pickle: the malformed ones, numpy's own in every protocol, and the tiny models as pickles.
cp tests/corpus/pickle/*.pkl tests/corpus/pickle/numpy/*.pkl "$out/pickle/"
for m in mlp mlp-bn-dropout simple-conv; do
  "$bin" convert "$out/model/$m.safetensors" "$out/pickle/$m.pkl" > /dev/null 2>&1
done
# DeepConvNet's 300 KB file would slow every mutation; its architecture is a net_spec seed.
rm "$out/model/deep-conv.safetensors"
echo "seeds in $out: $(find "$out" -type f | wc -l) files"
