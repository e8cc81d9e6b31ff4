#!/usr/bin/env python3
"""PyTorch peer of internal/fused's BenchmarkResNetStep (run with /usr/bin/python3, torch 1.13).

  /usr/bin/python3 scripts/torch_resnet_bench.py [--steps 10] [--threads 1] [--nets 8:8,20:16,32:16]
      [--inputs 3x32x32,1x28x28]

One training step = zero_grad(set_to_none) + forward (train mode, batch statistics) + mean
cross-entropy + backward + torch.optim.SGD(lr=0.01, momentum=0.9).step(), at batch 128, for
each network (depth:width) on each input shape (CxHxW), cycling 20 random N(0,1)
batches with uniform random labels, as the Go benchmark does. The network is the reference
module of internal/fused/testdata/torch_resnet.py (the one the cross-check tests load kdcal's
weights into). Prints one line per network: median wall ms/step, min, max, and median CPU ms/step
(time.process_time, which excludes the time other processes hold the core) over --steps timed steps
after 3 warm-up steps. Set OPENBLAS_NUM_THREADS and OMP_NUM_THREADS to the same thread count.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_resnet import ResNet  # noqa: E402


def bench(depth, width, shape, steps, batch=128):
    torch.manual_seed(1)
    model = ResNet(depth, width, shape[0], 10)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(5)
    xs = [torch.randn(batch, *shape, generator=g) for _ in range(20)]
    ys = [torch.randint(0, 10, (batch,), generator=g) for _ in range(20)]
    i = [0]

    def step():
        k = i[0] % 20
        i[0] += 1
        for p in model.parameters():
            p.grad = None
        F.cross_entropy(model(xs[k]), ys[k]).backward()
        opt.step()

    for _ in range(3):
        step()
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), min(wall), max(wall), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nets", default="8:8,20:16,32:16")
    ap.add_argument("--inputs", default="3x32x32,1x28x28")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for inp in a.inputs.split(","):
        shape = tuple(int(v) for v in inp.split("x"))
        for net in a.nets.split(","):
            d, w = (int(v) for v in net.split(":"))
            t = bench(d, w, shape, a.steps)
            print("torch resnet%d-w%d/%s median %8.1f ms  min %8.1f  max %8.1f  cpu %8.1f ms  threads %d mkldnn %s"
                  % (d, w, inp, t[0], t[1], t[2], t[3], torch.get_num_threads(), torch.backends.mkldnn.is_available()))


if __name__ == "__main__":
    main()
