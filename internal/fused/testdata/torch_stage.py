"""Reference for fused.Stage's tests: the same conv stages in PyTorch.

Usage: /usr/bin/python3 torch_stage.py DIR
DIR holds spec.json {"n","c","h","w","outs"} and little-endian float32 files
x.bin, w<i>.bin, b<i>.bin (per stage) and r.bin (loss weights). The script
computes y = stages(x) with stage = max_pool2d(relu(conv2d(x, w, b, padding=1)), 2)
and L = sum(r * y), and writes y.bin, dx.bin, dw<i>.bin, db<i>.bin.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def load(d, name, shape):
    a = np.fromfile(os.path.join(d, name), dtype="<f4").reshape(shape)
    return torch.from_numpy(a.copy()).requires_grad_(True)


def save(d, name, t):
    t.detach().numpy().astype("<f4").tofile(os.path.join(d, name))


def main(d):
    with open(os.path.join(d, "spec.json")) as f:
        spec = json.load(f)
    torch.set_num_threads(1)
    n, c, h, w = spec["n"], spec["c"], spec["h"], spec["w"]
    x = load(d, "x.bin", (n, c, h, w))
    params = []
    y = x
    for i, out in enumerate(spec["outs"]):
        wt = load(d, "w%d.bin" % i, (out, c, 3, 3))
        bt = load(d, "b%d.bin" % i, (out,))
        params.append((wt, bt))
        y = F.max_pool2d(F.relu(F.conv2d(y, wt, bt, padding=1)), 2)
        c = out
    r = load(d, "r.bin", tuple(y.shape)).detach()
    (r * y).sum().backward()
    save(d, "y.bin", y)
    save(d, "dx.bin", x.grad)
    for i, (wt, bt) in enumerate(params):
        save(d, "dw%d.bin" % i, wt.grad)
        save(d, "db%d.bin" % i, bt.grad)


if __name__ == "__main__":
    main(sys.argv[1])
