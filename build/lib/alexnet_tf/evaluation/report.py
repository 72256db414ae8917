"""The evaluation report: a table beside the published AlexNet figures, and the JSON file.

Published figures (top-1 / top-5 error, %); docs/MODEL.md ("Published results to compare
with") says where each comes from. "10-crop" is the paper's test protocol (Sec. 4.1:
4 corners and centre of the 256x256 image, and their mirrors, softmax averaged); "1 crop"
and "centre crop" score one crop per image. Only figures of the same protocol compare.
"""

import json
import math
import os

# (system, top-1 error %, top-5 error %, crops, protocol as published)
PUBLISHED = (
    ("paper, ILSVRC-2010 test", 37.5, 17.0, 10, "10-crop"),
    ("paper, ILSVRC-2012 val, 1 CNN", 40.7, 18.2, 10, "10-crop"),
    ("paper, ILSVRC-2010 test", 39.0, 18.3, 1, "1 crop"),
    ("Caffe bvlc_alexnet, 2012 val", 42.9, 19.8, 1, "centre crop"),
    ("torchvision alexnet, 2012 val", 43.5, 20.9, 1, "centre crop"),
)
IMAGENET_CLASSES = 1000
# An imported model's family (run.json "imported") -> the PUBLISHED row of its own weights.
FAMILY_ROWS = {"caffe": "Caffe bvlc_alexnet", "torchvision": "torchvision alexnet"}


def protocol(crops):
    return "10-crop" if crops == 10 else "centre crop"


def comparison_table(result, label="this model", family=None):
    """The result beside the published figures, as lines of text.

    `result` holds `top1`, `top5` (fractions), `count`, `crops` and `num_classes`. Rows of
    the same protocol are marked `<- same protocol`; the others are listed for reference.
    With `family` (an imported model's, "caffe" or "torchvision"), the published figure of
    those very weights is marked too.
    """
    top1, top5, crops = result["top1"], result["top5"], result["crops"]
    header = f"{'':32s} {'top-1 acc':>9s} {'top-5 acc':>9s} {'top-1 err':>9s} {'top-5 err':>9s}"
    lines = [header + "  protocol", "-" * (len(header) + 20)]
    ours = f"{label}, {result['count']} images"
    lines.append(
        f"{ours:32s} {top1:9.1%} {top5:9.1%} {1 - top1:9.1%} {1 - top5:9.1%}  {protocol(crops)}"
    )
    num_classes = result.get("num_classes")
    if num_classes:
        chance1, chance5 = 1 / num_classes, min(5, num_classes) / num_classes
        lines.append(
            f"{'chance':32s} {chance1:9.1%} {chance5:9.1%} {1 - chance1:9.1%} "
            f"{1 - chance5:9.1%}  ({num_classes} classes)"
        )
    for system, err1, err5, their_crops, their_protocol in PUBLISHED:
        mark = "  <- same protocol" if their_crops == crops else ""
        if family and system.startswith(FAMILY_ROWS.get(family, "?")):
            mark += "  <- these weights, as published"
        lines.append(
            f"{system:32s} {100 - err1:8.1f}% {100 - err5:8.1f}% {err1:8.1f}% {err5:8.1f}%  "
            f"{their_protocol}{mark}"
        )
    if num_classes and num_classes != IMAGENET_CLASSES:
        lines.append(
            f"(published figures are for ImageNet's {IMAGENET_CLASSES} classes; this data has "
            f"{num_classes}: compare with chance, not with them)"
        )
    return lines


def per_class(result, class_names, readable=None):
    """{class name: {"count", "top1", "name"?}} from `evaluation.score`'s per-class sums.

    `top1` is None for a class without images; `readable` (optional, same order as
    `class_names`) adds each class's readable name.
    """
    table = {}
    for index, name in enumerate(class_names):
        count = int(result["class_count"][index])
        hits = int(result["class_top1"][index])
        entry = {"count": count, "top1": hits / count if count else None}
        if readable is not None and readable[index] != name:
            entry["name"] = readable[index]
        table[name] = entry
    return table


def to_json(result, class_names, readable=None, **extra):
    """The JSON-ready report: top1, top5, count, crops (docs/EVALUATION.md) and more."""
    report = {
        "top1": float(result["top1"]),
        "top5": float(result["top5"]),
        "count": int(result["count"]),
        "crops": int(result["crops"]),
        "top1_error": 1.0 - float(result["top1"]),
        "top5_error": 1.0 - float(result["top5"]),
        "loss": float(result["loss"]),
        "protocol": protocol(result["crops"]),
        "num_classes": len(class_names),
        **extra,
        "published": [
            {
                "system": s,
                "top1_error": round(e1 / 100, 4),
                "top5_error": round(e5 / 100, 4),
                "protocol": p,
            }
            for s, e1, e5, _, p in PUBLISHED
        ],
        "per_class": per_class(result, class_names, readable),
    }
    return {k: _finite(v) for k, v in report.items()}


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_json(path, report):
    """Writes `report` to `path` atomically (a kill leaves the old file or the new one)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path
