"""The paper's ablations: runs that each differ from the default recipe in one choice.

| variant | the one change | the paper (Sec. 3.3, 3.4, 4.1, 4.2) |
|---|---|---|
| `no_lrn` | `--lrn none` | top-1 / top-5 error +1.4 / +1.2 points |
| `no_overlap` | `--pool_size 2` (2x2 stride 2) | +0.4 / +0.3 |
| `one_tower` | `--groups 1` | not run in the paper (see below) |
| `no_pca` | `--pca_std 0` | over +1 top-1 |
| `no_dropout` | `--dropout 0` | "substantial overfitting" |

`one_tower` keeps every kernel and only joins the towers' connections; the paper compared
its two-tower net with a one-tower net of half the kernels (1.7 / 1.2 points better).

Every run is an ordinary training run (`training.loop.train_and_evaluate`) in its own
folder `OUTPUT/runs/<variant>-seed<k>`: running the command again skips the finished runs
and resumes the others from their last checkpoint, and a run that fails is reported and
left for the next attempt while the others go on. Each variant runs with `seeds` seeds
(the data order, augmentation, initialisation and dropout all follow the seed), so every
delta is shown beside the spread between runs that differ in the seed alone.
"""

import dataclasses
import json
import logging
import math
import os

import numpy as np

from alexnet_tf.errors import TrainingStopped, UserError
from alexnet_tf.experiments import record
from alexnet_tf.training import loop
from alexnet_tf.training.run_folder import HISTORY_FILE

log = logging.getLogger(__name__)

# name -> (the one change to ModelConfig / DataConfig, the paper's top-1 / top-5 delta)
VARIANTS = {
    "default": ({}, (0.0, 0.0)),
    "no_lrn": ({"lrn": None}, (1.4, 1.2)),
    "no_overlap": ({"pool_size": 2}, (0.4, 0.3)),
    "one_tower": ({"groups": 1}, (None, None)),
    "no_pca": ({"pca_std": 0.0}, (1.0, None)),
    "no_dropout": ({"dropout": 0.0}, ("overfits", "overfits")),
}
FLAGS_OF = {
    "default": "",
    "no_lrn": "--lrn none",
    "no_overlap": "--pool_size 2",
    "one_tower": "--groups 1",
    "no_pca": "--pca_std 0",
    "no_dropout": "--dropout 0",
}
FIGURE_INCHES = (10, 4.5)


def variant_config(base, name, seed, runs_dir):
    """`base` (a `Config`) with variant `name`'s one change, seed `seed`, its own folder."""
    change, _ = VARIANTS[name]
    model = {
        k: v for k, v in change.items() if k in {f.name for f in dataclasses.fields(base.model)}
    }
    data = {k: v for k, v in change.items() if k not in model}
    return dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, seed=seed, **data),
        model=dataclasses.replace(base.model, **model),
        train=dataclasses.replace(
            base.train, model_dir=os.path.join(runs_dir, f"{name}-seed{seed}")
        ),
    )


def run(base, out, *, variants, seeds):
    """Trains (or resumes, or skips) every variant x seed of `seeds` (a list of seeds);
    writes figure, JSON, events."""
    runs_dir = os.path.join(out.folder, "runs")
    results, failed = {}, []
    for name in variants:
        for seed in seeds:
            cfg = variant_config(base, name, seed, runs_dir)
            log.info("ablation %s, seed %d: %s", name, seed, cfg.train.model_dir)
            try:
                loop.train_and_evaluate(cfg)
            except TrainingStopped as err:
                if err.exit_code in (130, 143):  # the user stopped it: stop everything
                    raise
                failed.append({"run": cfg.train.model_dir, "error": str(err)})
                log.warning("%s stopped: %s (the other runs go on)", cfg.train.model_dir, err)
                continue
            except Exception as err:  # noqa: BLE001  one failed run must not lose the others
                message = str(err) if isinstance(err, UserError) else repr(err)
                failed.append({"run": cfg.train.model_dir, "error": message})
                log.warning("%s failed: %s (the other runs go on)", cfg.train.model_dir, message)
                continue
            results.setdefault(name, []).append(run_figures(cfg.train.model_dir))
    if failed and not results:  # e.g. a mistake in the data: every run repeats it
        raise UserError(f"every ablation run failed; the first: {failed[0]['error']}")
    summary = summarise(results)
    for name, s in summary.items():
        out.scalars(name, 0, {k: s[k] for k in ("top1_error", "top5_error", "gap")})
    out.flush()
    result = {"variants": summary, "failed": failed, "seeds": seeds, "runs_dir": runs_dir}
    out.json(result)
    if "default" in summary:
        out.figure(figure(summary))
    return result


def run_figures(model_dir):
    """A finished run's last epoch: validation errors in points, training accuracy, losses."""
    with open(os.path.join(model_dir, HISTORY_FILE), encoding="utf-8") as f:
        history = json.load(f)
    last = history[-1]
    return {
        "top1_error": 100.0 * (1.0 - last["val_top1"]),
        "top5_error": 100.0 * (1.0 - last["val_top5"]),
        "train_top1_error": 100.0 * (1.0 - last["train_top1"]),
        "val_loss": last["val_loss"],
        "min_val_loss": min(e["val_loss"] for e in history),
        "train_loss": last["train_loss"],
        "epochs": last["epoch"],
    }


def _mean_std(values):
    values = np.asarray(values, np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else None
    return float(values.mean()), std


def summarise(results):
    """Per variant: mean and seed spread (sample std) of each figure; deltas to default."""
    summary = {}
    for name, runs in results.items():
        entry = {"seeds": len(runs), "paper_delta": VARIANTS[name][1], "flags": FLAGS_OF[name]}
        for key in ("top1_error", "top5_error", "train_top1_error", "val_loss", "min_val_loss"):
            entry[key], entry[f"{key}_std"] = _mean_std([r[key] for r in runs])
        # Overfitting shows as a gap between training and validation error.
        entry["gap"] = entry["top1_error"] - entry["train_top1_error"]
        summary[name] = entry
    base = summary.get("default")
    for entry in summary.values():
        for key in ("top1_error", "top5_error"):
            if base is None:
                entry[f"delta_{key}"] = entry[f"delta_{key}_spread"] = None
                continue
            entry[f"delta_{key}"] = entry[key] - base[key]
            entry[f"delta_{key}_spread"] = _spread(entry, base, key)
    return summary


def _spread(entry, base, key):
    """The standard error of a difference of two means over seeds: how far apart two
    variants' means fall by the seed alone. None with one seed (nothing to measure)."""
    a, b = entry[f"{key}_std"], base[f"{key}_std"]
    if a is None or b is None:
        return None
    return math.sqrt(a * a / entry["seeds"] + b * b / base["seeds"])


def table_rows(result):
    rows = []
    for name, s in result["variants"].items():
        paper1, paper5 = s["paper_delta"]
        rows.append(
            [
                name,
                _signed(paper1),
                _signed(paper5),
                f"{s['top1_error']:.1f}",
                _delta(s, "top1_error"),
                _delta(s, "top5_error"),
                f"{s['gap']:+.1f}",
                s["seeds"],
            ]
        )
    return rows


TABLE_HEADERS = [
    "variant",
    "paper d top-1",
    "paper d top-5",
    "top-1 err",
    "d top-1 (+-seed)",
    "d top-5 (+-seed)",
    "val-train",
    "seeds",
]


def _signed(value):
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:+.1f}"


def _delta(s, key):
    delta, spread = s[f"delta_{key}"], s[f"delta_{key}_spread"]
    if delta is None:
        return "-"
    return f"{delta:+.1f}" + (f" +-{spread:.1f}" if spread is not None else "")


def figure(summary):
    """Left: each variant's top-1 / top-5 error change against the default, with the seed
    spread as error bars and the paper's deltas as markers. Right: validation minus
    training top-1 error (the overfitting gap)."""
    names = [n for n in summary if n != "default"]
    fig = record.new_figure(*FIGURE_INCHES)
    ax = fig.add_subplot(1, 2, 1)
    x = np.arange(len(names))
    for offset, key, colour in (
        (-0.18, "top1_error", "tab:blue"),
        (0.18, "top5_error", "tab:orange"),
    ):
        deltas = [summary[n][f"delta_{key}"] for n in names]
        spreads = [summary[n][f"delta_{key}_spread"] or 0.0 for n in names]
        label = key.split("_")[0].replace("top", "top-")
        ax.bar(x + offset, deltas, 0.34, yerr=spreads, color=colour, label=f"here, {label}")
        paper = [summary[n]["paper_delta"][0 if key == "top1_error" else 1] for n in names]
        points = [(i + offset, p) for i, p in enumerate(paper) if isinstance(p, float)]
        if points:
            px, py = zip(*points, strict=True)
            ax.plot(px, py, "k_", markersize=14, markeredgewidth=2)
    ax.plot([], [], "k_", markersize=14, markeredgewidth=2, label="paper")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("error change vs default (points)")
    ax.set_title("Ablations: worse than the default is up")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    every = list(summary)
    gaps = [summary[n]["gap"] for n in every]
    ax.bar(np.arange(len(every)), gaps, 0.6, color="tab:grey")
    ax.set_xticks(np.arange(len(every)), every, rotation=20)
    ax.set_ylabel("val - train top-1 error (points)")
    ax.set_title("Overfitting gap")
    fig.tight_layout()
    return fig
