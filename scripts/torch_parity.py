#!/usr/bin/env python3
"""PyTorch cross-check of kdcal's training recipes (issue 13 item 1): data.normalize and *.train.init.

Trains the MLP teachers 784-W-W-10 that kdcal trains for `teacher.family: mlp` with
`hidden: [W, W]`, on the same Fashion-MNIST train and validation rows, and prints per
(recipe, width, seed) the temperature T fitted on the validation logits and the
validation and test accuracies, so that they can be set next to kdcal's.

  data      Fashion-MNIST IDX files in --data/fashion-mnist. The train and validation rows
            are read from --index-dir (index_train.npy, index_val.npy: positions in the
            official training set, as a kdcal teacher step writes them), the test set is
            the official one in official order.
  recipes   unit-torch:      x/255 (torchvision's ToTensor), torch's default init
                             (nn.Linear.reset_parameters: kaiming_uniform_(a=√5) → weight
                             U(±1/√fan_in); bias U(±1/√fan_in));
                             kdcal: data.normalize unit, teacher.train.init torch.
            standardize-he:  (x/255 − mean)/std with the train rows' mean and population
                             std (one channel), hidden weights He uniform U(±√(6/fan_in)),
                             output weights Glorot uniform U(±√(6/(fan_in+fan_out))),
                             biases 0 (kdcal's internal/model Weights.Init);
                             kdcal: data.normalize standardize, teacher.train.init he
                             (kdcal's defaults).
  training  Adam (β 0.9/0.999, ε 1e-8), --lr (1e-3) with --schedule constant or cosine
            (per step, as kdcal), --batch (128) with the last partial batch kept, a fresh
            permutation per epoch, --epochs; the final epoch's model is evaluated (kdcal
            keeps no best-epoch snapshot).
  calibrate T = exp(u) minimising the mean validation NLL of softmax(z/T) (L-BFGS on u,
            float64), as kdcal's temp calibrator fits it.

Measured (2026-12-01, 2 shared cores, Fashion-MNIST split of data.split_seed 0 / val_fraction
0.1, 54,000 train rows, Adam 1e-3 constant, batch 128, seeds 0 and 1; mean of the two seeds;
kdcal = `kdcal train-teachers` + `kdcal calibrate` with teacher.family mlp, hidden [W, W]):

  epochs  recipe          W    T kdcal  T torch   test acc kdcal  torch
  10      unit-torch      32   1.004    1.003     86.23           86.19
  10      unit-torch      128  1.111    1.136     87.67           87.80
  10      unit-torch      512  1.243    1.282     88.20           88.60
  10      standardize-he  32   1.164    1.134     87.00           87.41
  10      standardize-he  128  1.333    1.293     88.07           88.50
  10      standardize-he  512  1.468    1.497     88.50           88.70
  30      unit-torch      32   1.226    1.209     87.10           87.23
  30      unit-torch      128  1.811    1.746     88.41           89.03
  30      standardize-he  32   1.538    1.494     87.08           87.18
  30      standardize-he  128  2.278    2.284     88.67           88.52
  30      unit-torch      512  2.395    2.214     89.65           89.38   (seed 0 only)
  30      standardize-he  512  2.851    2.846     89.23           88.97   (seed 0 only)

With two seeds, |ΔT| ≤ 0.066 and |Δacc| ≤ 0.62 points, within two seeds' spread (up to 0.13 in
T, 0.7 points); the one-seed W = 512, 30-epoch unit-torch pair differs by 0.18 in T (not yet
measured with a second seed). The recipe moves T by 0.2–0.5 (W = 128, 30 epochs: 1.81 → 2.28 in kdcal, 1.75 → 2.28
in torch). internal/train's TestTorchParity runs a small version (W = 64, 6,000 rows, 10 epochs).

Output: one JSON object per line on stdout,
  {"recipe": ..., "width": W, "seed": s, "T": ..., "val_acc": ..., "test_acc": ..., "test_ece": ...}
(ECE: 15 equal-width bins of the top-label confidence). Runs with one thread
(torch.set_num_threads(1)). Usage:

  /usr/bin/python3 scripts/torch_parity.py --data data --index-dir DIR \
      [--recipe unit-torch,standardize-he] [--widths 32,128,512] [--seeds 0,1] [--epochs 30]
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_study import fit_temperature, logits_of, read_idx, summary

CLASSES = 10
RECIPES = ("unit-torch", "standardize-he")


def load(a, recipe):
    d = os.path.join(a.data, "fashion-mnist")
    xtr = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255
    ytr = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    xte = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255
    yte = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    tr = np.load(os.path.join(a.index_dir, "index_train.npy"))
    va = np.load(os.path.join(a.index_dir, "index_val.npy"))
    if recipe == "standardize-he":
        x = xtr[tr].astype(np.float64)
        mean = x.mean()
        std = math.sqrt(max((x * x).mean() - mean * mean, 0))
        norm = lambda v: ((v - np.float32(mean)) / np.float32(std)).astype(np.float32)
    else:
        norm = lambda v: v
    return {"train": (norm(xtr[tr]), ytr[tr]), "val": (norm(xtr[va]), ytr[va]), "test": (norm(xte), yte)}


def mlp(width, recipe):
    model = nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, CLASSES))
    if recipe == "standardize-he":
        linears = [m for m in model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for i, m in enumerate(linears):
                fan_out, fan_in = m.weight.shape
                bound = math.sqrt(6 / (fan_in + fan_out)) if i == len(linears) - 1 else math.sqrt(6 / fan_in)
                m.weight.uniform_(-bound, bound)
                m.bias.zero_()
    return model


def train(model, splits, a, seed):
    x, y = splits["train"]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    total, step = a.epochs * math.ceil(len(x) / a.batch), 0
    g = torch.Generator().manual_seed(seed)
    for _ in range(a.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), a.batch):
            if a.schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = a.lr * (1 + math.cos(math.pi * step / total)) / 2
            idx = perm[i : i + a.batch]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            step += 1
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="data directory holding fashion-mnist/")
    p.add_argument("--index-dir", required=True, help="directory with index_train.npy and index_val.npy")
    p.add_argument("--recipe", default=",".join(RECIPES), help="comma-separated: " + ", ".join(RECIPES))
    p.add_argument("--widths", default="32,128,512")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    a = p.parse_args()
    torch.set_num_threads(1)
    for recipe in a.recipe.split(","):
        if recipe not in RECIPES:
            p.error(f"--recipe: unknown recipe {recipe!r} (use {', '.join(RECIPES)})")
        splits = load(a, recipe)
        for w in map(int, a.widths.split(",")):
            for seed in map(int, a.seeds.split(",")):
                torch.manual_seed(1000 * seed + w)
                model = train(mlp(w, recipe), splits, a, seed)
                zv, zt = logits_of(model, splits["val"][0], 1024), logits_of(model, splits["test"][0], 1024)
                va = summary(zv, splits["val"][1])["accuracy"]
                test = summary(zt, splits["test"][1])
                ta, te = test["accuracy"], test["ece"]
                T = fit_temperature(zv, splits["val"][1])
                print(json.dumps({"recipe": recipe, "width": w, "seed": seed, "T": T, "val_acc": va, "test_acc": ta, "test_ece": te}), flush=True)


if __name__ == "__main__":
    main()
