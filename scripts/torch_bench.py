#!/usr/bin/env python3
"""PyTorch peer of BenchmarkTrainStep (internal/train/bench_test.go).

Times one training step (forward, backward, Adam update) of the same models
kdcal trains, at the same batch size, on pre-generated random 1x28x28 inputs
with random labels (16 batches, cycled), so the loss stays near log(10).

  mlp-784-512-512-10: Linear(784,512)-ReLU-Linear(512,512)-ReLU-Linear(512,10)
  cnn-<size>:         per conv stage Conv2d(3x3, pad 1)-ReLU-MaxPool2d(2), flatten,
                      per hidden width Linear-ReLU, Linear(., 10)
                      (sizes as in configs/default.yaml teacher.cnn)
  resnet<D>-w<W>:     the CIFAR ResNet of scripts/torch_resnet.py (BatchNorm in train
                      mode, option-A shortcuts), depth D, width W (teacher.resnet)

Usage: /usr/bin/python3 scripts/torch_bench.py [--threads 1] [--steps 40] [--batch 128] [model ...]
Prints one line per model: "<name> <ms/step> <samples/s> <cpu-ms/step>", the
last being process CPU time per step (time.process_time), which other jobs on
a shared machine do not inflate (compare with BenchmarkTrainStep's cpu-ms/step).
"""
import argparse
import os
import re
import sys
import time

import torch
import torch.nn as nn

CNN_SIZES = {
    "tiny": ([4, 8], [32]),
    "small": ([8, 16], [64]),
    "medium": ([16, 32], [128]),
    "large": ([32, 64], [128]),
    "xlarge": ([64, 128], [256]),
}


def mlp(hidden, d=784, classes=10):
    layers, n = [], d
    for h in hidden:
        layers += [nn.Linear(n, h), nn.ReLU()]
        n = h
    layers.append(nn.Linear(n, classes))
    return nn.Sequential(nn.Flatten(1), *layers)


def cnn(conv, hidden, c=1, hw=28, classes=10):
    layers, ch = [], c
    for out in conv:
        layers += [nn.Conv2d(ch, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        ch, hw = out, hw // 2
    layers.append(nn.Flatten(1))
    n = ch * hw * hw
    for h in hidden:
        layers += [nn.Linear(n, h), nn.ReLU()]
        n = h
    layers.append(nn.Linear(n, classes))
    return nn.Sequential(*layers)


def build(name):
    if name.startswith("mlp-"):
        widths = [int(x) for x in name[4:].split("-")]
        return mlp(widths[1:-1], d=widths[0], classes=widths[-1])
    if name.startswith("cnn-"):
        conv, hidden = CNN_SIZES[name[4:]]
        return cnn(conv, hidden)
    m = re.fullmatch(r"resnet(\d+)-w(\d+)", name)
    if m:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_resnet import ResNet

        return ResNet(int(m.group(1)), int(m.group(2)), 1, 10)
    raise SystemExit(f"unknown model {name!r}")


def bench(name, steps, bs):
    torch.manual_seed(0)
    model = build(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    xs = [torch.randn(bs, 1, 28, 28) for _ in range(16)]
    ys = [torch.randint(0, 10, (bs,)) for _ in range(16)]

    def step(i):
        opt.zero_grad(set_to_none=False)
        loss = lossf(model(xs[i % 16]), ys[i % 16])
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(steps):
        step(i)
    sec = (time.perf_counter() - t0) / steps
    cpu = (time.process_time() - c0) / steps
    return sec * 1000, bs / sec, cpu * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("models", nargs="*", default=["mlp-784-512-512-10", "cnn-medium"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    for name in a.models:
        ms, sps, cpu_ms = bench(name, a.steps, a.batch)
        print(f"{name} {ms:.3f} {sps:.1f} {cpu_ms:.3f}", flush=True)


if __name__ == "__main__":
    main()
