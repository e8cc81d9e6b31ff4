#!/usr/bin/env python3
"""PyTorch peer for internal/fused's Stage benchmarks (run with /usr/bin/python3).

  /usr/bin/python3 scripts/torch_conv_bench.py stage [--steps 30] [--threads 1]
  /usr/bin/python3 scripts/torch_conv_bench.py cnn   [--steps 30] [--threads 1]

stage: forward+backward of one conv stage max_pool2d(relu(conv2d(x, w, b, padding=1)), 2)
       at batch 128 for the two stages of the "medium" CNN teacher (1→16 at 28×28 with no
       input gradient, 16→32 at 14×14 with one), loss sum(r*y) as in BenchmarkStage.
cnn:   one training step (forward, backward, Adam lr 1e-3) of the medium CNN teacher
       conv16-pool-conv32-pool-fc128-fc10, batch 128, mean cross-entropy, cycling 20
       random N(0,1) batches with random labels (as BenchmarkCNNStep).
Prints one line per benchmark: name, median ms/step, min, max over --steps timed steps
(after 5 warm-up steps). Set OPENBLAS_NUM_THREADS to the same thread count.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def timeit(fn, steps, warmup=5):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), min(ts), max(ts)


def stage_bench(steps):
    g = torch.Generator().manual_seed(41)
    shapes = [("1to16_28x28", 1, 16, 28, False), ("16to32_14x14", 16, 32, 14, True)]
    for name, cin, cout, hw, x_grad in shapes:
        x = torch.randn(128, cin, hw, hw, generator=g).requires_grad_(x_grad)
        w = (torch.randn(cout, cin, 3, 3, generator=g) / (cin * 9) ** 0.5).requires_grad_(True)
        b = (0.1 * torch.randn(cout, generator=g)).requires_grad_(True)
        r = torch.randn(128, cout, hw // 2, hw // 2, generator=g)

        def step():
            y = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
            (r * y).sum().backward()
            w.grad = None
            b.grad = None
            x.grad = None

        report("stage/" + name, timeit(step, steps))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv1 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc0 = nn.Linear(32 * 7 * 7, 128)
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv0(x)), 2)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.fc0(x.flatten(1)))
        return self.out(x)


def cnn_bench(steps):
    torch.manual_seed(3)
    model = CNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(5)
    xs = [torch.randn(128, 1, 28, 28, generator=g) for _ in range(20)]
    ys = [torch.randint(0, 10, (128,), generator=g) for _ in range(20)]
    i = [0]

    def step():
        k = i[0] % 20
        i[0] += 1
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xs[k]), ys[k]).backward()
        opt.step()

    report("cnn_step", timeit(step, steps))


def report(name, t):
    print("torch %-20s median %8.2f ms  min %8.2f  max %8.2f  threads %d" % (name, t[0], t[1], t[2], torch.get_num_threads()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["stage", "cnn", "all"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.what in ("stage", "all"):
        stage_bench(a.steps)
    if a.what in ("cnn", "all"):
        cnn_bench(a.steps)


if __name__ == "__main__":
    main()
