#!/usr/bin/env python3
"""Load a kdcal model.safetensors into PyTorch and compare its logits with kdcal's.

The safetensors file is parsed by hand with numpy (Debian has no safetensors
module) by scripts/torch_resnet.py's read_safetensors. The torch module is
built from the metadata entry "kdcal_model" and loaded with
load_state_dict(strict=True), so every tensor name and shape must match.

Usage: torch_check.py MODEL.safetensors X.npy LOGITS.npy [TOL]
  X.npy      N×D float32 inputs, already normalised as kdcal feeds them
  LOGITS.npy N×C float32 logits kdcal computed for them
Prints a JSON line {"n":..., "max_abs_diff":..., "params":...}; exits 1 when
the largest difference exceeds TOL (default 1e-5, relative to max(1, |logit|)).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

# The safetensors reader is scripts/torch_resnet.py's (one parser for both
# cross-checks).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
from torch_resnet import read_safetensors  # noqa: E402


class KdcalNet(nn.Module):
    """The network described by kdcal's "layout" metadata."""

    def __init__(self, m):
        super().__init__()
        c, h, w = m["input"]
        self.n_conv = len(m.get("conv") or [])
        self.n_hidden = len(m["hidden"] or [])
        for i, out in enumerate(m.get("conv") or []):
            setattr(self, f"conv{i}", nn.Conv2d(c, out, 3, stride=1, padding=1))
            c, h, w = out, h // 2, w // 2
        n = c * h * w
        for i, out in enumerate(m["hidden"] or []):
            setattr(self, f"fc{i}", nn.Linear(n, out))
            n = out
        self.out = nn.Linear(n, m["classes"])
        self.input = m["input"]

    def forward(self, x):
        if self.n_conv:
            x = x.reshape(-1, *self.input)
            for i in range(self.n_conv):
                x = nn.functional.max_pool2d(torch.relu(getattr(self, f"conv{i}")(x)), 2)
        x = x.flatten(1)
        for i in range(self.n_hidden):
            x = torch.relu(getattr(self, f"fc{i}")(x))
        return self.out(x)


def main():
    path, xpath, lpath = sys.argv[1:4]
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-5
    tensors, meta = read_safetensors(path)
    m = json.loads(meta["kdcal_model"])
    net = KdcalNet(m)
    net.load_state_dict(tensors, strict=True)
    x = np.load(xpath)
    want = np.load(lpath)
    assert x.dtype == np.float32 and want.dtype == np.float32, (x.dtype, want.dtype)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
    params = sum(p.numel() for p in net.parameters())
    print(json.dumps({"n": int(x.shape[0]), "max_abs_diff": diff, "params": params}))
    sys.exit(0 if diff <= tol else 1)


if __name__ == "__main__":
    main()
