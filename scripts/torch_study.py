#!/usr/bin/env python3
"""PyTorch peer of `kdcal run --config configs/quick.yaml` (make bench's end-to-end line).

Runs the same study as kdcal's quick preset, with the same work per step, so that
the two wall times compare:

  data      Fashion-MNIST; validation = 10% of the official train set per class;
            train = a stratified 12,000 of the rest; x/255 normalised by the train
            split's mean and std (kdcal's internal/data). With --index-from EXP, the
            train and validation positions are read from a kdcal experiment
            (teachers/*/seed-*/index_{train,val}.npy), so both use the same examples.
  teachers  CNN tiny/small/medium/large (conv [4,8]/[8,16]/[16,32]/[32,64], 3x3 pad 1,
            ReLU, 2x2 max-pool; dense [32]/[64]/[128]/[128]; Linear to 10), seeds 0-2,
            10 epochs, Adam lr 1e-3, cosine schedule per step, batch 128, a validation
            pass every epoch, then logits on train, validation and test.
  calibrate temperature scaling of each teacher on its validation logits (1-D NLL
            minimisation), ECE (15 equal-width bins) before and after on val and test.
  students  MLP 784-64-10, 10 epochs, same recipe; per teacher, τ ∈ {1, 4} and arms
            raw (softmax(t/τ)) and calibrated (softmax(t/(τ·T))), loss
            0.1·CE + 0.9·τ²·KL(p_T ‖ softmax(s/τ)); plus a scratch student per seed.
            Validation every epoch, then validation and test logits.

Each step writes its logits (.npy), weights (torch.save) and a summary.json under
--out, as kdcal's steps write theirs. Steps run in --workers processes (default 2,
as kdcal's 2 workers on this machine), one thread each (torch.set_num_threads(1)),
a student as soon as its teacher is done. kdcal's report stage has no peer here.

Usage: /usr/bin/python3 scripts/torch_study.py --data data [--index-from EXP] [--out DIR]
Prints per-stage and total wall seconds; the last line is "total <seconds>".
"""
import argparse
import gzip
import json
import math
import multiprocessing as mp
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TEACHERS = {
    "tiny": ([4, 8], [32]),
    "small": ([8, 16], [64]),
    "medium": ([16, 32], [128]),
    "large": ([32, 64], [128]),
}
STUDENT_HIDDEN = [64]
CLASSES = 10
BINS = 15


def read_idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    ndim = b[3]
    dims = [int.from_bytes(b[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def stratified_split(y, frac, rng):
    val = []
    for c in range(CLASSES):
        members = np.flatnonzero(y == c)
        rng.shuffle(members)
        val.extend(members[: int(round(frac * len(members)))])
    val = np.sort(np.array(val))
    return np.setdiff1d(np.arange(len(y)), val), val


def stratified_subset(y, idx, limit, rng):
    groups = [idx[y[idx] == c] for c in range(CLASSES)]
    exact = np.array([limit * len(g) / len(idx) for g in groups])
    quota = np.floor(exact).astype(int)
    for c in np.argsort(-(exact - quota), kind="stable")[: limit - quota.sum()]:
        quota[c] += 1
    out = []
    for g, q in zip(groups, quota):
        g = g.copy()
        rng.shuffle(g)
        out.extend(g[:q])
    return np.sort(np.array(out))


def load(a):
    d = os.path.join(a.data, "fashion-mnist")
    xtr = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255
    ytr = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    xte = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255
    yte = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    if a.index_from:
        tdir = os.path.join(a.index_from, "teachers", next(iter(TEACHERS)), f"seed-{a.seeds[0]}")
        tr, va = np.load(os.path.join(tdir, "index_train.npy")), np.load(os.path.join(tdir, "index_val.npy"))
    else:
        rng = np.random.default_rng(0)
        tr, va = stratified_split(ytr, 0.1, rng)
        tr = stratified_subset(ytr, tr, a.train_limit, rng)
    mean, std = xtr[tr].mean(), xtr[tr].std()
    norm = lambda x: ((x - mean) / std)[:, None, :, :]
    return {"train": (norm(xtr[tr]), ytr[tr]), "val": (norm(xtr[va]), ytr[va]), "test": (norm(xte), yte)}


def cnn(conv, hidden):
    layers, ch, hw = [], 1, 28
    for out in conv:
        layers += [nn.Conv2d(ch, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        ch, hw = out, hw // 2
    layers.append(nn.Flatten(1))
    n = ch * hw * hw
    for h in hidden:
        layers += [nn.Linear(n, h), nn.ReLU()]
        n = h
    return nn.Sequential(*layers, nn.Linear(n, CLASSES))


def mlp(hidden):
    layers, n = [nn.Flatten(1)], 28 * 28
    for h in hidden:
        layers += [nn.Linear(n, h), nn.ReLU()]
        n = h
    return nn.Sequential(*layers, nn.Linear(n, CLASSES))


def logits_of(model, x, bs=256):
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(torch.from_numpy(x[i : i + bs])) for i in range(0, len(x), bs)])
    model.train()
    return out.numpy().astype(np.float64)


def summary(z, y):
    """Accuracy, NLL and top-label ECE (15 equal-width bins) of logits z."""
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    p = np.exp(logp)
    conf, pred = p.max(1), p.argmax(1)
    correct = (pred == y).astype(np.float64)
    bins = np.minimum((conf * BINS).astype(int), BINS - 1)
    ece = sum(abs(correct[bins == b].sum() - conf[bins == b].sum()) for b in range(BINS)) / len(y)
    return {"accuracy": correct.mean(), "nll": -logp[np.arange(len(y)), y].mean(), "ece": ece}


def fit_temperature(z, y):
    """T = exp(u) minimising the mean validation NLL of softmax(z/T) (L-BFGS on u)."""
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    u = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([u], lr=1, max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(zt * torch.exp(-u), yt)
        loss.backward()
        return loss

    opt.step(closure)
    return float(torch.exp(u))


def train(model, splits, epochs, bs, lr, seed, targets=None, tau=1.0, ce_w=1.0, kd_w=0.0):
    """Adam with a per-step cosine schedule; a validation pass after every epoch."""
    x, y = splits["train"]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    pt = torch.from_numpy(targets) if targets is not None else None
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(x) / bs)
    total, step = epochs * steps_per_epoch, 0
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):
            for group in opt.param_groups:
                group["lr"] = lr * (1 + math.cos(math.pi * step / total)) / 2
            idx = perm[i : i + bs]
            s = model(xt[idx])
            loss = ce_w * F.cross_entropy(s, yt[idx])
            if pt is not None:
                loss = loss + kd_w * tau * tau * F.kl_div(F.log_softmax(s / tau, 1), pt[idx], reduction="batchmean")
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            step += 1
        summary(logits_of(model, splits["val"][0]), splits["val"][1])
    return model


def save_step(out, key, model, logits, info):
    d = os.path.join(out, key)
    os.makedirs(d, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(d, "model.pt"))
    for split, z in logits.items():
        np.save(os.path.join(d, f"logits_{split}.npy"), z.astype(np.float32))
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(info, f, indent=2, default=float)


SPLITS, ARGS = None, None


def init_worker():
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def teacher_task(size, seed):
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    conv, hidden = TEACHERS[size]
    model = train(cnn(conv, hidden), SPLITS, ARGS.epochs, ARGS.batch, ARGS.lr, seed)
    z = {s: logits_of(model, SPLITS[s][0]) for s in ("train", "val", "test")}
    info = {s: summary(z[s], SPLITS[s][1]) for s in ("val", "test")}
    save_step(ARGS.out, f"teachers/{size}/seed-{seed}", model, z, info)
    t1 = time.perf_counter()
    # Calibration step: temperature scaling on the validation logits.
    temp = fit_temperature(z["val"], SPLITS["val"][1])
    cal = {s: {"before": summary(z[s], SPLITS[s][1]), "after": summary(z[s] / temp, SPLITS[s][1])} for s in ("val", "test")}
    d = os.path.join(ARGS.out, f"calibration/temp/{size}/seed-{seed}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "metrics.json"), "w") as f:
        json.dump({"temperature": temp, **cal}, f, indent=2, default=float)
    return size, seed, z["train"], temp, t1 - t0, time.perf_counter() - t1


def soften(z, t):
    z = z / t
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def student_task(key, seed, targets, tau):
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    kd = targets is not None
    model = train(mlp(STUDENT_HIDDEN), SPLITS, ARGS.student_epochs, ARGS.batch, ARGS.lr, seed, targets=targets,
                  tau=tau, ce_w=ARGS.ce_weight if kd else 1.0, kd_w=ARGS.kd_weight if kd else 0.0)
    z = {s: logits_of(model, SPLITS[s][0]) for s in ("val", "test")}
    save_step(ARGS.out, key, model, z, {s: summary(z[s], SPLITS[s][1]) for s in ("val", "test")})
    return key, time.perf_counter() - t0


def main():
    global SPLITS, ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data", help="kdcal's data directory (holds fashion-mnist/*.gz)")
    ap.add_argument("--index-from", help="a kdcal experiment whose teachers' index_*.npy give the splits")
    ap.add_argument("--out", help="output directory (default: a temporary one, removed)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=12000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sizes", nargs="+", default=list(TEACHERS))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--student-epochs", type=int, default=10)
    ap.add_argument("--taus", type=float, nargs="+", default=[1.0, 4.0])
    ap.add_argument("--kd-weight", type=float, default=0.9)
    ap.add_argument("--ce-weight", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ARGS = ap.parse_args()
    tmp = None
    if not ARGS.out:
        tmp = tempfile.TemporaryDirectory(prefix="torch_study")
        ARGS.out = tmp.name
    start = time.perf_counter()
    torch.set_num_threads(1)
    SPLITS = load(ARGS)
    t_data = time.perf_counter() - start
    ctx = mp.get_context("fork")  # workers inherit SPLITS
    pending, busy = [], {"teacher": 0.0, "calibration": 0.0, "student": 0.0}
    with ctx.Pool(ARGS.workers, initializer=init_worker) as pool:
        teachers = [pool.apply_async(teacher_task, (size, seed)) for size in ARGS.sizes for seed in ARGS.seeds]
        for seed in ARGS.seeds:
            pending.append(pool.apply_async(student_task, (f"students/scratch-ep{ARGS.student_epochs}/seed-{seed}", seed, None, 1.0)))
        for r in teachers:  # in submission order; a student is queued as soon as its teacher returns
            size, seed, ztrain, temp, t_teach, t_cal = r.get()
            busy["teacher"] += t_teach
            busy["calibration"] += t_cal
            for tau in ARGS.taus:
                setting = f"tau{tau:g}-kdw{ARGS.kd_weight:g}-ep{ARGS.student_epochs}"
                for arm, t in (("raw", 1.0), ("calibrated", temp)):
                    key = f"students/{setting}/{arm}/{size}/seed-{seed}"
                    pending.append(pool.apply_async(student_task, (key, seed, soften(ztrain, tau * t), tau)))
        for r in pending:
            busy["student"] += r.get()[1]
    total = time.perf_counter() - start
    n_t = len(teachers)
    print(f"torch {torch.__version__}, {ARGS.workers} workers x 1 thread, {n_t} teachers + {n_t} calibrations + {len(pending)} students")
    print(f"data {t_data:.1f}")
    for k, v in busy.items():
        print(f"{k}-busy {v:.1f}")  # summed over workers
    print(f"total {total:.1f}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
