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
import pickle
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

# Pickles: the book's weight format, a dict of numpy arrays (written by hand here, without
# numpy, opcode by opcode as numpy's own pickles are; tests/python/make_pickles.py writes
# real ones).
def numpy_array(shape, data, code="f4", order="<", fortran=False, data_op=None):
    """The opcodes of one numpy array, protocol 3: _reconstruct, then BUILD of its state."""
    out = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01("
    out += b"".join(b"J" + struct.pack("<i", d) for d in shape)
    out += b"tcnumpy\ndtype\nX" + struct.pack("<I", len(code)) + code.encode()
    out += b"\x89\x88\x87R(K\x03X\x01\x00\x00\x00" + order.encode() + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x88" if fortran else b"\x89"
    out += data_op if data_op is not None else b"B" + struct.pack("<I", len(data)) + data
    return out + b"tb"


def pickled(arrays, protocol=3):
    """{name: array opcodes} as a pickled dict."""
    body = b"".join(b"X" + struct.pack("<I", len(n)) + n.encode() + a for n, a in arrays)
    return bytes([0x80, protocol]) + b"}(" + body + b"u."


def f32s(values):
    return b"".join(struct.pack("<f", v) for v in values)


class RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo this pickle ran a command",))


w1 = numpy_array([2, 3], f32s([0.5, -0.25, 1, 2, 3, 4]))
write("pickle/good.pkl", pickled([(n, numpy_array(shape, f32s(v))) for n, shape, v in good]))
write("pickle/runs-a-command.pkl", pickle.dumps({"W1": RunsACommand()}, protocol=4))
write("pickle/protocol-1.pkl", pickle.dumps({"W1": [1.0]}, protocol=1))
write("pickle/not-a-dict.pkl", pickle.dumps([1.0, 2.0], protocol=2))
write("pickle/list-value.pkl", pickle.dumps({"W1": [1.0, 2.0]}, protocol=3))
# One array's state stored in the memo (BINPUT 1) and built again under 200 names.
empty_array = numpy_array([1], b"").split(b"R(K", 1)[0] + b"R"
state = numpy_array([4096], f32s([0.5] * 4096)).split(b"R(K", 1)[1][:-1]  # without its BUILD
rebuilt = b"X\x02\x00\x00\x00W0" + empty_array + b"(K" + state + b"q\x01b"
rebuilt += b"".join(b"X" + struct.pack("<I", len(f"W{k}")) + f"W{k}".encode() + empty_array + b"h\x01b" for k in range(1, 200))
write("pickle/rebuilt-array.pkl", bytes([0x80, 3]) + b"}(" + rebuilt + b"u.")
# One array stored once (BINPUT 1) and named 300 times: each name is a copy.
shared = b"X\x02\x00\x00\x00W0" + numpy_array([16384], f32s([0.25] * 16384)) + b"q\x01"
shared += b"".join(b"X" + struct.pack("<I", len(f"W{k}")) + f"W{k}".encode() + b"h\x01" for k in range(1, 300))
write("pickle/shared-array.pkl", bytes([0x80, 3]) + b"}(" + shared + b"u.")
write("pickle/many-dims.pkl", pickled([("W1", numpy_array([1] * 65, f32s([1.0])))]))
write("pickle/deep-tuples.pkl", b"\x80\x02}(X\x02\x00\x00\x00W1N" + b"\x85" * 1_000 + b"u.")
whole = pickled([("W1", w1)])
write("pickle/truncated.pkl", whole[: len(whole) // 2])
write("pickle/huge-bytes.pkl", pickled([("W1", numpy_array([2, 3], b"", data_op=b"\x8e" + struct.pack("<Q", 2**60)))], protocol=4))
write("pickle/wrong-dtype.pkl", pickled([("W1", numpy_array([2], struct.pack("<qq", 1, 2), code="i8"))]))
write("pickle/short-data.pkl", pickled([("W1", numpy_array([1000, 1000], f32s([1.0, 2.0])))]))
write("pickle/unset-memo.pkl", bytes([0x80, 3]) + b"}(X\x02\x00\x00\x00W1h\x07u.")
write("pickle/out-of-band.pkl", bytes([0x80, 5]) + b"}(X\x02\x00\x00\x00W1\x97u.")

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
