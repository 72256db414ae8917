"""Figure 4: what the net predicts, and which training images it finds alike.

The paper: "(Left) Eight ILSVRC-2010 test images and the five labels considered most
probable by our model. ... (Right) Five ILSVRC-2010 test images in the first column. The
remaining columns show the six training images that produce feature vectors in the last
hidden layer with the smallest Euclidean distance from the feature vector for the test
image."

Here: validation images with their top-5 classes as bars (the true class's bar red, as in
the paper), and for other validation images the training images whose fc7 features (the
last hidden layer, 4,096 values after its ReLU) lie nearest. Every image goes through
evaluation's own pipeline (`data.pipeline.build_dataset` with the run's centre-crop
`eval_transform`, mean and scale), so the features are those evaluation sees. The search
is matrix products over chunks of the training features (`nearest`), never a loop over
pairs: a few seconds for tens of thousands of images.
"""

import dataclasses

import numpy as np
from PIL import Image

from alexnet_tf.data.layouts import folder_source
from alexnet_tf.data.pipeline import build_dataset
from alexnet_tf.errors import UserError
from alexnet_tf.experiments import record

FIGURE_INCHES = (14, 7)
THUMB = 64  # pixels of each thumbnail


def nearest(queries, pool, k, chunk=4096):
    """Indices into `pool` (N, D) of the `k` rows nearest each of `queries` (Q, D) in
    Euclidean distance, nearest first (ties: lower index first), and their squared
    distances: int64 (Q, k), float64 (Q, k).

    ||q - p||^2 = ||q||^2 - 2 q.p + ||p||^2 for a chunk of `pool` at a time (one matrix
    product), keeping the best `k` so far; memory is Q x (k + chunk).
    """
    queries = np.asarray(queries, np.float64)
    k = min(k, len(pool))
    q_sq = np.einsum("ij,ij->i", queries, queries)[:, None]  # (Q, 1)
    best_d = np.empty((len(queries), 0))
    best_i = np.empty((len(queries), 0), np.int64)
    for start in range(0, len(pool), chunk):
        part = np.asarray(pool[start : start + chunk], np.float64)  # (C, D)
        d = q_sq - 2.0 * queries @ part.T + np.einsum("ij,ij->i", part, part)[None, :]
        np.maximum(d, 0.0, out=d)  # rounding can make a zero distance slightly negative
        index = np.broadcast_to(np.arange(start, start + len(part)), d.shape)
        cand_d = np.concatenate([best_d, d], axis=1)
        cand_i = np.concatenate([best_i, index], axis=1)
        order = np.lexsort((cand_i, cand_d), axis=1)[:, :k]  # by distance, then index
        best_d = np.take_along_axis(cand_d, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    return best_i, best_d


def features(predictor, source, batch_size=64):
    """fc7 features and class probabilities of every image of `source` through the run's
    evaluation pipeline (centre crop): float32 (N, 4096), float64 (N, C)."""
    import keras
    import tensorflow as tf

    model = predictor.model
    try:
        fc7 = model.get_layer("fc7").output
    except ValueError:
        raise UserError("the model has no layer named fc7 (the last hidden layer)") from None
    both = keras.Model(model.inputs, [fc7, model.outputs[0]])
    data_cfg = dataclasses.replace(predictor.data_cfg, dataset="folder", data_dir=None)
    dataset = build_dataset(
        data_cfg, source, training=False, batch_size=batch_size, stats=predictor.stats
    )
    feats, probs = [], []
    for images, _ in dataset:
        f, logits = both(images, training=False)
        feats.append(np.asarray(f, np.float32))
        probs.append(tf.nn.softmax(tf.cast(logits, tf.float64)).numpy())
    feats, probs = np.concatenate(feats), np.concatenate(probs)
    if len(feats) != source.num_examples:
        raise UserError(
            f"{source.root}: {source.num_examples - len(feats)} images could not be decoded"
        )
    return feats, probs


def sample(source, count, seed):
    """`source` restricted to `count` files picked at random with `seed` (all if fewer)."""
    if count <= 0 or count >= source.num_examples:
        return source
    keep = np.zeros(source.num_examples, bool)
    keep[np.random.default_rng(seed).choice(source.num_examples, count, replace=False)] = True
    return source.subset(keep)


def run(
    predictor, data_dir, out, *, queries=4, neighbours=5, max_train=10_000, max_val=1000, seed=0
):
    train = sample(folder_source(data_dir, "train"), max_train, seed)
    val = sample(folder_source(data_dir, "val"), max_val, seed + 1)
    if train.class_names != val.class_names:
        raise UserError(f"--data_dir {data_dir}: train/ and val/ have different classes")
    if len(train.class_names) != predictor.model.output_shape[-1]:
        raise UserError(
            f"--data_dir {data_dir} has {len(train.class_names)} classes but the model "
            f"predicts {predictor.model.output_shape[-1]}"
        )
    train_feats, _ = features(predictor, train)
    val_feats, val_probs = features(predictor, val)
    found, _ = nearest(val_feats, train_feats, neighbours)  # (V, k)
    same = train.labels[found] == val.labels[:, None]
    top5 = np.argsort(-val_probs, axis=1, kind="stable")[:, :5]
    result = {
        "data_dir": data_dir,
        "train_images": train.num_examples,
        "val_images": val.num_examples,
        "neighbours": neighbours,
        "neighbour_same_class": float(same.mean()),
        "chance_same_class": float(np.mean(np.bincount(train.labels) / train.num_examples)),
        "val_top1": float(np.mean(top5[:, 0] == val.labels)),
        "val_top5": float(np.mean((top5 == val.labels[:, None]).any(axis=1))),
    }
    picks = np.random.default_rng(seed).permutation(val.num_examples)
    left, right = picks[:queries], picks[queries : 2 * queries]
    if len(right) == 0:
        right = left
    result["shown"] = {
        "left": [str(val.paths[i]) for i in left],
        "right": [
            {"query": str(val.paths[i]), "nearest": [str(train.paths[j]) for j in found[i]]}
            for i in right
        ],
    }
    out.json(result)
    out.scalars("neighbours", 0, {k: result[k] for k in ("neighbour_same_class", "val_top1")})
    names = predictor.readable or predictor.class_names
    out.figure(figure(val, val_probs, left, right, train, found, names))
    return result


def _thumb(path):
    """The image's centre square at THUMB x THUMB pixels, for display."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        side = min(image.size)
        x, y = (image.size[0] - side) // 2, (image.size[1] - side) // 2
        image = image.crop((x, y, x + side, y + side))
        return np.asarray(image.resize((THUMB, THUMB), Image.Resampling.BILINEAR))


def figure(val, probs, left, right, train, found, names):
    fig = record.new_figure(*FIGURE_INCHES)
    rows = max(len(left), len(right))
    k = found.shape[1]
    grid = fig.add_gridspec(rows, 4 + k, width_ratios=[1, 1.9, 0.3] + [1] * (1 + k))
    for r, i in enumerate(left):
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(_thumb(val.paths[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(str(names[val.labels[i]])[:18], fontsize=8)
        ax = fig.add_subplot(grid[r, 1])
        order = np.argsort(-probs[i], kind="stable")[:5]
        colours = ["tab:red" if c == val.labels[i] else "tab:blue" for c in order]
        rows_y = np.arange(len(order))[::-1]
        ax.barh(rows_y, probs[i][order], color=colours, alpha=0.45)
        # The labels are written over their bars, inside the bars' axes, as in the paper's
        # figure: as tick labels they stood left of the axes, over the thumbnail.
        for y, c in zip(rows_y, order, strict=True):
            ax.text(0.01, y, str(names[c])[:18], va="center", fontsize=7, clip_on=True,
                    transform=ax.get_yaxis_transform())  # fmt: skip
        ax.set_yticks([])
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=7)
    for r, i in enumerate(right):
        images = [val.paths[i]] + [train.paths[j] for j in found[i]]
        for c, path in enumerate(images):
            ax = fig.add_subplot(grid[r, 3 + c])
            ax.imshow(_thumb(path))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("query" if c == 0 else f"#{c}", fontsize=8)
    fig.suptitle(
        "Figure 4: top-5 classes of validation images (left; true class red) and the "
        "training images nearest in fc7 features (right)",
        fontsize=10,
    )
    return fig


def table_rows(result):
    return [
        [
            "neighbours of the same class",
            "most (shown by eye)",
            f"{result['neighbour_same_class']:.1%}",
        ],
        ["same class by chance", None, f"{result['chance_same_class']:.1%}"],
        ["val top-1 (centre crop, images used)", None, f"{result['val_top1']:.1%}"],
        ["val top-5", None, f"{result['val_top5']:.1%}"],
    ]
