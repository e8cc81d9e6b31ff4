"""Independent numpy implementation of kdcal's metrics, for metrics_numpy_test.go.

Usage: crosscheck.py DIR M
Reads DIR/logits.npy (N×C), DIR/labels.npy (N) and DIR/probs.npy, DIR/probs_labels.npy,
prints one JSON object {"logits": {...}, "probs": {...}} with every metric of
metrics.Summary plus the reliability bins, computed with plain numpy:
bin b holds edges[b] < conf <= edges[b+1] with edges = arange(M+1)/M (found with
searchsorted, not with ceil as in Go), the first bin also takes 0.
"""
import json
import sys

import numpy as np


def summary(probs, y, nll, m):
    n, c = probs.shape
    pred = probs.argmax(axis=1)  # first index on ties
    conf = probs[np.arange(n), pred]
    correct = (pred == y).astype(np.float64)
    edges = np.arange(m + 1) / m

    def bin_of(x):
        return np.clip(np.searchsorted(edges, x, side="left") - 1, 0, m - 1)

    b = bin_of(conf)
    cnt = np.bincount(b, minlength=m)
    sconf = np.bincount(b, weights=conf, minlength=m)
    shit = np.bincount(b, weights=correct, minlength=m)
    nz = cnt > 0
    acc_b = np.where(nz, shit / np.maximum(cnt, 1), 0.0)
    conf_b = np.where(nz, sconf / np.maximum(cnt, 1), 0.0)
    ece = float(np.sum(cnt * np.abs(acc_b - conf_b)) / n)
    mce = float(np.max(np.abs(acc_b - conf_b)[nz]))
    rmsce = float(np.sqrt(np.sum(cnt * (acc_b - conf_b) ** 2) / n))
    # Kumar et al. 2019's debiased l2 error (their unbiased_square_ce): per bin with at
    # least 2 examples, (mean conf - mean label)^2 - mean label (1 - mean label) / (n_b - 1).
    sq = 0.0
    for k in range(m):
        in_bin = b == k
        nb = int(in_bin.sum())
        if nb < 2:
            continue
        lab = correct[in_bin].mean()
        sq += nb / n * ((conf[in_bin].mean() - lab) ** 2 - lab * (1 - lab) / (nb - 1))
    ece_debiased_l2 = float(np.sqrt(max(sq, 0.0)))

    order = np.argsort(conf, kind="stable")
    em = 0.0
    for k in range(m):
        idx = order[k * n // m:(k + 1) * n // m]
        em += abs(correct[idx].sum() - conf[idx].sum())
    em /= n

    cw = 0.0
    for k in range(c):
        p = probs[:, k]
        bk = bin_of(p)
        hits = np.bincount(bk, weights=(y == k).astype(np.float64), minlength=m)
        sp = np.bincount(bk, weights=p, minlength=m)
        cw += np.abs(hits - sp).sum()
    cw /= n * c

    onehot = np.zeros_like(probs)
    onehot[np.arange(n), y] = 1
    brier = float(((probs - onehot) ** 2).sum(axis=1).mean())
    return {
        "n": n, "accuracy": float(correct.mean()), "nll": float(nll), "brier": brier,
        "ece": ece, "mce": mce, "rmsce": rmsce, "ece_debiased_l2": ece_debiased_l2, "ece_em": float(em), "cw_ece": float(cw), "bins": m,
        "reliability": [{"lo": float(edges[k]), "hi": float(edges[k + 1]), "count": int(cnt[k]),
                         "accuracy": float(acc_b[k]), "confidence": float(conf_b[k])} for k in range(m)],
    }


def main():
    d, m = sys.argv[1], int(sys.argv[2])
    z = np.load(d + "/logits.npy").astype(np.float64)
    y = np.load(d + "/labels.npy").astype(np.int64)
    zmax = z.max(axis=1, keepdims=True)
    e = np.exp(z - zmax)
    s = e.sum(axis=1, keepdims=True)
    probs = e / s
    nll = np.mean(np.log(s[:, 0]) - (z[np.arange(len(y)), y] - zmax[:, 0]))
    out = {"logits": summary(probs, y, nll, m)}

    p = np.load(d + "/probs.npy").astype(np.float64)
    py = np.load(d + "/probs_labels.npy").astype(np.int64)
    pnll = -np.mean(np.log(np.maximum(p[np.arange(len(py)), py], 1e-12)))
    out["probs"] = summary(p, py, pnll, m)
    json.dump(out, sys.stdout)


main()
