"""The grid's nets in PyTorch (nn.Sequential), for torch_peer.py and torch_memory.py.

Import after the thread settings: this imports torch.
"""
import torch
import torch.nn as nn

import peer_common as pc


def mlp(cell):
    """Linear -> [BatchNorm1d] -> ReLU|Sigmoid -> [Dropout] per hidden layer, then Linear."""
    sizes = [784] + pc.hidden_sizes(cell) + [10]
    layers = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(nn.Linear(fan_in, fan_out))
        if cell["batch_norm"]:
            layers.append(nn.BatchNorm1d(fan_out))
        layers.append(nn.ReLU() if cell["activation"] == "relu" else nn.Sigmoid())
        if cell["dropout"]:
            layers.append(nn.Dropout(cell["dropout"]))
    layers.append(nn.Linear(sizes[-2], 10))
    gain = 2.0 if cell["activation"] == "relu" else 1.0  # He for ReLU, Xavier for sigmoid
    return nn.Sequential(*layers), lambda fan_in: (gain / fan_in) ** 0.5


def simple_conv():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(4320, 100), nn.ReLU(), nn.Linear(100, 10),
    ), lambda fan_in: 0.01


def deep_conv():
    def conv(c_in, c_out, pad):
        return [nn.Conv2d(c_in, c_out, 3, padding=pad), nn.ReLU()]
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        *conv(1, 16, 1), *conv(16, 16, 1), nn.MaxPool2d(2),
        *conv(16, 32, 1), *conv(32, 32, 2), nn.MaxPool2d(2),
        *conv(32, 64, 1), *conv(64, 64, 1), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(1024, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, 10), nn.Dropout(0.5),
    ), lambda fan_in: (2.0 / fan_in) ** 0.5


def build(cell):
    """The cell's model: weights normal(0, std(fan_in)), biases 0."""
    model, std = {"simple-conv": simple_conv, "deep-conv": deep_conv}.get(
        cell["net"], lambda: mlp(cell))()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.normal_(0.0, std(m.weight[0].numel()))
                m.bias.zero_()
    return model
