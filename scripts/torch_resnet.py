#!/usr/bin/env python3
"""Load a kdcal resnet model.safetensors into a torch nn.Module (Debian's /usr/bin/python3, torch 1.13).

The module is the CIFAR ResNet of He et al. 2016, sec. 4.2, as the common torch code
(akamaster/pytorch_resnet_cifar10) writes it, with torchvision's names for the stem and the
classifier: its state_dict keys are the tensor names in kdcal's file (conv1.weight,
bn1.{weight,bias,running_mean,running_var,num_batches_tracked}, layer{1,2,3}.{i}.conv{1,2}.weight,
layer{1,2,3}.{i}.bn{1,2}.*, fc.weight, fc.bias). It is the same module as
internal/fused/testdata/torch_resnet.py, which checks the fused ops against it.

The safetensors file is parsed by hand with numpy (Debian has no safetensors module): 8-byte
little-endian header length, a JSON header, then little-endian tensor data at data_offsets.
num_batches_tracked is stored as int64 of shape (1,); load_state_dict(strict=True) accepts it
for the 0-dim buffer. Any other missing, extra or misshapen tensor is an error.

  torch_resnet.py MODEL.safetensors X.npy OUT_DIR

X.npy is N x C x H x W (or N x C*H*W) float32, already normalised as kdcal feeds its models.
Writes OUT_DIR/logits_eval.npy (model.eval()(x): running statistics) and
OUT_DIR/logits_train.npy (model.train()(x): one forward with batch statistics over all N rows),
and prints a JSON line {"params": ..., "tracked": ..., "depth": ..., "width": ...}.

As a library: `from torch_resnet import load; model, meta = load(path)`.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            # option A: subsample and pad zero channels, planes//4 on each side
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, depth, width, in_channels, classes):
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        planes = width
        self.layer1, planes = self._stage(planes, width, n, 1)
        self.layer2, planes = self._stage(planes, 2 * width, n, 2)
        self.layer3, planes = self._stage(planes, 4 * width, n, 2)
        self.fc = nn.Linear(4 * width, classes)

    @staticmethod
    def _stage(in_planes, planes, n, stride):
        blocks = []
        for s in [stride] + [1] * (n - 1):
            blocks.append(BasicBlock(in_planes, planes, s))
            in_planes = planes
        return nn.Sequential(*blocks), planes

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    tensors = {}
    for name, info in header.items():
        lo, hi = info["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        tensors[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return tensors, meta


def load(path):
    """Returns the torch ResNet of a kdcal resnet model file (strict state_dict load) and its metadata."""
    tensors, meta = read_safetensors(path)
    m = json.loads(meta["kdcal_model"])
    if m["family"] != "resnet":
        sys.exit("%s: family %r, not resnet" % (path, m["family"]))
    c, _, _ = m["input"]
    model = ResNet(int(m["spec"]["depth"]), int(m["spec"]["width"]), c, m["classes"])
    model.load_state_dict(tensors, strict=True)
    return model, m


def main(args):
    if len(args) != 3:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    model, m = load(args[0])
    c, h, w = m["input"]
    x = torch.from_numpy(np.load(args[1]).astype(np.float32).reshape(-1, c, h, w))
    os.makedirs(args[2], exist_ok=True)
    model.eval()
    with torch.no_grad():
        np.save(os.path.join(args[2], "logits_eval.npy"), model(x).numpy())
        tracked = int(model.bn1.num_batches_tracked)
        model.train()
        np.save(os.path.join(args[2], "logits_train.npy"), model(x).numpy())
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"params": params, "tracked": tracked, "depth": m["spec"]["depth"], "width": m["spec"]["width"]}))


if __name__ == "__main__":
    main(sys.argv[1:])
