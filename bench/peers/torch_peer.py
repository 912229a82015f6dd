#!/usr/bin/env python3
"""PyTorch (CPU, eager) peer of bench/grid.json: nn.Sequential models, F.cross_entropy,
loss.backward(), torch.optim.SGD / SGD(momentum=0.9) / Adam. float32.

Usage: torch_peer.py --grid bench/grid.json --cell ID [--reps R] [--threads T] --data-dir DIR
Prints one JSON line per repetition.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402

args, cell = pc.parse_args(__doc__.splitlines()[0])  # sets OMP_NUM_THREADS & co.

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch_nets import build  # noqa: E402

torch.set_num_threads(args.threads)


def optimizer(name, params):
    hp = pc.OPTIMIZERS[name]
    if name == "adam":
        return torch.optim.Adam(params, **hp)
    return torch.optim.SGD(params, lr=hp["lr"], momentum=hp.get("momentum", 0.0))


def train(cell, data, seed):
    x, t = data
    model = build(cell)
    opt = optimizer(cell["optimizer"], model.parameters())
    g = torch.Generator().manual_seed(seed)
    losses = []
    for i in range(cell["warmup"] + cell["iters"]):
        if i == cell["warmup"]:
            t0 = time.perf_counter()
        idx = torch.randint(0, x.shape[0], (cell["batch"],), generator=g)  # with replacement
        loss = F.cross_entropy(model(x[idx]), t[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    wall = time.perf_counter() - t0
    return dict(ms_per_step=1000.0 * wall / cell["iters"], loss_first=losses[cell["warmup"]],
                loss_last=losses[-1])


def evaluate(cell, data):
    """One untimed pass (as backprop warms up too), then the timed one."""
    x, t = data
    model = build(cell).eval()

    @torch.no_grad()
    def correct():
        return sum(int((model(xb).argmax(dim=1) == tb).sum())
                   for xb, tb in zip(x.split(pc.EVAL_BLOCK), t.split(pc.EVAL_BLOCK)))

    return pc.timed_pass(correct, len(t))


def main():
    kernel = {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    train_cell = cell["mode"] == "train"
    data = tuple(map(torch.from_numpy,
                     pc.load_split(np, args.data_dir, "train" if train_cell else "test")))
    for rep in range(args.reps):
        torch.manual_seed(rep)
        result = train(cell, data, rep) if train_cell else evaluate(cell, data)
        pc.emit("torch", cell, rep, torch.get_num_threads(), kernel, **result)


if __name__ == "__main__":
    main()
