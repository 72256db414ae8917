"""The PyTorch peer of `python -m alexnet_tf.bench input`: a DataLoader with PIL workers.

The same files and the same augmentation as our training pipeline (shorter side to
256, centre 256 square, random 227 crop, horizontal flip, PCA lighting, per-pixel
mean/std normalisation, batch 128), written as a careful PIL user would.

By default it takes the shortcuts PIL offers for what ours does; what still differs:

- JPEGs are decoded with `Image.draft("RGB", (256, 256))`, which lets libjpeg decode at
  1/2, 1/4 or 1/8 scale (scaled IDCT) as long as the shorter side stays at least 256;
  ours decodes only the crop's window of the file, at full scale
  (`tf.io.decode_and_crop_jpeg`).
- The crop is cut and scaled in one `Image.transform(AFFINE, resample=BILINEAR)` from the
  decoded image straight to 227 x 227: plain bilinear, no antialiasing. Ours scales its
  window the same way when it shrinks by less than half, and antialiased below that,
  i.e. for files whose shorter side is over 2 x 256 px; after `draft` this peer shrinks
  by less than half up to a shorter side of 16 x 256 px, and never antialiases.
- PIL's transform rounds its result down to uint8 (half a grey level darker on
  average); ours keeps float32.

With `--no_shortcuts`: the whole file is decoded at full scale and resized with PIL's
`resize(BILINEAR)`, which antialiases (its filter widens with the reduction), then
cropped: the straightforward pipeline, and the earlier figures. Run it in a separate
venv with torch (never in requirements.txt):

    python alexnet_tf/bench/torch_input_peer.py --data_dir DIR [--workers 2] \
        [--no_shortcuts] [--json]

Prints images/s measured after warm-up over a fixed number of batches, and whether the
shortcuts were on (`shortcuts`).
"""

import argparse
import json
import os
import time

import numpy as np
import torch
from machine import machine  # this folder: the script's own, importable without TF
from PIL import Image

EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045]) * 255  # [0, 1] scale -> 0-255
EIGVEC = torch.tensor(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
)


def cpu_seconds(pids):
    """User + system CPU seconds of the processes `pids` so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def list_images(data_dir):
    train = os.path.join(data_dir, "train")
    classes = sorted(os.listdir(train))
    items = []
    for label, name in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(train, name))):
            items.append((os.path.join(train, name, f), label))
    return items


def decode(path, resize, shortcuts):
    """The file as an RGB image, and the (width, height) of the original in its pixels:
    with `shortcuts` a JPEG is decoded at the smallest 1/1, 1/2, 1/4 or 1/8 scale whose
    shorter side is still at least `resize` (`Image.draft`; other formats in full)."""
    image = Image.open(path)
    extent = image.size
    if shortcuts:
        drafted = image.draft("RGB", (resize, resize))  # None where it cannot (not a JPEG)
        if drafted is not None:
            extent = drafted[1][2:]  # the original's size in the scaled image's pixels
    return image.convert("RGB"), extent


def scaled_crop(image, extent, resize, size, offset, shortcuts):
    """The `size` square at `offset` (y, x) of the centre `resize` square of `image` with
    its shorter side scaled to `resize`: PIL image (size, size)."""
    oy, ox = offset
    if not shortcuts:  # whole image, antialiased resize, then crop
        w, h = image.size
        scale = resize / min(w, h)
        image = image.resize(
            (max(resize, round(w * scale)), max(resize, round(h * scale))), Image.BILINEAR
        )
        w, h = image.size
        left, top = (w - resize) // 2, (h - resize) // 2
        return image.crop((left + ox, top + oy, left + ox + size, top + oy + size))
    w, h = extent
    step = min(w, h) / resize  # source pixels per resized pixel
    left = (w - min(w, h)) / 2 + ox * step
    top = (h - min(w, h)) / 2 + oy * step
    # Output pixel (x, y) samples source (left + x * step, top + y * step), plain bilinear.
    affine = (step, 0.0, left, 0.0, step, top)
    return image.transform((size, size), Image.AFFINE, affine, resample=Image.BILINEAR)


class Images(torch.utils.data.Dataset):
    def __init__(self, items, resize, size, mean, std, shortcuts=True):
        self.items, self.resize, self.size = items, resize, size
        self.mean, self.std = mean, std  # (3, R, R) and (3, 1, 1), 0-255
        self.shortcuts = shortcuts

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        image, extent = decode(path, self.resize, self.shortcuts)
        oy, ox = np.random.randint(0, self.resize - self.size + 1, size=2)
        image = scaled_crop(image, extent, self.resize, self.size, (oy, ox), self.shortcuts)
        mirror = np.random.rand() < 0.5
        if mirror:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(image, dtype=np.uint8)).permute(2, 0, 1).float()
        shift = EIGVEC @ (torch.randn(3) * 0.1 * EIGVAL)
        mean = self.mean[:, oy : oy + self.size, ox : ox + self.size]
        if mirror:
            mean = mean.flip(2)
        x = (x + shift[:, None, None] - mean) / self.std
        return x, label


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--image_size", type=int, default=227)
    p.add_argument("--resize", type=int, default=256)
    p.add_argument(
        "--no_shortcuts",
        dest="shortcuts",
        action="store_false",
        help="full decode and PIL's antialiased resize (default: JPEG draft decode, plain "
        "bilinear crop scaling)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    items = list_images(args.data_dir)
    mean = torch.full((3, args.resize, args.resize), 117.0)
    std = torch.full((3, 1, 1), 58.0)
    loader = torch.utils.data.DataLoader(
        Images(items, args.resize, args.image_size, mean, std, args.shortcuts),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=True,
        prefetch_factor=2,
    )

    iterators = []

    def batches():
        while True:
            iterators.append(iter(loader))  # persistent workers: the same processes
            yield from iterators[-1]

    stream = batches()
    for _ in range(args.warmup):
        next(stream)
    pids = [os.getpid()] + [w.pid for w in iterators[-1]._workers]
    images, start, cpu_start = 0, time.perf_counter(), cpu_seconds(pids)
    for _ in range(args.batches):
        x, _ = next(stream)
        images += x.shape[0]
    seconds = time.perf_counter() - start
    cpu = cpu_seconds(pids) - cpu_start
    result = {
        "benchmark": "torch_input_peer",
        "images_per_sec": round(images / seconds, 1),
        # main process and workers; None when too short to register a clock tick
        "images_per_cpu_sec": round(images / cpu, 1) if cpu else None,
        "images": images,
        "seconds": round(seconds, 2),
        "workers": args.workers,
        "shortcuts": args.shortcuts,
        "batch_size": args.batch_size,
        "torch_version": torch.__version__,
        "files": len(items),
        **machine(),
    }
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
