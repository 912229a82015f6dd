#!/usr/bin/env bash
# Recompresses MNIST's four original .gz files (from `backprop data fetch mnist`, or any
# mirror) into the .xz files of data/mnist/, which the binary embeds. xz -9e with a dictionary
# just large enough for each file (at most 32 MiB: a larger one saves 10 kB on the training
# images and costs the decoder 32 MiB more): 9.2 MB for the four, against 11.6 MB of gzip,
# so the crate fits crates.io's 10 MB limit. The decoded bytes are the originals; their
# SHA-256 is pinned in src/data/catalog.rs and checked by `backprop data list` and the tests.
#
#   tools/compress_mnist.sh DIR_WITH_GZ_FILES data/mnist
set -euo pipefail
from=$1 to=$2
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  size=$(gzip -dc "$from/$name.gz" | wc -c)
  dict=65536
  while [ "$dict" -lt "$size" ] && [ "$dict" -lt $((32 << 20)) ]; do dict=$((dict * 2)); done
  gzip -dc "$from/$name.gz" | xz -T1 --format=xz --check=crc64 --lzma2=preset=9e,dict="$dict" > "$to/$name.xz.tmp"
  mv "$to/$name.xz.tmp" "$to/$name.xz"
  echo "$name.xz $(wc -c < "$to/$name.xz") bytes (dictionary $dict)"
done
