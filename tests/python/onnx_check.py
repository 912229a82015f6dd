"""backprop's ONNX export, checked by the onnx package and run by onnxruntime.

    onnx_check.py BACKPROP SCRATCH NAME=MODEL…

For each model file: `backprop export --onnx` writes the graph, `onnx.checker` (full check,
shapes inferred) accepts it, and onnxruntime, fed the 10,000 MNIST test images as raw 0–255
pixels, gives logits within 1e-4 of `backprop eval --logits` and the same top class as
`backprop eval` on every image (an image whose two best scores are closer than twice the
largest logit difference measured, which rounding alone may swap, is counted and said).
"""

import json
import lzma
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
from safetensors.numpy import load_file

backprop, scratch, models = sys.argv[1], sys.argv[2], [a.split("=", 1) for a in sys.argv[3:]]

with lzma.open("data/mnist/t10k-images-idx3-ubyte.xz") as f:
    pixels = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 1, 28, 28).astype(np.float32)

for name, model in models:
    out = f"{scratch}/{name}.onnx"
    subprocess.run([backprop, "export", "--onnx", out, "--model", model], check=True, capture_output=True)
    graph = onnx.load(out)
    onnx.checker.check_model(graph, full_check=True)
    assert graph.opset_import[0].version >= 13

    scores = f"{scratch}/{name}-logits.safetensors"
    ran = subprocess.run(
        [backprop, "eval", "--model", model, "--json", "--logits", scores],
        check=True, capture_output=True, text=True,
    )
    accuracy = json.loads(ran.stdout)["accuracy"]
    expected = load_file(scores)["logits"]

    session = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    x = pixels if len(feed.shape) == 4 else pixels.reshape(len(pixels), -1)
    logits, probabilities = session.run(["logits", "probabilities"], {feed.name: x})

    assert logits.shape == expected.shape, (logits.shape, expected.shape)
    worst = float(np.abs(logits - expected).max())
    assert worst <= 1e-4, f"{name}: logits differ by {worst}"
    best_two = np.sort(expected, axis=1)[:, -2:]
    clear = best_two[:, 1] - best_two[:, 0] > 2 * worst
    differ = logits.argmax(1) != expected.argmax(1)
    assert not (differ & clear).any(), f"{name}: {int((differ & clear).sum())} images get another top class"
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-5)
    labels = load_file(scores)["labels"].astype(np.int64)
    onnx_accuracy = float((logits.argmax(1) == labels).mean())
    if not differ.any():
        assert abs(onnx_accuracy - accuracy) < 1e-12, (onnx_accuracy, accuracy)
    ops = sorted({n.op_type for n in graph.graph.node})
    ties = f", {int(differ.sum())} near-ties swapped" if differ.any() else ""
    print(f"{name}: onnx checker ok; onnxruntime on 10000 test images: same top class{ties}, "
          f"accuracy {onnx_accuracy:.4f}, logits within {worst:.1e} ({', '.join(ops)})")
