"""What every reproduction leaves in its output folder, and the table it prints.

    out = Output("runs/reproduce/relu_vs_tanh")
    out.figure(fig)            # relu_vs_tanh.png  (matplotlib, Agg: no display needed)
    out.json(numbers)          # relu_vs_tanh.json
    out.scalars("relu", step, {"train_error": 0.3})   # TensorBoard: tensorboard --logdir out
    print(table(["", "paper", "here"], rows))

The figure also goes into the TensorBoard events as an image, so one `tensorboard --logdir`
shows the numbers and the picture.
"""

import io
import os

import matplotlib

matplotlib.use("Agg")  # headless: a server or a container has no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from alexnet_tf.atomic import write_json  # noqa: E402

DPI = 80  # figure sizes are given in inches; pixels = inches x DPI


class Output:
    """The folder of one experiment: `NAME.png`, `NAME.json` and `tensorboard/`."""

    def __init__(self, folder, name):
        self.folder = folder
        self.name = name
        os.makedirs(folder, exist_ok=True)
        self._writers = {}

    @property
    def png_path(self):
        return os.path.join(self.folder, f"{self.name}.png")

    @property
    def json_path(self):
        return os.path.join(self.folder, f"{self.name}.json")

    def figure(self, fig):
        """Saves `fig` as the experiment's PNG (and as a TensorBoard image); closes it."""
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)  # no bbox "tight": the size stays as set
        plt.close(fig)
        data = buffer.getvalue()
        tmp = self.png_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.png_path)
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        with self._writer("figure").as_default(step=0):
            tf.summary.image(self.name, image[None], max_outputs=1)
        self.flush()
        return self.png_path

    def json(self, values):
        write_json(self.json_path, values)
        return self.json_path

    def scalars(self, run, step, values):
        """TensorBoard scalars of `run` (a subfolder of tensorboard/) at `step`."""
        with self._writer(run).as_default(step=int(step)):
            for tag, value in values.items():
                tf.summary.scalar(tag, float(value))

    def flush(self):
        for writer in self._writers.values():
            writer.flush()

    def _writer(self, run):
        if run not in self._writers:
            path = os.path.join(self.folder, "tensorboard", run)
            self._writers[run] = tf.summary.create_file_writer(path)
        return self._writers[run]


def table(headers, rows):
    """`rows` (lists of values) under `headers` as aligned text columns."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def new_figure(width, height):
    """A matplotlib figure of `width` x `height` inches (x DPI pixels when saved)."""
    return plt.figure(figsize=(width, height), dpi=DPI)
