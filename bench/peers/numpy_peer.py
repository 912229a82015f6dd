#!/usr/bin/env python3
"""numpy peer of bench/grid.json: layer classes in the style of "Deep Learning from Scratch"
(forward/backward per layer; Affine by np.dot, im2col convolution, im2col/argmax max-pooling),
hand-written SGD / Momentum / Adam, float32.

Usage: numpy_peer.py --grid bench/grid.json --cell ID [--reps R] [--threads T] --data-dir DIR
Prints one JSON line per repetition. The BLAS threads are limited before numpy is imported.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402

args, cell = pc.parse_args(__doc__.splitlines()[0])  # sets OPENBLAS_NUM_THREADS & co.

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

F32 = np.float32
np.seterr(over="ignore")  # exp overflow in Sigmoid saturates to 0 / 1, as intended


# ----------------------------------------------------------------------------- layers
class Layer:
    params, grads = [], []


class Affine(Layer):
    def __init__(self, W, need_dx=True):
        self.params = [W, np.zeros(W.shape[1], F32)]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.need_dx = need_dx  # the first layer's input gradient (the images') is not needed

    def forward(self, x, train):
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.dot(self.x, self.params[0]) + self.params[1]

    def backward(self, dout):
        np.dot(self.x.T, dout, out=self.grads[0])
        self.grads[1][...] = dout.sum(axis=0)
        return np.dot(dout, self.params[0].T).reshape(self.x_shape) if self.need_dx else None


class Relu(Layer):
    def forward(self, x, train):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout = dout.copy()
        dout[self.mask] = 0
        return dout


class Sigmoid(Layer):
    def forward(self, x, train):
        self.out = F32(1) / (F32(1) + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * (F32(1) - self.out) * self.out


class BatchNorm(Layer):
    """Batch statistics in training (running averages kept, momentum 0.9); running ones in eval."""

    def __init__(self, n, momentum=0.9, eps=1e-5):
        self.params = [np.ones(n, F32), np.zeros(n, F32)]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.momentum, self.eps = F32(momentum), F32(eps)
        self.running_mean, self.running_var = np.zeros(n, F32), np.ones(n, F32)

    def forward(self, x, train):
        gamma, beta = self.params
        if not train:
            return gamma * (x - self.running_mean) / np.sqrt(self.running_var + self.eps) + beta
        mu = x.mean(axis=0)
        self.xc = x - mu
        var = np.mean(self.xc ** 2, axis=0)
        self.std = np.sqrt(var + self.eps)
        self.xn = self.xc / self.std
        self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
        self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        return gamma * self.xn + beta

    def backward(self, dout):
        n = F32(dout.shape[0])
        self.grads[1][...] = dout.sum(axis=0)
        self.grads[0][...] = np.sum(self.xn * dout, axis=0)
        dxn = self.params[0] * dout
        dxc = dxn / self.std
        dstd = -np.sum(dxn * self.xc / (self.std * self.std), axis=0)
        dvar = F32(0.5) * dstd / self.std
        dxc += (F32(2) / n) * self.xc * dvar
        return dxc - np.sum(dxc, axis=0) / n


class Dropout(Layer):
    """The book's dropout: train keeps units where uniform > ratio; eval scales by 1 - ratio."""

    def __init__(self, ratio, rng):
        self.ratio, self.rng = ratio, rng

    def forward(self, x, train):
        if not train:
            return x * F32(1 - self.ratio)
        self.mask = self.rng.random(x.shape, dtype=F32) > self.ratio
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


def im2col(img, fh, fw, stride=1, pad=0):
    n, c, h, w = img.shape
    oh = (h + 2 * pad - fh) // stride + 1
    ow = (w + 2 * pad - fw) // stride + 1
    if pad:
        img = np.pad(img, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.empty((n, c, fh, fw, oh, ow), dtype=img.dtype)
    for dy in range(fh):
        ys = slice(dy, dy + stride * oh, stride)
        for dx in range(fw):
            col[:, :, dy, dx, :, :] = img[:, :, ys, slice(dx, dx + stride * ow, stride)]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def col2im(col, shape, fh, fw, stride=1, pad=0):
    n, c, h, w = shape
    oh = (h + 2 * pad - fh) // stride + 1
    ow = (w + 2 * pad - fw) // stride + 1
    col = col.reshape(n, oh, ow, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), dtype=col.dtype)
    for dy in range(fh):
        ys = slice(dy, dy + stride * oh, stride)
        for dx in range(fw):
            img[:, :, ys, slice(dx, dx + stride * ow, stride)] += col[:, :, dy, dx, :, :]
    return img[:, :, pad:h + pad, pad:w + pad]


class Conv(Layer):
    def __init__(self, W, pad=0, need_dx=True):
        self.params = [W, np.zeros(W.shape[0], F32)]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.pad, self.need_dx = pad, need_dx

    def forward(self, x, train):
        W, b = self.params
        fn, _, fh, fw = W.shape
        n, _, h, w = x.shape
        oh, ow = h + 2 * self.pad - fh + 1, w + 2 * self.pad - fw + 1
        self.col = im2col(x, fh, fw, 1, self.pad)
        self.col_W = W.reshape(fn, -1).T
        self.x_shape = x.shape
        return (np.dot(self.col, self.col_W) + b).reshape(n, oh, ow, fn).transpose(0, 3, 1, 2)

    def backward(self, dout):
        W = self.params[0]
        fn, _, fh, fw = W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
        self.grads[1][...] = dout.sum(axis=0)
        self.grads[0][...] = np.dot(self.col.T, dout).T.reshape(W.shape)
        if not self.need_dx:
            return None
        return col2im(np.dot(dout, self.col_W.T), self.x_shape, fh, fw, 1, self.pad)


class MaxPool(Layer):
    """2x2 max-pooling, stride 2, by im2col and argmax."""

    def forward(self, x, train):
        n, c, h, w = x.shape
        col = im2col(x, 2, 2, 2).reshape(-1, 4)
        self.arg = col.argmax(axis=1)
        self.x_shape = x.shape
        return col.max(axis=1).reshape(n, h // 2, w // 2, c).transpose(0, 3, 1, 2)

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)
        dmax = np.zeros((dout.size, 4), dtype=dout.dtype)
        dmax[np.arange(self.arg.size), self.arg] = dout.ravel()
        return col2im(dmax.reshape(-1, 4 * self.x_shape[1]), self.x_shape, 2, 2, 2)


class SoftmaxCrossEntropy:
    """Softmax then mean cross-entropy; labels are class indices."""

    def forward(self, x, t):
        x = x - x.max(axis=1, keepdims=True)
        e = np.exp(x)
        self.y, self.t = e / e.sum(axis=1, keepdims=True), t
        return float(-np.log(self.y[np.arange(x.shape[0]), t] + F32(1e-7)).mean())

    def backward(self):
        dx = self.y.copy()
        dx[np.arange(self.t.shape[0]), self.t] -= 1
        return dx / F32(self.t.shape[0])


class Net:
    def __init__(self, layers, image_input):
        self.layers, self.image_input = layers, image_input
        self.last = SoftmaxCrossEntropy()

    def predict(self, x, train):
        if self.image_input:
            x = x.reshape(-1, 1, 28, 28)
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def gradient(self, x, t):
        loss = self.last.forward(self.predict(x, True), t)
        dout = self.last.backward()
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return loss

    def params_and_grads(self):
        return [pg for layer in self.layers for pg in zip(layer.params, layer.grads)]


# ----------------------------------------------------------------------------- optimizers
class SGD:
    def __init__(self, lr):
        self.lr = F32(lr)

    def update(self, net):
        for p, g in net.params_and_grads():
            p -= self.lr * g


class Momentum:
    """The book's momentum: v = momentum * v - lr * g; p += v."""

    def __init__(self, lr, momentum):
        self.lr, self.momentum, self.v = F32(lr), F32(momentum), None

    def update(self, net):
        pg = net.params_and_grads()
        if self.v is None:
            self.v = [np.zeros_like(p) for p, _ in pg]
        for (p, g), v in zip(pg, self.v):
            v *= self.momentum
            v -= self.lr * g
            p += v


class Adam:
    """Standard Adam with bias correction, eps added to sqrt(v_hat) (as torch.optim.Adam)."""

    def __init__(self, lr, betas, eps):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t, self.m, self.v = 0, None, None

    def update(self, net):
        pg = net.params_and_grads()
        if self.m is None:
            self.m = [np.zeros_like(p) for p, _ in pg]
            self.v = [np.zeros_like(p) for p, _ in pg]
        self.t += 1
        step = F32(self.lr / (1.0 - self.b1 ** self.t))
        c2 = F32(1.0 - self.b2 ** self.t)
        for (p, g), m, v in zip(pg, self.m, self.v):
            m *= F32(self.b1)
            m += F32(1 - self.b1) * g
            v *= F32(self.b2)
            v += F32(1 - self.b2) * (g * g)
            p -= step * m / (np.sqrt(v / c2) + F32(self.eps))


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


# ----------------------------------------------------------------------------- nets
def normal(rng, shape, std):
    return (std * rng.standard_normal(shape)).astype(F32)


def mlp(cell, rng):
    """Affine -> [BatchNorm] -> ReLU|Sigmoid -> [Dropout] per hidden layer, then Affine."""
    sizes = [784] + pc.hidden_sizes(cell) + [10]
    relu = cell["activation"] == "relu"
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        std = np.sqrt((2.0 if relu else 1.0) / fan_in)  # He for ReLU, Xavier for sigmoid
        layers.append(Affine(normal(rng, (fan_in, fan_out), std), need_dx=i > 0))
        if i == len(sizes) - 2:
            break
        if cell["batch_norm"]:
            layers.append(BatchNorm(fan_out))
        layers.append(Relu() if relu else Sigmoid())
        if cell["dropout"]:
            layers.append(Dropout(cell["dropout"], rng))
    return Net(layers, image_input=False)


def simple_conv(rng):
    """Conv 30x5x5 -> ReLU -> MaxPool 2 -> Affine 4320-100 -> ReLU -> Affine 100-10, W = 0.01 randn."""
    return Net([Conv(normal(rng, (30, 1, 5, 5), 0.01), need_dx=False), Relu(), MaxPool(),
                Affine(normal(rng, (4320, 100), 0.01)), Relu(),
                Affine(normal(rng, (100, 10), 0.01))], image_input=True)


def deep_conv(rng):
    """The book's DeepConvNet, He init, dropout 0.5."""
    layers, c_in = [], 1
    for c_out, pad, pool in [(16, 1, False), (16, 1, True), (32, 1, False), (32, 2, True),
                             (64, 1, False), (64, 1, True)]:
        W = normal(rng, (c_out, c_in, 3, 3), np.sqrt(2.0 / (c_in * 9)))
        layers += [Conv(W, pad=pad, need_dx=c_in > 1), Relu()] + ([MaxPool()] if pool else [])
        c_in = c_out
    layers += [Affine(normal(rng, (1024, 50), np.sqrt(2.0 / 1024))), Relu(), Dropout(0.5, rng),
               Affine(normal(rng, (50, 10), np.sqrt(2.0 / 50))), Dropout(0.5, rng)]
    return Net(layers, image_input=True)


def build(cell, rng):
    return {"simple-conv": simple_conv, "deep-conv": deep_conv}.get(
        cell["net"], lambda r: mlp(cell, r))(rng)


# ----------------------------------------------------------------------------- cells
def train(cell, data, rng):
    x, t = data
    net = build(cell, rng)
    opt = OPTIMIZERS[cell["optimizer"]](**pc.OPTIMIZERS[cell["optimizer"]])
    losses = []
    for i in range(cell["warmup"] + cell["iters"]):
        if i == cell["warmup"]:
            t0 = time.perf_counter()
        idx = rng.integers(0, x.shape[0], size=cell["batch"])  # with replacement
        losses.append(net.gradient(x[idx], t[idx]))
        opt.update(net)
    wall = time.perf_counter() - t0
    return dict(ms_per_step=1000.0 * wall / cell["iters"], loss_first=losses[cell["warmup"]],
                loss_last=losses[-1])


def evaluate(cell, data, rng):
    """One untimed pass (as backprop warms up too), then the timed one."""
    x, t = data
    net = build(cell, rng)

    def correct():
        return sum(int((net.predict(x[s:s + pc.EVAL_BLOCK], False).argmax(axis=1)
                        == t[s:s + pc.EVAL_BLOCK]).sum()) for s in range(0, len(t), pc.EVAL_BLOCK))

    return pc.timed_pass(correct, len(t))


def main():
    with threadpool_limits(limits=args.threads):
        kernel = [{k: d.get(k) for k in ("internal_api", "architecture", "version", "num_threads")}
                  for d in threadpool_info()]
        train_cell = cell["mode"] == "train"
        data = pc.load_split(np, args.data_dir, "train" if train_cell else "test")
        for rep in range(args.reps):
            rng = np.random.default_rng(rep)
            result = (train if train_cell else evaluate)(cell, data, rng)
            pc.emit("numpy", cell, rep, args.threads, kernel, numpy=np.__version__, **result)


if __name__ == "__main__":
    main()
