"""Reference values for internal/stats from numpy and scipy (test-only peer).

Reads a JSON list of cases on stdin, writes a JSON list of results on stdout.
Each case is {"kind": ..., ...}; see scipy_test.go for the kinds.
"""
import json
import sys

import numpy as np
from scipy import stats


def spearman(c):
    return {"rho": float(stats.spearmanr(c["x"], c["y"]).correlation)}


def perm_spearman(c):
    # One sample, permutation_type="pairings": scipy enumerates the n!
    # orders of y against the fixed x (two samples would enumerate n!² pairs).
    # The statistic is Spearman's rho (scipy.stats.rankdata, average ranks,
    # then Pearson), vectorised over scipy's batches.
    x, y = np.array(c["x"]), np.array(c["y"])
    rx = stats.rankdata(x) - (len(x) + 1) / 2

    def rho(b, axis=-1):
        rb = stats.rankdata(b, axis=axis)
        rb = rb - rb.mean(axis=axis, keepdims=True)
        return (rb * rx).sum(axis=axis) / np.sqrt((rb * rb).sum(axis=axis) * (rx * rx).sum())

    assert abs(rho(y) - stats.spearmanr(x, y).correlation) < 1e-12
    res = stats.permutation_test((y,), rho, permutation_type="pairings", vectorized=True,
                                 n_resamples=np.inf, alternative="two-sided")
    return {"p": float(res.pvalue), "count": int(len(res.null_distribution))}


def sign_flip(c):
    d = np.array(c["d"])
    res = stats.permutation_test(
        (d,), lambda a, axis=-1: np.mean(a, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=np.inf, alternative="two-sided")
    return {"p": float(res.pvalue), "count": int(len(res.null_distribution))}


def quantiles(c):
    lo, hi = np.quantile(np.sort(c["x"]), [(1 - c["level"]) / 2, (1 + c["level"]) / 2], method="inverted_cdf")
    return {"lo": float(lo), "hi": float(hi)}


def aggregate(c):
    x = np.array([np.nan if v is None else v for v in c["xn"]], dtype=float)
    return {"mean": float(np.nanmean(x)), "std": float(np.nanstd(x, ddof=1))}


KINDS = {"spearman": spearman, "perm_spearman": perm_spearman, "sign_flip": sign_flip,
         "quantiles": quantiles, "aggregate": aggregate}

json.dump([KINDS[c["kind"]](c) for c in json.load(sys.stdin)], sys.stdout)
