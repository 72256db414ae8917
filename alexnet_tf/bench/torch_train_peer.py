"""The PyTorch peer of `python -m alexnet_tf.bench train`: the same net, batch and cores.

The paper's two-tower AlexNet in PyTorch (groups=2 in conv2/4/5, LRN per tower with the
paper's constants, ReLU -> LRN -> max-pool, dropout 0.5, 60,965,224 parameters at 1000
classes) trained with SGD (momentum 0.9, weight decay 5e-4, which `torch.optim.SGD`
applies inside the momentum as the paper does) on random in-memory batches; and the
forward pass in eval mode. Timed after warm-up as the median of several windows, eager
and with `torch.compile`. Run it in a separate venv with torch (never in
requirements.txt):

    python alexnet_tf/bench/torch_train_peer.py [--batch_size 32] [--image_size 227] \
        [--lrn stock|fast] [--channels_last] [--json]

`--lrn stock` (the default, comparable with earlier figures) is `nn.LocalResponseNorm`,
whose CPU kernel is slow; `--lrn fast` is the same LRN written as a careful PyTorch user
would for speed, autograd doing the backward: the squares (channels last) times a (C, C)
0/1 band matrix that sums each map's 5 neighbours within its tower. Of the ways timed
for norm1 and norm2, forward and backward, float32 and bfloat16 autocast (the sum of 5
channel-shifted squares, `avg_pool3d` over channels, the band product as `einsum` on
NCHW and as a matmul on the channels-last view), the band product was the fastest, its
two spellings within the noise of a shared machine except `einsum` on NCHW float32
(twice as slow); the matmul is kept. `--channels_last` keeps activations in NHWC memory order
(`torch.channels_last`), which oneDNN's convolutions prefer. The JSON says which (`lrn`,
`channels_last`).
"""

import argparse
import json
import statistics
import time

import torch
from machine import machine  # this folder: the script's own, importable without TF
from torch import nn

# The paper's LRN (Sec. 3.3): b = a / (K + ALPHA * sum of the n=SIZE neighbouring maps' a^2)
# ** BETA, ALPHA on the raw sum, each tower normalising its own maps.
K, ALPHA, BETA, SIZE, TOWERS = 2.0, 1e-4, 0.75, 5, 2


class TowerLRN(nn.Module):
    """The paper's LRN per tower with PyTorch's own `nn.LocalResponseNorm`."""

    def __init__(self, channels=None):
        super().__init__()
        # PyTorch divides alpha by n: 5e-4 / 5 = the paper's 1e-4 on the raw sum.
        self.lrn = nn.LocalResponseNorm(SIZE, alpha=ALPHA * SIZE, beta=BETA, k=K)

    def forward(self, x):
        a, b = torch.chunk(x, TOWERS, dim=1)
        return torch.cat([self.lrn(a), self.lrn(b)], dim=1)


def tower_band(channels):
    """(C, C) 0/1: [i, j] = 1 where map i is within SIZE // 2 of map j in the same tower."""
    c = torch.arange(channels)
    tower = c // (channels // TOWERS)
    near = (c[:, None] - c[None, :]).abs() <= SIZE // 2
    return (near & (tower[:, None] == tower[None, :])).float()


class FastTowerLRN(nn.Module):
    """The same LRN, its window sums as one matmul: (N, H, W, C) squares @ band (C, C)."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("band", tower_band(channels), persistent=False)

    def forward(self, x):  # (N, C, H, W)
        squares = (x * x).permute(0, 2, 3, 1)  # (N, H, W, C): contiguous if channels_last
        energy = (squares @ self.band.to(squares.dtype)).permute(0, 3, 1, 2)  # (N, C, H, W)
        return x * (K + ALPHA * energy).pow(-BETA)


LRNS = {"stock": TowerLRN, "fast": FastTowerLRN}


def alexnet(num_classes=1000, lrn="stock"):
    norm = LRNS[lrn]
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4),
        nn.ReLU(inplace=True),
        norm(96),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2),
        nn.ReLU(inplace=True),
        norm(256),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1, groups=2),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1, groups=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(9216, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(4096, num_classes),
    )


def in_layout(net, x, channels_last):
    """`net` and the batch `x` in NHWC memory order if `channels_last`, else as they are."""
    if not channels_last:
        return net, x
    layout = torch.channels_last
    return net.to(memory_format=layout), x.contiguous(memory_format=layout)


def train_step(net, x, y, bf16=False):
    """One SGD step of `net` on the batch (x, y) per call (momentum 0.9, weight decay 5e-4):
    returns the loss."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def median_rate(run, batch, warmup, steps, windows):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            run()
        times.append(time.perf_counter() - start)
    return steps * batch / statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--image_size", type=int, default=227)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--no_compile", action="store_true", help="skip torch.compile")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU mixed precision)")
    p.add_argument(
        "--lrn", choices=sorted(LRNS), default="stock", help="stock: nn.LocalResponseNorm"
    )
    p.add_argument("--channels_last", action="store_true", help="NHWC memory order")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.manual_seed(0)
    model = alexnet(lrn=args.lrn)
    assert sum(p.numel() for p in model.parameters()) == 60_965_224
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    model, x = in_layout(model, x, args.channels_last)
    y = torch.randint(0, 1000, (args.batch_size,))

    def trainer(net):
        return train_step(net, x, y, args.bf16)

    def infer(net):
        def forward():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                return net(x)

        return forward

    timing = (args.batch_size, args.warmup, args.steps, args.windows)
    result = {"threads": torch.get_num_threads(), "torch_version": torch.__version__}
    # (with --bf16 the figures are for bfloat16 autocast)
    model.train()
    result["train_eager_images_per_sec"] = round(median_rate(trainer(model), *timing), 2)
    model.eval()
    result["forward_eager_images_per_sec"] = round(median_rate(infer(model), *timing), 2)
    if not args.no_compile:
        compiled = torch.compile(model)
        compiled.train()
        result["train_compiled_images_per_sec"] = round(median_rate(trainer(compiled), *timing), 2)
        compiled.eval()
        result["forward_compiled_images_per_sec"] = round(median_rate(infer(compiled), *timing), 2)
    result.update(batch_size=args.batch_size, image_size=args.image_size, bf16=args.bf16)
    result.update(lrn=args.lrn, channels_last=args.channels_last)
    result.update(machine())
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
