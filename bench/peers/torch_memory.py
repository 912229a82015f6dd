#!/usr/bin/env python3
"""PyTorch's peak memory for the work of `backprop train --model deep-conv --iters 2
--eval-every 100000`: DeepConvNet, 2 Adam steps at batch 100, then one evaluation of the full
MNIST train and test sets (blocks of 1000 under no_grad). Images kept as uint8 and converted
per batch, as backprop keeps them. Prints peak resident memory in MB (ru_maxrss).

Usage: torch_memory.py --data-dir DIR [--threads T]
"""
import argparse
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--data-dir", required=True)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
os.environ["OMP_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch_nets import build  # noqa: E402

torch.set_num_threads(args.threads)


def split(name):
    (dims, images), (_, labels) = (pc.read_idx(os.path.join(args.data_dir, f))
                                   for f in pc.SPLITS[name])
    x = torch.from_numpy(np.frombuffer(images, np.uint8).reshape(dims[0], 784).copy())
    return x, torch.from_numpy(np.frombuffer(labels, np.uint8).astype(np.int64))


def as_input(x):
    return x.float() / 255


train, test = split("train"), split("test")
torch.manual_seed(0)
model = build({"net": "deep-conv"})
opt = torch.optim.Adam(model.parameters(), lr=0.001)
for _ in range(2):
    idx = torch.randint(0, train[0].shape[0], (100,))
    loss = F.cross_entropy(model(as_input(train[0][idx])), train[1][idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
model.eval()
with torch.no_grad():
    for x, t in (train, test):
        right = sum(int((model(as_input(xb)).argmax(1) == tb).sum())
                    for xb, tb in zip(x.split(1000), t.split(1000)))
        print(f"accuracy {right / len(t):.4f}", file=sys.stderr)
print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
