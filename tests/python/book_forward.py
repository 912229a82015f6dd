"""The inference pass of the book's layers (common/layers.py of Deep Learning from Scratch),
written again in numpy for pickle_interop.py: Affine, ReLU, Sigmoid, Convolution by im2col,
max Pooling, and Dropout in its inference form (x * (1 - ratio)), assembled from a params
dict as the book's nets assemble theirs (W1, b1, W2, b2, ...)."""
import lzma

import numpy as np


def mnist_test():
    def read(name, offset):
        with lzma.open(f"data/mnist/{name}") as f:
            return np.frombuffer(f.read()[offset:], dtype=np.uint8)

    x = read("t10k-images-idx3-ubyte.xz", 16).reshape(-1, 1, 28, 28).astype(np.float64) / 255.0
    return x, read("t10k-labels-idx1-ubyte.xz", 8)


def im2col(x, fh, fw, stride, pad):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((n, c, fh, fw, oh, ow))
    for y in range(fh):
        for xx in range(fw):
            col[:, :, y, xx, :, :] = img[:, :, y : y + stride * oh : stride, xx : xx + stride * ow : stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1), oh, ow


class Affine:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, x):
        return x.reshape(x.shape[0], -1) @ self.w + self.b


class Relu:
    def forward(self, x):
        return np.maximum(x, 0)


class Sigmoid:
    def forward(self, x):
        return 1 / (1 + np.exp(-x))


class Convolution:
    def __init__(self, w, b, stride=1, pad=0):
        self.w, self.b, self.stride, self.pad = w, b, stride, pad

    def forward(self, x):
        fn, _, fh, fw = self.w.shape
        col, oh, ow = im2col(x, fh, fw, self.stride, self.pad)
        out = col @ self.w.reshape(fn, -1).T + self.b
        return out.reshape(x.shape[0], oh, ow, -1).transpose(0, 3, 1, 2)


class Pooling:
    def forward(self, x):
        n, c, h, w = x.shape
        col, oh, ow = im2col(x, 2, 2, 2, 0)
        return np.max(col.reshape(-1, 4), axis=1).reshape(n, oh, ow, c).transpose(0, 3, 1, 2)


class Dropout:
    def __init__(self, ratio):
        self.ratio = ratio

    def forward(self, x):
        return x * (1.0 - self.ratio)


class Net:
    def __init__(self, layers):
        self.layers = layers

    def predict(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x


def mlp(params, activation):
    k = len([n for n in params if n.startswith("W")])
    layers = []
    for i in range(1, k + 1):
        layers.append(Affine(params[f"W{i}"], params[f"b{i}"]))
        if i < k:
            layers.append(activation())
    return Net(layers)


def simple_conv(p):
    return Net([Convolution(p["W1"], p["b1"]), Relu(), Pooling(), Affine(p["W2"], p["b2"]), Relu(), Affine(p["W3"], p["b3"])])


def deep_conv(p):
    layers = []
    for i, pad in zip(range(1, 7), [1, 1, 1, 2, 1, 1]):
        layers += [Convolution(p[f"W{i}"], p[f"b{i}"], 1, pad), Relu()]
        if i % 2 == 0:
            layers.append(Pooling())
    layers += [Affine(p["W7"], p["b7"]), Relu(), Dropout(0.5), Affine(p["W8"], p["b8"]), Dropout(0.5)]
    return Net(layers)


NETS = {
    "mlp-relu": lambda p: mlp(p, Relu),
    "mlp-sigmoid": lambda p: mlp(p, Sigmoid),
    "simple-conv": simple_conv,
    "deep-conv": deep_conv,
}
