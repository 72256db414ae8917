"""The PyTorch peer of `python -m alexnet_tf.bench train`: the same net, batch and cores.

The paper's two-tower AlexNet in PyTorch (groups=2 in conv2/4/5, LRN per tower with the
paper's constants, ReLU -> LRN -> max-pool, dropout 0.5, 60,965,224 parameters at 1000
classes) trained with SGD (momentum 0.9, weight decay 5e-4, which `torch.optim.SGD`
applies inside the momentum as the paper does) on random in-memory batches; and the
forward pass in eval mode. Timed after warm-up as the median of several windows, eager
and with `torch.compile`. Run it in a separate venv with torch (never in
requirements.txt):

    python alexnet_tf/bench/torch_train_peer.py [--batch_size 32] [--image_size 227] [--json]
"""

import argparse
import json
import statistics
import time

import torch
from machine import machine  # this folder: the script's own, importable without TF
from torch import nn


class TowerLRN(nn.Module):
    """The paper's LRN (k=2, alpha=1e-4 on the raw sum, beta=0.75, n=5) per tower."""

    def __init__(self):
        super().__init__()
        # PyTorch divides alpha by n: 5e-4 / 5 = the paper's 1e-4 on the raw sum.
        self.lrn = nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

    def forward(self, x):
        a, b = torch.chunk(x, 2, dim=1)
        return torch.cat([self.lrn(a), self.lrn(b)], dim=1)


def alexnet(num_classes=1000):
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4),
        nn.ReLU(inplace=True),
        TowerLRN(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2),
        nn.ReLU(inplace=True),
        TowerLRN(),
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
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.manual_seed(0)
    model = alexnet()
    assert sum(p.numel() for p in model.parameters()) == 60_965_224
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    y = torch.randint(0, 1000, (args.batch_size,))
    loss_fn = nn.CrossEntropyLoss()

    def trainer(net):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            return loss

        return step

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
    result.update(machine())
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
