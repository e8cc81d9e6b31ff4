"""scipy optimum of vector and matrix scaling, for affine_test.go.

Usage: crosscheck_affine.py LOGITS.npy LABELS.npy L2
Minimises the mean NLL of softmax(a*z + b) (vector) and of softmax(z W^T + b) plus
L2 * (sum of the off-diagonal W_kj^2 + sum of b_k^2) (matrix) with
scipy.optimize.minimize(method="L-BFGS-B") and the analytic gradient, from the identity
map, to max |gradient| <= 1e-10 (no function test), and prints
{"vector": f*, "matrix": f*}. Independent of kdcal: numpy objective, scipy optimiser.
"""
import json
import sys

import numpy as np
from scipy.optimize import minimize

z = np.load(sys.argv[1]).astype(np.float64)
y = np.load(sys.argv[2]).astype(np.int64)
l2 = float(sys.argv[3])
n, c = z.shape
rows = np.arange(n)
off = ~np.eye(c, dtype=bool)


def nll_grad(s):
    s = s - s.max(axis=1, keepdims=True)
    f = np.mean(np.log(np.exp(s).sum(axis=1)) - s[rows, y])
    g = np.exp(s)
    g /= g.sum(axis=1, keepdims=True)
    g[rows, y] -= 1
    return f, g / n


def vector(theta):
    a, b = theta[:c], theta[c:]
    f, g = nll_grad(z * a + b)
    return f, np.concatenate([(g * z).sum(axis=0), g.sum(axis=0)])


def matrix(theta):
    w, b = theta[:c * c].reshape(c, c), theta[c * c:]
    f, g = nll_grad(z @ w.T + b)
    f += l2 * (np.sum((w * off) ** 2) + b @ b)
    return f, np.concatenate([(g.T @ z + 2 * l2 * w * off).ravel(), g.sum(axis=0) + 2 * l2 * b])


out = {}
for name, fg, x0 in [("vector", vector, np.concatenate([np.ones(c), np.zeros(c)])),
                     ("matrix", matrix, np.concatenate([np.eye(c).ravel(), np.zeros(c)]))]:
    r = minimize(fg, x0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 0, "maxiter": 100000})
    out[name] = float(r.fun)
json.dump(out, sys.stdout)
