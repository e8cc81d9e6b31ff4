"""Independent numpy temperature fit, for temp_numpy_test.go.

Usage: crosscheck_temp.py LOGITS.npy LABELS.npy
Minimises the mean NLL of softmax(z/T) over u = log T by golden-section
search on [log 0.05, log 20] until the bracket is shorter than 1e-10 (a
different algorithm from kdcal's Newton: no derivatives), and prints
{"temperature": T, "nll_before": ..., "nll_after": ...}.
"""
import json
import math
import sys

import numpy as np

z = np.load(sys.argv[1]).astype(np.float64)
y = np.load(sys.argv[2]).astype(np.int64)
zy = z[np.arange(len(y)), y]


def nll(u):
    s = z / math.exp(u)
    m = s.max(axis=1)
    return float(np.mean(np.log(np.exp(s - m[:, None]).sum(axis=1)) + m - zy / math.exp(u)))


a, b = math.log(0.05), math.log(20)
g = (math.sqrt(5) - 1) / 2
c, d = b - g * (b - a), a + g * (b - a)
fc, fd = nll(c), nll(d)
while b - a > 1e-10:
    if fc < fd:
        b, d, fd = d, c, fc
        c = b - g * (b - a)
        fc = nll(c)
    else:
        a, c, fc = c, d, fd
        d = a + g * (b - a)
        fd = nll(d)
u = (a + b) / 2
json.dump({"temperature": math.exp(u), "nll_before": nll(0.0), "nll_after": nll(u)}, sys.stdout)
