"""What the Python peers share: command line, the grid cell, MNIST from raw IDX files, JSON output.

Standard library only at import time (numpy is imported by the caller once it has limited
its threads, and passed in where it is needed).
"""
import argparse
import json
import os
import struct
import time

# Each MNIST split of the grid: (images file, labels file).
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# Eval cells run their pass over the test images in blocks of this many rows.
EVAL_BLOCK = 1000
OPTIMIZERS = {"sgd": {"lr": 0.1}, "momentum": {"lr": 0.01, "momentum": 0.9},
              "adam": {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8}}


def parse_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--grid", required=True, help="bench/grid.json")
    ap.add_argument("--cell", required=True, help="a cell id of the grid")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", required=True, help="folder of the raw MNIST IDX files")
    args = ap.parse_args()
    with open(args.grid) as f:
        cells = {c["id"]: c for c in json.load(f)["cells"]}
    if args.cell not in cells:
        ap.error(f"no cell {args.cell!r} in {args.grid}")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    return args, cells[args.cell]


def hidden_sizes(cell):
    """Hidden layer widths of an MLP cell ("784-300-100-10" -> [300, 100])."""
    return [int(n) for n in cell["net"].split("-")[1:-1]]


def read_idx(path):
    """(dims, bytes) of an IDX file of u8 elements."""
    with open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return dims, raw[4 + 4 * ndim:]


def load_split(np, data_dir, split):
    """Images (n, 784) float32 in [0, 1] and labels (n,) int64 of one split."""
    images, labels = (read_idx(os.path.join(data_dir, name)) for name in SPLITS[split])
    x = np.frombuffer(images[1], np.uint8).reshape(images[0][0], -1).astype(np.float32) / np.float32(255)
    return x, np.frombuffer(labels[1], np.uint8).astype(np.int64)


def timed_pass(correct, images):
    """An eval cell's result: `correct()` (a pass counting right answers) run once untimed, as
    backprop warms up too, then timed."""
    correct()
    t0 = time.perf_counter()
    right = correct()
    wall = time.perf_counter() - t0
    return dict(images_per_s=images / wall, accuracy=right / images, eval_block=EVAL_BLOCK)


def emit(impl, cell, rep, threads, kernel, **result):
    print(json.dumps(dict(impl=impl, cell=cell["id"], rep=rep, threads=threads, **result,
                          kernel=kernel)), flush=True)
