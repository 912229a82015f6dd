"""The book's pickle format, both ways (run by .ci/run).

usage: pickle_interop.py BACKPROP_BINARY SCRATCH_DIR NAME=MODEL.safetensors ...

1. Pickles made here with Python's pickle and numpy, in every protocol 2-5, float32 and float64,
   little- and big-endian, C and Fortran order, dict and OrderedDict (make_pickles.py), are
   read by backprop: `backprop convert X.pkl X.safetensors` gives exactly their arrays.
2. Each model given (NAME is mlp-relu, mlp-sigmoid, simple-conv or deep-conv) is written as a
   pickle by `backprop convert`, loaded with `pickle.load`, assigned into the book's layers
   (book_forward.py, as the book's `load_params` does), and run over all 10,000 MNIST test
   images: its predictions are backprop's (`backprop misclassified`), image by image.
"""
import os
import pickle
import re
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import book_forward  # noqa: E402
import make_pickles  # noqa: E402

binary, scratch, *models = sys.argv[1:]


def run(*args):
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True)


# 1. Every kind of pickle numpy writes.
fixtures = os.path.join(scratch, "pickles")
make_pickles.main(fixtures)
expected = make_pickles.expected()
for name, *_ in make_pickles.variants():
    source = os.path.join(fixtures, name + ".pkl")
    target = os.path.join(fixtures, name + ".safetensors")
    run("convert", source, target)
    got = load_file(target)
    assert sorted(got) == sorted(expected), (name, sorted(got))
    for key, value in expected.items():
        assert np.array_equal(got[key], value.astype(np.float32)), (name, key)
print(f"{len(list(make_pickles.variants()))} pickles read exactly")

# 2. backprop's models in the book's code.
x, t = book_forward.mnist_test()
for spec in models:
    kind, model = spec.split("=", 1)
    path = os.path.join(scratch, kind + ".pkl")
    run("convert", model, path)
    with open(path, "rb") as f:
        params = pickle.load(f)
    net = book_forward.NETS[kind](params)
    scores = np.concatenate([net.predict(x[i : i + 500]) for i in range(0, len(x), 500)])
    ours = np.argmax(scores, axis=1)
    listed = run("misclassified", "--model", model, "--count", "10000", "--out", os.path.join(scratch, kind + ".png")).stdout
    theirs = t.astype(np.int64).copy()
    for i, p in re.findall(r"image +(\d+): true \S+, predicted (\S+)", listed):
        theirs[int(i)] = int(p)
    differ = np.flatnonzero(ours != theirs)
    # float32 in backprop, float64 here: only a near-tie may come out the other way.
    top2 = np.sort(scores[differ], axis=1)[:, -2:]
    assert len(differ) <= 2 and np.all(top2[:, 1] - top2[:, 0] < 1e-4), (kind, differ, top2)
    accuracy = np.mean(ours == t)
    print(f"{kind}: the book's code on backprop's pickle predicts as backprop on {10000 - len(differ)}/10000 images (accuracy {accuracy:.4f})")
