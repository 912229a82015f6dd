"""Model files cross the language boundary both ways (run by .ci/run).

usage: safetensors_interop.py BACKPROP_BINARY MODEL_DIR SCRATCH_DIR

1. A model saved by `backprop train` loads with safetensors.numpy: the book's names and shapes,
   its metadata, and a numpy forward pass that reproduces `backprop eval`'s test accuracy.
2. A model written here in float64 with the book's names and no metadata loads in backprop,
   which infers the net from the shapes and gets the accuracy numpy computes.
"""
import lzma
import json
import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

binary, model_dir, scratch = sys.argv[1:4]
model_path = f"{model_dir}/model.safetensors"


def mnist_test():
    root = "data/mnist"
    with lzma.open(f"{root}/t10k-images-idx3-ubyte.xz") as f:
        x = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 784)
    with lzma.open(f"{root}/t10k-labels-idx1-ubyte.xz") as f:
        t = np.frombuffer(f.read()[8:], dtype=np.uint8)
    return x.astype(np.float32) / 255.0, t


def accuracy(params, x, t):
    h = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    y = h @ params["W2"] + params["b2"]
    return float(np.mean(np.argmax(y, axis=1) == t))


def backprop_eval(path):
    out = subprocess.run([binary, "eval", "--model", path, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["accuracy"]


params = load_file(model_path)
assert sorted(params) == ["W1", "W2", "b1", "b2"], sorted(params)
assert params["W1"].shape == (784, 50) and params["W1"].dtype == np.float32, params["W1"].shape
assert params["b2"].shape == (10,)
with safe_open(model_path, framework="numpy") as f:
    meta = f.metadata()
assert meta["net"] == "784-50-10" and meta["normalisation"] == "pixel/255", meta
assert json.loads(meta["classes"]) == [str(c) for c in range(10)], meta

x, t = mnist_test()
ours, theirs = backprop_eval(model_path), accuracy(params, x, t)
assert abs(ours - theirs) <= 2e-4, (ours, theirs)  # at most 2 of 10,000 argmax ties may differ
print(f"backprop → numpy: test accuracy {ours:.4f} in backprop, {theirs:.4f} in numpy")

rng = np.random.default_rng(7)
foreign = {k: v.astype(np.float64) + rng.normal(0, 0.01, v.shape) for k, v in params.items()}
foreign_path = f"{scratch}/from_numpy.safetensors"
save_file(foreign, foreign_path)
ours, theirs = backprop_eval(foreign_path), accuracy(foreign, x.astype(np.float64), t)
assert abs(ours - theirs) <= 2e-4, (ours, theirs)
print(f"numpy → backprop: test accuracy {theirs:.4f} in numpy, {ours:.4f} in backprop")
