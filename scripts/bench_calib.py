#!/usr/bin/env python3
"""numpy peer of kdcal's calibration and metrics benchmarks (issues #4, #8).

  gen DIR      write DIR/logits_<N>x<C>.npy (float64) and labels_<N>x<C>.npy (int64)
               for 1000000x10 and 10000x100: Z ~ 1.5·N(0,1), labels drawn from
               softmax(Z) (Gumbel-max), logits 2.5·Z (over-confident, true T = 2.5)
  time DIR     time numpy doing what each Go benchmark does, on the same arrays,
               and print JSON {"<Benchmark>/<N>x<C>": milliseconds (fastest of repeats)}
  report GO NP... print a table of Go (go test -bench output file GO) vs numpy (JSON files NP)

Timings are the fastest of several runs on both sides: on a shared machine other
processes only ever add time, so the minimum is the least disturbed estimate.

The numpy code is written the way a careful numpy user would (no Python loops over
examples, in-place where it helps, einsum for row dot products); every function does
the same work as its Go counterpart:

  BenchmarkCalibECE       top-label ECE, 15 equal-width bins (lo, hi], from probabilities
  BenchmarkCalibNLL       mean NLL from logits (stable log-softmax)
  BenchmarkCalibBrier     multiclass Brier score from probabilities
  BenchmarkCalibEvaluate  softmax + accuracy, nll, brier, ece, mce, ece_em, cw_ece from logits
  BenchmarkCalibTempFit   temperature fit to |delta log T| < 1e-10; two numpy peers:
                          "newton": kdcal's algorithm (bracket from [0.05, 20], safeguarded
                          Newton with analytic derivatives, one pass = F, F', F'');
                          "golden": golden-section search on log T over [log 0.05, log 20]
                          to a bracket of 1e-10 (derivative-free, the common recipe)
Run with Debian's /usr/bin/python3 (numpy); scripts/bench_calib.sh drives all of it.
"""
import json
import math
import re
import sys
import time

import numpy as np

SHAPES = [(1000000, 10), (10000, 100)]
M = 15


def gen(d):
    rng = np.random.default_rng(20240501)
    for n, c in SHAPES:
        z = 1.5 * rng.standard_normal((n, c))
        y = np.argmax(z + rng.gumbel(size=(n, c)), axis=1).astype(np.int64)
        np.save(f"{d}/logits_{n}x{c}.npy", np.ascontiguousarray(2.5 * z))
        np.save(f"{d}/labels_{n}x{c}.npy", y)


def softmax(z):
    e = z - z.max(axis=1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=1, keepdims=True)
    return e


def nll(z, y):
    m = z.max(axis=1)
    e = z - m[:, None]
    np.exp(e, out=e)
    return float(np.mean(np.log(e.sum(axis=1)) + m - z[np.arange(len(y)), y]))


EDGES = np.arange(M + 1) / M


def bins_of(x):
    return np.clip(np.searchsorted(EDGES, x, side="left") - 1, 0, M - 1)


def reliability(conf, correct):
    b = bins_of(conf)
    cnt = np.bincount(b, minlength=M)
    return cnt, np.bincount(b, weights=conf, minlength=M), np.bincount(b, weights=correct, minlength=M)


def toplabel(p, y):
    pred = p.argmax(axis=1)
    conf = np.take_along_axis(p, pred[:, None], axis=1)[:, 0]
    return conf, (pred == y).astype(np.float64)


def ece(p, y):
    conf, correct = toplabel(p, y)
    _, sc, sa = reliability(conf, correct)
    return float(np.abs(sa - sc).sum() / len(y))


def brier(p, y):
    return float(np.mean(np.einsum("ij,ij->i", p, p) - 2 * p[np.arange(len(y)), y] + 1))


def evaluate(z, y):
    n, c = z.shape
    p = softmax(z)
    conf, correct = toplabel(p, y)
    cnt, sc, sa = reliability(conf, correct)
    nz = cnt > 0
    gaps = np.abs(sa[nz] / cnt[nz] - sc[nz] / cnt[nz])
    order = np.argsort(conf, kind="stable")
    em = 0.0
    for k in range(M):
        idx = order[k * n // M:(k + 1) * n // M]
        em += abs(correct[idx].sum() - conf[idx].sum())
    cw = 0.0
    for k in range(c):
        bk = bins_of(p[:, k])
        cw += np.abs(np.bincount(bk, weights=(y == k), minlength=M) - np.bincount(bk, weights=p[:, k], minlength=M)).sum()
    return {
        "accuracy": correct.mean(), "nll": nll(z, y), "brier": brier(p, y),
        "ece": np.abs(sa - sc).sum() / n, "mce": gaps.max(), "ece_em": em / n, "cw_ece": cw / n / c,
    }


def temp_newton(z, y):
    """kdcal's algorithm (internal/calibrate/temp.go) in numpy."""
    m = z.max(axis=1)
    d = z - m[:, None]
    dy = d[np.arange(len(y)), y]
    evals = 0

    def ev(u):
        nonlocal evals
        evals += 1
        beta = math.exp(-u)
        w = np.exp(beta * d)
        s0 = w.sum(axis=1)
        wd = w * d
        s1 = wd.sum(axis=1)
        s2 = np.einsum("ij,ij->i", wd, d)
        e = s1 / s0
        f = np.mean(np.log(s0) - beta * dy)
        d1 = np.mean(e - dy)
        d2 = np.mean(np.maximum(s2 / s0 - e * e, 0))
        return f, -beta * d1, beta * beta * d2 + beta * d1

    x = 0.0
    f, g, h = ev(x)
    a = b = x
    if g > 0:
        nxt = math.log(0.05)
        while True:
            _, ga, _ = ev(nxt)
            if ga < 0:
                a = nxt
                break
            b, nxt = nxt, max(nxt - math.log(20), math.log(1e-4))
    else:
        nxt = math.log(20)
        while True:
            _, gb, _ = ev(nxt)
            if gb > 0:
                b = nxt
                break
            a, nxt = nxt, min(nxt + math.log(20), math.log(1e4))
    dxold = dx = b - a
    for _ in range(200):
        newton = x - g / h if h > 0 else float("nan")
        if not (h > 0 and a < newton < b) or abs(2 * g) > abs(dxold * h):
            dxold, dx = dx, (b - a) / 2
            newton = a + dx
        else:
            dxold, dx = dx, newton - x
        step = newton - x
        x = newton
        f, g, h = ev(x)
        if abs(g) < 1e-12 or abs(step) < 1e-10 or b - a < 1e-10:
            break
        if g < 0:
            a = x
        else:
            b = x
    return math.exp(x), evals


def temp_golden(z, y):
    zy = z[np.arange(len(y)), y]
    evals = 0

    def f(u):
        nonlocal evals
        evals += 1
        s = z * math.exp(-u)
        m = s.max(axis=1)
        s -= m[:, None]
        np.exp(s, out=s)
        return float(np.mean(np.log(s.sum(axis=1)) + m - zy * math.exp(-u)))

    a, b = math.log(0.05), math.log(20)
    r = (math.sqrt(5) - 1) / 2
    c, d = b - r * (b - a), a + r * (b - a)
    fc, fd = f(c), f(d)
    while b - a > 1e-10:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - r * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + r * (b - a)
            fd = f(d)
    return math.exp((a + b) / 2), evals


def timeit(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * min(ts)


def run_time(d):
    out, info = {}, {}
    for n, c in SHAPES:
        z = np.load(f"{d}/logits_{n}x{c}.npy")
        y = np.load(f"{d}/labels_{n}x{c}.npy")
        p = softmax(z)
        big = n * c >= 10**7
        r = 5 if big else 30
        s = f"{n}x{c}"
        out[f"BenchmarkCalibECE/{s}"] = timeit(lambda: ece(p, y), r)
        out[f"BenchmarkCalibNLL/{s}"] = timeit(lambda: nll(z, y), r)
        out[f"BenchmarkCalibBrier/{s}"] = timeit(lambda: brier(p, y), r)
        out[f"BenchmarkCalibEvaluate/{s}"] = timeit(lambda: evaluate(z, y), 3 if big else r)
        out[f"BenchmarkCalibTempFit/{s}"] = timeit(lambda: temp_newton(z, y), 3 if big else 10)
        out[f"BenchmarkCalibTempFit/{s}[golden]"] = timeit(lambda: temp_golden(z, y), 1 if big else 3)
        tn, en = temp_newton(z, y)
        tg, eg = temp_golden(z, y)
        info[s] = {"T_newton": tn, "passes_newton": en, "T_golden": tg, "passes_golden": eg}
    json.dump({"ms": out, "info": info}, sys.stdout, indent=1)


def report(gofile, *npfiles):
    runs = [json.load(open(f)) for f in npfiles]
    ms = {k: min(r["ms"][k] for r in runs) for k in runs[0]["ms"]}
    info = runs[0]["info"]
    go = {}  # name -> {cpus: [ms]}
    for line in open(gofile):
        mt = re.match(r"^(BenchmarkCalib\S+?)(?:-(\d+))?\s+\d+\s+([\d.]+) ns/op", line)
        if mt:
            go.setdefault(mt.group(1), {}).setdefault(int(mt.group(2) or 1), []).append(float(mt.group(3)) / 1e6)
    cpus = sorted({k for v in go.values() for k in v})
    hdr = f"{'benchmark':<26}{'shape':<14}{'numpy ms':>10}" + "".join(f"{'Go ms '+str(k)+'cpu':>13}{'ratio':>8}" for k in cpus)
    print(hdr)
    print("-" * len(hdr))
    for key, np_ms in ms.items():
        name, shape = key.split("/", 1)
        peer = ""
        if shape.endswith("[golden]"):
            shape, peer = shape[:-8], " (golden)"
        elif name == "BenchmarkCalibTempFit":
            peer = " (newton)"
        g = go.get(f"{name}/{shape}", {})
        row = f"{name.replace('BenchmarkCalib', '') + peer:<26}{shape:<14}{np_ms:>10.1f}"
        for k in cpus:
            if k in g:
                gm = min(g[k])
                row += f"{gm:>13.2f}{np_ms / gm:>7.1f}x"
            else:
                row += f"{'-':>13}{'-':>8}"
        print(row)
    print()
    for s, v in info.items():
        print(f"temp fit {s}: numpy newton T={v['T_newton']:.9f} in {v['passes_newton']} passes; "
              f"numpy golden T={v['T_golden']:.9f} in {v['passes_golden']} passes")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2])
    elif cmd == "time":
        run_time(sys.argv[2])
    elif cmd == "report":
        report(sys.argv[2], *sys.argv[3:])
    else:
        sys.exit(__doc__)
