"""scikit-learn isotonic regression and numpy ECE, for edges_test.go.

Usage: crosscheck_isotonic.py DIR M...
Fits sklearn.isotonic.IsotonicRegression(out_of_bounds="clip") on DIR/val_conf.npy
(top-label confidences) and DIR/val_correct.npy (1.0 correct, 0.0 wrong), calibrates
DIR/test_conf.npy and prints {"<M>": {"ece": ..., "conf": [...], "on_edge": k}, ...}: the top-label ECE
of the calibrated test confidences with DIR/test_correct.npy over M equal-width bins
(lo, hi] with edges arange(M+1)/M (searchsorted, the first bin also takes 0), the
calibrated confidences, and how many of them sit exactly on an inner edge.
"""
import json
import sys

import numpy as np
from sklearn.isotonic import IsotonicRegression

d = sys.argv[1]
iso = IsotonicRegression(out_of_bounds="clip").fit(np.load(d + "/val_conf.npy"), np.load(d + "/val_correct.npy"))
q = iso.predict(np.load(d + "/test_conf.npy"))
correct = np.load(d + "/test_correct.npy")
out = {}
for m in map(int, sys.argv[2:]):
    edges = np.arange(m + 1) / m
    b = np.clip(np.searchsorted(edges, q, side="left") - 1, 0, m - 1)
    gap = np.abs(np.bincount(b, weights=correct, minlength=m) - np.bincount(b, weights=q, minlength=m))
    out[str(m)] = {"ece": float(gap.sum() / len(q)), "conf": [float(x) for x in q],
                   "on_edge": int(np.isin(q, edges[1:-1]).sum())}
json.dump(out, sys.stdout)
