"""The PyTorch peer of `python -m alexnet_tf.bench input`: a DataLoader with PIL workers.

Same files, same augmentation as our training pipeline: decode, shorter side to 256
(bilinear, antialiased as PIL does), centre 256 square, random 227 crop, horizontal flip,
PCA lighting and per-pixel-mean/std normalisation, batch 128. Run it in a separate venv
with torch (never in requirements.txt):

    python alexnet_tf/bench/torch_input_peer.py --data_dir DIR [--workers 2] [--json]

Prints images/s measured after warm-up over a fixed number of batches.
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


class Images(torch.utils.data.Dataset):
    def __init__(self, items, resize, size, mean, std):
        self.items, self.resize, self.size = items, resize, size
        self.mean, self.std = mean, std  # (3, R, R) and (3, 1, 1), 0-255

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        image = Image.open(path).convert("RGB")
        w, h = image.size
        scale = self.resize / min(w, h)
        image = image.resize(
            (max(self.resize, round(w * scale)), max(self.resize, round(h * scale))), Image.BILINEAR
        )
        w, h = image.size
        left, top = (w - self.resize) // 2, (h - self.resize) // 2
        oy, ox = np.random.randint(0, self.resize - self.size + 1, size=2)
        image = image.crop((left + ox, top + oy, left + ox + self.size, top + oy + self.size))
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
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    items = list_images(args.data_dir)
    mean = torch.full((3, args.resize, args.resize), 117.0)
    std = torch.full((3, 1, 1), 58.0)
    loader = torch.utils.data.DataLoader(
        Images(items, args.resize, args.image_size, mean, std),
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
        "images_per_cpu_sec": round(images / cpu, 1),  # main process and workers
        "images": images,
        "seconds": round(seconds, 2),
        "workers": args.workers,
        "batch_size": args.batch_size,
        "torch_version": torch.__version__,
        "files": len(items),
        **machine(),
    }
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
