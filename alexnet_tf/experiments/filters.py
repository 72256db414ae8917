"""Figure 3: conv1's 96 kernels, the 48 of each tower in a block of their own.

The paper: "96 convolutional kernels of size 11x11x3 learned by the first convolutional
layer ... The top 48 kernels were learned on GPU 1 while the bottom 48 kernels were learned
on GPU 2", one tower's largely colour-agnostic, the other's largely colour-specific.
conv1's output maps 0-47 feed tower A (`groups=2` joins conv2's first half to them), 48-95
tower B. Here tower A is the left block, tower B the right one; each kernel is scaled to
[0, 1] on its own, as the paper shows them (`training.summaries.filter_grid`, also what
TensorBoard shows during training).
"""

import numpy as np

from alexnet_tf.experiments import record
from alexnet_tf.training.summaries import filter_grid

FIGURE_INCHES = (10, 5)
COLUMNS = 8  # 48 kernels as 6 rows of 8 per tower


def conv1_kernel(model):
    """conv1's kernel of a plain model: float32 (kh, kw, 3, 96)."""
    return np.asarray(model.get_layer("conv1").get_weights()[0], np.float32)


def tower_grids(kernel, columns=COLUMNS, zoom=4):
    """The two towers' kernels as two RGB images in [0, 1]: (H, W, 3) each."""
    half = kernel.shape[-1] // 2
    return [
        filter_grid(kernel[..., part], columns, zoom)[0]
        for part in (slice(0, half), slice(half, None))
    ]


def colourfulness(kernel):
    """Per kernel, how much its colour channels differ: the mean over pixels of the std
    across R, G, B of the kernel scaled to [0, 1], averaged over each tower. A colour-
    agnostic (grey) kernel scores near 0."""
    k = np.transpose(kernel, (3, 0, 1, 2))  # (N, kh, kw, 3)
    low = k.min(axis=(1, 2, 3), keepdims=True)
    k = (k - low) / np.maximum(k.max(axis=(1, 2, 3), keepdims=True) - low, 1e-8)
    per_kernel = k.std(axis=-1).mean(axis=(1, 2))
    half = len(per_kernel) // 2
    return float(per_kernel[:half].mean()), float(per_kernel[half:].mean())


def run(model, source, out):
    kernel = conv1_kernel(model)
    colour_a, colour_b = colourfulness(kernel)
    result = {
        "model": source,
        "kernel_shape": list(kernel.shape),
        "colourfulness_tower_a": colour_a,
        "colourfulness_tower_b": colour_b,
    }
    out.json(result)
    out.scalars("colourfulness", 0, {"tower_a": colour_a, "tower_b": colour_b})
    out.figure(figure(kernel, source))
    return result


def figure(kernel, source):
    fig = record.new_figure(*FIGURE_INCHES)
    half = kernel.shape[-1] // 2
    kh, kw = kernel.shape[:2]
    for i, (grid, name) in enumerate(zip(tower_grids(kernel), ("A", "B"), strict=True)):
        ax = fig.add_axes([0.02 + 0.49 * i, 0.02, 0.47, 0.86])
        ax.imshow(grid, interpolation="nearest")
        maps = f"maps {half * i}-{half * (i + 1) - 1}"
        ax.set_title(f"tower {name}: {half} kernels {kh}x{kw}x3 ({maps})", fontsize=10)
        ax.axis("off")
    fig.suptitle(f"Figure 3: conv1 of {source}", fontsize=11)
    return fig


def table_rows(result):
    return [
        [
            "kernels",
            "96 of 11x11x3",
            f"{result['kernel_shape'][3]} of "
            f"{result['kernel_shape'][0]}x{result['kernel_shape'][1]}x3",
        ],  # fmt: skip
        [
            "colourfulness, tower A",
            "low (colour-agnostic)",
            f"{result['colourfulness_tower_a']:.3f}",
        ],
        [
            "colourfulness, tower B",
            "high (colour-specific)",
            f"{result['colourfulness_tower_b']:.3f}",
        ],
    ]
