#!/usr/bin/env python3
"""Writes the malformed-input corpus of tests/robustness.rs (standard library only).

Each file is one way a file from outside can be wrong; tests/robustness.rs runs every command
that reads such a file against it and pins the exact one-line error. Run from this folder:
`python3 make_corpus.py`. The output is deterministic, so re-running changes nothing.
"""
import gzip
import json
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, data):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def idx(dims, payload, dtype=0x08):
    head = bytes([0, 0, dtype, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + payload


def gz(data):
    return gzip.compress(data, mtime=0)


def safetensors(tensors, metadata=None, dtype_of=None):
    """tensors: [(name, shape, values)] as F32 unless dtype_of[name] says otherwise."""
    header, blobs, offset = {}, [], 0
    for name, shape, values in tensors:
        dtype = (dtype_of or {}).get(name, "F32")
        fmt = {"F32": "<f", "F64": "<d", "I32": "<i"}[dtype]
        blob = b"".join(struct.pack(fmt, v) for v in values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def mlp(sizes, scale=0.01):
    """Deterministic small weights W1 b1 … of an MLP with the book's (in, out) layout."""
    out = []
    for k, (i, o) in enumerate(zip(sizes, sizes[1:]), start=1):
        out.append((f"W{k}", [i, o], [scale * math.sin(1 + j) for j in range(i * o)]))
        out.append((f"b{k}", [o], [0.0] * o))
    return out


def meta(net):
    return {"format": "backprop", "model": "mlp", "net": net, "activation": "relu",
            "normalisation": "pixel/255", "input_shape": "28x28",
            "classes": json.dumps([str(c) for c in range(10)])}


def png(width, height, rows=None):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes(r) for r in rows) if rows is not None else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


# IDX files (tried in place of the training images of a data folder).
image_payload = bytes((i * 7) % 256 for i in range(3 * 28 * 28))
good_idx = idx([3, 28, 28], image_payload)
write("idx/empty", b"")
write("idx/bad-magic", b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
write("idx/wrong-dtype", idx([3, 28, 28], image_payload, dtype=0x0D))
write("idx/truncated-header", bytes([0, 0, 8, 3, 0, 0, 0, 3, 0, 0]))
write("idx/truncated", good_idx[: len(good_idx) // 2])
write("idx/trailing-bytes", good_idx + b"\x00" * 5)
write("idx/lying-header", idx([0xFFFFFFFF, 0xFFFFFFFF, 28], image_payload))
write("idx/lying-header.gz", gz(idx([60000, 28, 28], image_payload)))
corrupt = bytearray(gz(good_idx))
corrupt[len(corrupt) // 2] ^= 0xFF
write("idx/corrupt.gz", bytes(corrupt[:-4]))
write("idx/small-images", idx([3, 20, 20], image_payload[: 3 * 400]))

# Model files.
good = mlp([784, 2, 10])
write("model/good.safetensors", safetensors(good, meta("784-2-10")))
model = safetensors(good, meta("784-2-10"))
write("model/empty.safetensors", b"")
write("model/text.safetensors", b"W1,b1,W2,b2\n0.1,0.2,0.3\n")
write("model/truncated.safetensors", model[: len(model) // 2])
write("model/lying-header.safetensors", struct.pack("<Q", 10**12) + model[8:])
write("model/wrong-dtype.safetensors",
      safetensors([(n, s, [int(1000 * v) for v in vals]) for n, s, vals in good], meta("784-2-10"),
                  dtype_of={"W1": "I32", "b1": "I32", "W2": "I32", "b2": "I32"}))
write("model/transposed.safetensors",
      safetensors([("W1", [2, 784], good[0][2])] + good[1:], meta("784-2-10")))
write("model/missing-tensor.safetensors", safetensors(good[:3], meta("784-2-10")))
nan = [(n, s, [float("nan")] + v[1:] if n == "W2" else v) for n, s, v in good]
write("model/nan-weights.safetensors", safetensors(nan, meta("784-2-10")))
write("model/huge-net.safetensors", safetensors(good, meta("784-100000000-10")))
write("model/bad-spec.safetensors", safetensors(good, meta("784-two-10")))
arch = dict(meta("784-2-10"), architecture=json.dumps({"model": "transformer", "layers": 96}))
write("model/unknown-architecture.safetensors", safetensors(good, arch))
write("model/wrong-inputs.safetensors", safetensors(mlp([100, 2, 10]), dict(meta("100-2-10"), input_shape="10x10")))

# Pictures for `predict`.
write("image/empty.png", b"")
write("image/text.png", b"this is a text file, not a picture\n")
digit = [[255 if 8 <= x < 12 and 4 <= y < 16 else 0 for x in range(20)] for y in range(20)]
full = png(20, 20, digit)
write("image/digit.png", full)
write("image/truncated.png", full[:40])
write("image/huge.png", png(100_000, 100_000))
write("image/blank.png", png(8, 8, [[128] * 8 for _ in range(8)]))

# A JPEG needs an encoder: Pillow's, when it is installed (digit.jpg is checked in).
try:
    import io
    from PIL import Image

    picture = Image.new("L", (20, 20), 255)
    for y in range(4, 16):
        for x in range(8, 12):
            picture.putpixel((x, y), 0)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    write("image/digit.jpg", buffer.getvalue())
    write("image/truncated.jpg", buffer.getvalue()[:200])
except ImportError:
    pass
