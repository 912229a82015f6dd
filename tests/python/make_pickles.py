#!/usr/bin/env python3
"""Writes pickles of dicts of numpy arrays as the book's weight files are, with Python's own
pickle and numpy, in every protocol 2-5, float32 and float64, little- and big-endian, C and
Fortran order, dict and OrderedDict. Each holds the weights of a 6-4-3 MLP whose values
(multiples of 1/8) are exact in float32 (`expected()`), so a reader's result can be compared
bit for bit.

    make_pickles.py OUT_DIR     writes OUT_DIR/p{2..5}-{f4,f8}-{C,F}-{le,be}-{dict,ordered}.pkl
"""
import collections
import itertools
import os
import pickle
import sys

import numpy as np


def expected():
    """The arrays every fixture holds, as float64."""
    return {
        "W1": (np.arange(24, dtype=np.float64).reshape(6, 4) - 12) / 8,
        "b1": np.arange(4, dtype=np.float64) / 4,
        "W2": (np.arange(12, dtype=np.float64).reshape(4, 3) - 5) / 8,
        "b2": np.array([-0.5, 0.0, 0.5]),
    }


def variants():
    for protocol, dtype, order, endian, container in itertools.product(
        [2, 3, 4, 5], ["f4", "f8"], ["C", "F"], ["le", "be"], ["dict", "ordered"]
    ):
        yield f"p{protocol}-{dtype}-{order}-{endian}-{container}", protocol, dtype, order, endian, container


def build(dtype, order, endian, container):
    kind = np.dtype(("<" if endian == "le" else ">") + dtype)
    arrays = [(n, np.asarray(a, dtype=kind, order=order)) for n, a in expected().items()]
    return collections.OrderedDict(arrays) if container == "ordered" else dict(arrays)


def main(out):
    os.makedirs(out, exist_ok=True)
    for name, protocol, dtype, order, endian, container in variants():
        with open(os.path.join(out, name + ".pkl"), "wb") as f:
            pickle.dump(build(dtype, order, endian, container), f, protocol=protocol)
    print(f"{len(list(variants()))} pickles in {out} (numpy {np.__version__})")


if __name__ == "__main__":
    main(sys.argv[1])
