#!/usr/bin/env python3
"""PyTorch peer of internal/fused's ResNet (run with Debian's /usr/bin/python3, torch 1.13).

The module (scripts/torch_resnet.py's ResNet) is the CIFAR ResNet of He et al. 2016, sec. 4.2, written as the common torch
implementation (akamaster/pytorch_resnet_cifar10) writes it, with torchvision's names for the
stem and the classifier, so that its state_dict keys are the names kdcal uses:

  conv1.weight, bn1.{weight,bias,running_mean,running_var,num_batches_tracked},
  layer{1,2,3}.{i}.conv{1,2}.weight, layer{1,2,3}.{i}.bn{1,2}.*, fc.weight, fc.bias

  python3 torch_resnet.py [--counts FILE] DIR...

Both tests that use it (TestResNetMatchesTorch, TestParamCountsMatchTorch) share one run,
since importing torch is most of its time. --counts reads "depth width C H W classes" lines
from FILE and writes sum(p.numel() for p in model.parameters()) of each, one per line, to
FILE.out. Each DIR is one cross-check case:

a case reads DIR/spec.json {depth, width, c, h, w, classes, batch, tracked, names: {name: shape}},
DIR/x.bin (batch, c, h, w), DIR/r.bin (batch, classes) and DIR/state/<name>.bin for every
floating-point state entry (raw little-endian float32, C order), loads them with
load_state_dict(strict=True) and writes
  DIR/out/logits_eval.bin   model.eval()(x)
  DIR/out/logits_train.bin  model.train()(x), one forward with batch statistics, then
  DIR/out/grad/<name>.bin   d/d param of sum(r * logits_train)
  DIR/out/state/<name>.bin  running statistics after that one training forward
  DIR/out/tracked.txt       num_batches_tracked of every BN layer after it
"""
import json
import os
import sys

import numpy as np
import torch

# The module itself has one home, scripts/torch_resnet.py (which also loads
# kdcal's model.safetensors); this script only drives the cross-check cases.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
from torch_resnet import ResNet  # noqa: E402


def read(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(shape).copy())


def write(path, t):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t.detach().numpy().astype("<f4").tofile(path)


def check(d):
    with open(os.path.join(d, "spec.json")) as f:
        spec = json.load(f)
    torch.set_num_threads(1)
    model = ResNet(spec["depth"], spec["width"], spec["c"], spec["classes"])
    sd = {}
    for name, shape in spec["names"].items():
        if name.endswith("num_batches_tracked"):
            sd[name] = torch.tensor(spec["tracked"], dtype=torch.long)
        else:
            sd[name] = read(os.path.join(d, "state", name + ".bin"), shape)
    missing = set(model.state_dict()) ^ set(sd)
    if missing:
        sys.exit("state_dict keys differ: %s" % sorted(missing))
    model.load_state_dict(sd, strict=True)
    b = spec["batch"]
    x = read(os.path.join(d, "x.bin"), (b, spec["c"], spec["h"], spec["w"]))
    r = read(os.path.join(d, "r.bin"), (b, spec["classes"]))
    out = os.path.join(d, "out")
    model.eval()
    with torch.no_grad():
        write(os.path.join(out, "logits_eval.bin"), model(x))
    model.train()
    logits = model(x)
    (r * logits).sum().backward()
    write(os.path.join(out, "logits_train.bin"), logits)
    for name, p in model.named_parameters():
        write(os.path.join(out, "grad", name + ".bin"), p.grad)
    tracked = set()
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            tracked.add(int(t))
        elif "running" in name:
            write(os.path.join(out, "state", name + ".bin"), t)
    with open(os.path.join(out, "tracked.txt"), "w") as f:
        f.write(" ".join(str(t) for t in sorted(tracked)))


def count(path):
    out = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            depth, width, c, h, w, classes = (int(v) for v in line.split())
            model = ResNet(depth, width, c, classes)  # h, w do not change the count
            out.append(str(sum(p.numel() for p in model.parameters())))
    with open(path + ".out", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args == ["--counts"]:
        sys.exit(__doc__)
    if args[0] == "--counts":
        count(args[1])
        args = args[2:]
    for d in args:
        check(d)
