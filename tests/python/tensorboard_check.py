"""TensorBoard's own reader on the event files of `backprop train --tensorboard`.

    tensorboard_check.py EVENTS_DIR RUN_DIR ITERS LR [WHOLE_EVENTS_DIR]

Reads EVENTS_DIR with tensorboard's EventAccumulator (which drops what a killed run wrote
after the step its resumption restarted at) and checks, exactly:
- `loss/batch` has one value per iteration 0..ITERS-1;
- `loss/mean`, `accuracy/train`, `accuracy/test` equal metrics.csv's loss, train_acc and
  test_acc (as float32) at its iterations; `learning_rate` is LR at each;
- every parameter of RUN_DIR/model.safetensors has `weights/NAME` and `gradients/NAME`
  histograms at each evaluation, the last weights' one counting, bounding and summing that
  model's tensor (the run must end on an evaluation);
- `filters/first_layer` is a PNG at each evaluation;
- with WHOLE_EVENTS_DIR (an uninterrupted run of the same settings): the same scalars.
"""

import csv
import sys

import numpy as np
from safetensors.numpy import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

events_dir, run_dir, iters, lr = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
whole_dir = sys.argv[5] if len(sys.argv) > 5 else None


def load(path):
    acc = EventAccumulator(path, size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    return acc


def series(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


acc = load(events_dir)
steps = [s for s, _ in series(acc, "loss/batch")]
assert steps == list(range(iters)), f"loss/batch steps {steps[:5]}…{steps[-5:]} ({len(steps)})"

with open(f"{run_dir}/metrics.csv") as f:
    rows = list(csv.DictReader(f))
evaluations = [int(r["iter"]) for r in rows]
for tag, column in [("loss/mean", "loss"), ("accuracy/train", "train_acc"), ("accuracy/test", "test_acc")]:
    expected = [(int(r["iter"]), float(np.float32(float(r[column])))) for r in rows]
    assert series(acc, tag) == expected, f"{tag}: {series(acc, tag)} != {expected}"
assert series(acc, "learning_rate") == [(i, float(np.float32(lr))) for i in evaluations]

model = load_file(f"{run_dir}/model.safetensors")
assert evaluations[-1] == iters - 1, "the run must end on an evaluation"
for name, tensor in model.items():
    for kind in ["weights", "gradients"]:
        histograms = acc.Histograms(f"{kind}/{name}")
        assert [h.step for h in histograms] == evaluations, f"{kind}/{name}"
        assert all(h.histogram_value.num == tensor.size for h in histograms), f"{kind}/{name}"
    last = acc.Histograms(f"weights/{name}")[-1].histogram_value
    values = tensor.astype(np.float64)
    assert (last.min, last.max) == (values.min(), values.max()), name
    assert abs(last.sum - values.sum()) <= 1e-9 * max(1.0, np.abs(values).sum()), name

images = acc.Images("filters/first_layer")
assert [i.step for i in images] == evaluations
assert all(i.encoded_image_string.startswith(b"\x89PNG\r\n\x1a\n") and i.width > 0 for i in images)

if whole_dir:
    whole = load(whole_dir)
    for tag in ["loss/batch", "loss/mean", "accuracy/train", "accuracy/test"]:
        assert series(acc, tag) == series(whole, tag), f"{tag} differs from the uninterrupted run"

print(
    f"tensorboard reads {events_dir}: {len(steps)} iterations, {len(evaluations)} evaluations, "
    f"{len(model)} parameters' histograms, filters as PNG"
    + (", the same scalars as the uninterrupted run" if whole_dir else "")
)
