"""Figure 3: conv1's 96 kernels, the 48 of each tower in a block of their own.

The paper: "96 convolutional kernels of size 11x11x3 learned by the first convolutional
layer ... The top 48 kernels were learned on GPU 1 while the bottom 48 kernels were learned
on GPU 2", one tower's largely colour-agnostic, the other's largely colour-specific.
conv1's output maps 0-47 feed tower A (`groups=2` joins conv2's first half to them), 48-95
tower B. Here tower A is the left block, tower B the right one; each kernel is scaled to
[0, 1] on its own, as the paper shows them (`training.summaries.filter_grid`, also what
TensorBoard shows during training).
"""

import os

import numpy as np

from alexnet_tf.experiments import record
from alexnet_tf.training.summaries import filter_grid, in_rgb

FIGURE_INCHES = (10, 5)
COLUMNS = 8  # 48 kernels as 6 rows of 8 per tower


def conv1_kernel(model, channel_order="rgb"):
    """conv1's kernel of a plain model, its input channels in RGB order whatever order the
    model takes (a Caffe model's are BGR): float32 (kh, kw, 3, 96)."""
    kernel = np.asarray(model.get_layer("conv1").get_weights()[0], np.float32)
    return in_rgb(kernel, channel_order, axis=2)


def has_towers(model):
    """Whether conv1's maps feed two towers: conv2 grouped in two (the paper's net). A
    one-tower model (`--groups 1`, torchvision's variant) has one block of kernels."""
    try:
        return getattr(model.get_layer("conv2"), "groups", 1) == 2
    except ValueError:
        return False


def blocks(kernel, towers):
    """`[(title, kernels (kh, kw, 3, n))]`: tower A's and tower B's halves, or all."""
    count = kernel.shape[-1]
    if not towers:
        return [(f"one tower: {count} kernels (maps 0-{count - 1})", kernel)]
    half = count // 2
    return [
        (f"tower A: {half} kernels (maps 0-{half - 1})", kernel[..., :half]),
        (f"tower B: {half} kernels (maps {half}-{count - 1})", kernel[..., half:]),
    ]


def colourfulness(kernels):
    """How much the colour channels of `kernels` (kh, kw, 3, n) differ: per kernel scaled
    to [0, 1], the std across R, G, B averaged over its pixels, then over the kernels. A
    colour-agnostic (grey) kernel scores 0."""
    k = np.transpose(kernels, (3, 0, 1, 2))  # (N, kh, kw, 3)
    low = k.min(axis=(1, 2, 3), keepdims=True)
    k = (k - low) / np.maximum(k.max(axis=(1, 2, 3), keepdims=True) - low, 1e-8)
    return float(k.std(axis=-1).mean())


def run(model, source, out, channel_order="rgb"):
    kernel = conv1_kernel(model, channel_order)
    parts = blocks(kernel, has_towers(model))
    colour = {title.split(":")[0]: colourfulness(k) for title, k in parts}
    result = {
        "model": source,
        "kernel_shape": list(kernel.shape),
        "model_channel_order": channel_order,  # the picture is RGB either way
        "towers": len(parts),
        "colourfulness": colour,
    }
    out.json(result)
    out.scalars("colourfulness", 0, {k.replace(" ", "_"): v for k, v in colour.items()})
    out.figure(figure(parts, source))
    return result


def figure(parts, source):
    fig = record.new_figure(*FIGURE_INCHES)
    width = 0.96 / len(parts)
    for i, (title, kernels) in enumerate(parts):
        ax = fig.add_axes([0.02 + width * i, 0.02, width - 0.02, 0.86])
        columns = COLUMNS * (3 - len(parts))  # one block: twice as wide
        ax.imshow(filter_grid(kernels, columns, zoom=4)[0], interpolation="nearest")
        kh, kw = kernels.shape[:2]
        ax.set_title(f"{title}, {kh}x{kw}x3", fontsize=10)
        ax.axis("off")
    fig.suptitle(f"Figure 3: conv1 of {short_name(source)}", fontsize=11)
    return fig


def short_name(source):
    """The title's name for a model: its run folder's name, or `folder/file.keras` for a
    file, so a figure made under a temporary or deep folder does not print the whole path
    (the JSON keeps it)."""
    path = os.path.normpath(source)
    name = os.path.basename(path)
    if os.path.splitext(name)[1] == ".keras":
        parent = os.path.basename(os.path.dirname(path))
        return f"{parent}/{name}" if parent else name
    return name


PAPER_COLOUR = {"tower A": "low (colour-agnostic)", "tower B": "high (colour-specific)"}


def table_rows(result):
    kh, kw, _, count = result["kernel_shape"]
    rows = [
        [
            "kernels",
            "96 of 11x11x3, 2 towers",
            f"{count} of {kh}x{kw}x3, {result['towers']} tower(s)",
        ]
    ]
    for name, value in result["colourfulness"].items():
        rows.append([f"colourfulness, {name}", PAPER_COLOUR.get(name), f"{value:.3f}"])
    return rows
