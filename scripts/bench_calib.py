#!/usr/bin/env python3
"""numpy/scipy peer of kdcal's calibration and metrics benchmarks (issues #4, #8, #12).

  gen DIR      write DIR/logits_<N>x<C>.npy (float64) and labels_<N>x<C>.npy (int64)
               for 1000000x10 and 10000x100: Z ~ 1.5·N(0,1), labels drawn from
               softmax(Z) (Gumbel-max), logits 2.5·Z (over-confident, true T = 2.5);
               and for 5000x100 the nearly separable logits of an over-confident
               DenseNet-like model (see densenet_like)
  time DIR     time numpy doing what each Go benchmark does, on the same arrays,
               and print JSON {"<Benchmark>/<N>x<C>": milliseconds (fastest of repeats)}
  fits DIR     time scipy's L-BFGS-B on vector and matrix scaling (BenchmarkCalibAffineFit);
               run once per BLAS thread count (OPENBLAS_NUM_THREADS is read at import)
  optimum DIR  the reference optimum of each fit: scipy run to max |gradient| < 1e-9
               with no function test, JSON {"vector/<N>x<C>": f*, ...}
  report --go LABEL=GO... [--np NP...] [--fits F...] [--optimum O]
               print a table of Go (go test -bench output files GO, one per build LABEL)
               vs numpy (JSON files NP), and of the affine fits vs scipy (JSON files F
               from fits) with each side's objective gap to the optimum (JSON file O)

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
  BenchmarkCalibAffineFit vector scaling softmax(a*z + b) and matrix scaling softmax(z W^T + b)
                          with L2 strength 1e-3 on the off-diagonal of W and on b: the mean NLL
                          (+ penalty) with its analytic gradient (two GEMMs for matrix) given to
                          scipy.optimize.minimize(method="L-BFGS-B", jac=True) from the identity
                          map, gtol=1e-6 and ftol=1e-12: kdcal's stopping rule (max |gradient|
                          <= gtol, or a relative decrease <= ftol), memory 10 (scipy's default)
Run with Debian's /usr/bin/python3 (numpy, scipy); scripts/bench_calib.sh drives all of it.
"""
import json
import math
import re
import sys
import time

import numpy as np

SHAPES = [(1000000, 10), (10000, 100)]
FIT_SHAPES = [(10000, 100), (5000, 100)]  # 5000x100: densenet_like
M = 15
GTOL, FTOL, MAXITER, L2 = 1e-6, 1e-12, 15000, 1e-3


def gen(d):
    rng = np.random.default_rng(20240501)
    for n, c in SHAPES:
        z = 1.5 * rng.standard_normal((n, c))
        y = np.argmax(z + rng.gumbel(size=(n, c)), axis=1).astype(np.int64)
        np.save(f"{d}/logits_{n}x{c}.npy", np.ascontiguousarray(2.5 * z))
        np.save(f"{d}/labels_{n}x{c}.npy", y)
    z, y = densenet_like(20240502)
    np.save(f"{d}/logits_5000x100.npy", z)
    np.save(f"{d}/labels_5000x100.npy", y)


def densenet_like(seed, n=5000, c=100, d=342, noise=3.5, alpha=200.0):
    """Validation logits of an over-confident CNN on a 100-class task (CIFAR-100-like).

    Penultimate features h are ReLU(mu_y + 3.5 * N(0, I)) in d = 342 dimensions (DenseNet-BC's
    width) around class means mu_k ~ N(0, I) far apart; the classifier's weights are the
    centred, normalised rectified means, and the logits alpha * h V^T / sqrt(d) are scaled so
    that top-1 accuracy is about 77% at a mean confidence of about 98%. With C^2 + C = 10100
    parameters for 5000 examples matrix scaling nearly separates the validation set (its NLL
    falls to about 5e-4), and vector scaling is badly conditioned: the case where kdcal's
    earlier L-BFGS fits hit their 2000-iteration limit.
    """
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    h = np.maximum(mu[y] + noise * rng.standard_normal((n, d)), 0)
    v = np.maximum(mu, 0)
    v -= v.mean(axis=0)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(alpha * h @ v.T / np.sqrt(d)), y.astype(np.int64)


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


def vector_objective(z, y):
    """f(theta) and its gradient for vector scaling, theta = (a, b): mean NLL of softmax(a*z + b)."""
    n, c = z.shape
    rows = np.arange(n)
    s = np.empty_like(z)

    def fg(theta):
        nonlocal s
        a, b = theta[:c], theta[c:]
        np.multiply(z, a, out=s)
        s += b
        s -= s.max(axis=1, keepdims=True)
        sy = s[rows, y]
        np.exp(s, out=s)
        tot = s.sum(axis=1)
        f = np.mean(np.log(tot) - sy)
        s /= tot[:, None] * n  # G = (P - Y) / N
        s[rows, y] -= 1 / n
        return f, np.concatenate([np.einsum("ij,ij->j", s, z), s.sum(axis=0)])

    theta0 = np.concatenate([np.ones(c), np.zeros(c)])
    return fg, theta0


def matrix_objective(z, y, l2=L2):
    """f(theta) and its gradient for matrix scaling, theta = (W row-major, b):
    mean NLL of softmax(z W^T + b) + l2 * (sum of the off-diagonal W_kj^2 + sum b_k^2)."""
    n, c = z.shape
    rows = np.arange(n)
    off = ~np.eye(c, dtype=bool)
    s = np.empty_like(z)

    def fg(theta):
        nonlocal s
        w, b = theta[:c * c].reshape(c, c), theta[c * c:]
        np.matmul(z, w.T, out=s)
        s += b
        s -= s.max(axis=1, keepdims=True)
        sy = s[rows, y]
        np.exp(s, out=s)
        tot = s.sum(axis=1)
        f = np.mean(np.log(tot) - sy)
        s /= tot[:, None] * n
        s[rows, y] -= 1 / n
        gw = s.T @ z
        gb = s.sum(axis=0)
        woff = w * off
        f += l2 * (np.sum(woff * woff) + b @ b)
        gw += 2 * l2 * woff
        gb += 2 * l2 * b
        return f, np.concatenate([gw.ravel(), gb])

    theta0 = np.concatenate([np.eye(c).ravel(), np.zeros(c)])
    return fg, theta0


def lbfgsb(fg, theta0, gtol=GTOL, ftol=FTOL):
    from scipy.optimize import minimize
    return minimize(fg, theta0, jac=True, method="L-BFGS-B",
                    options={"gtol": gtol, "ftol": ftol, "maxiter": MAXITER, "maxcor": 10})


def objectives(d):
    for n, c in FIT_SHAPES:
        z = np.load(f"{d}/logits_{n}x{c}.npy")
        y = np.load(f"{d}/labels_{n}x{c}.npy")
        yield f"vector/{n}x{c}", vector_objective(z, y)
        yield f"matrix/{n}x{c}", matrix_objective(z, y)


def run_fits(d, repeats=1):
    import os
    out, info = {}, {}
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    for key, (fg, theta0) in objectives(d):
        best, cpu = math.inf, math.inf
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            r = lbfgsb(fg, theta0)
            best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        out[f"BenchmarkCalibAffineFit/{key}"] = 1e3 * best
        info[key] = {"f": float(r.fun), "nit": int(r.nit), "nfev": int(r.nfev), "cpu_ms": 1e3 * cpu,
                     "grad": float(np.abs(r.jac).max()), "message": str(r.message), "threads": threads}
    json.dump({"ms": out, "info": info}, sys.stdout, indent=1)


def run_optimum(d):
    out = {}
    for key, (fg, theta0) in objectives(d):
        r = lbfgsb(fg, theta0, gtol=1e-9, ftol=0)
        out[key] = {"f": float(r.fun), "grad": float(np.abs(r.jac).max()), "nit": int(r.nit), "message": str(r.message)}
    json.dump(out, sys.stdout, indent=1)


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


def parse_go(gofile):
    """go test -bench output: {name: {cpus: [ms]}}, the logged fit outcomes {name: {cpus: dict}}
    and the CPU time per fit {name: {cpus: [ms]}} (BenchmarkCalibAffineFit's cpu-ms/op)."""
    go, fits, cpu, current = {}, {}, {}, None
    for line in open(gofile):
        mt = re.match(r"^(BenchmarkCalib\S+?)(?:-(\d+))?\s+\d+\s+([\d.]+) ns/op", line)
        if mt:
            go.setdefault(mt.group(1), {}).setdefault(int(mt.group(2) or 1), []).append(float(mt.group(3)) / 1e6)
            mc = re.search(r"([\d.]+) cpu-ms/op", line)
            if mc:
                cpu.setdefault(mt.group(1), {}).setdefault(int(mt.group(2) or 1), []).append(float(mc.group(1)))
        mb = re.match(r"^--- BENCH: (BenchmarkCalib\S+?)(?:-(\d+))?$", line.strip())
        if mb:
            current = (mb.group(1), int(mb.group(2) or 1))
        mf = re.search(r"fit (\S+): converged (\S+) status (\S+) iterations (\d+) passes (\d+) objective (\S+) gradient (\S+)", line)
        if mf and current:
            fits.setdefault(current[0], {})[current[1]] = {
                "converged": mf.group(2) == "true", "status": mf.group(3), "nit": int(mf.group(4)),
                "passes": int(mf.group(5)), "f": float(mf.group(6)), "grad": float(mf.group(7))}
    return go, fits, cpu


def report(args):
    gos, nps, fitfiles, optfile = {}, [], [], None
    mode = "np"
    for a in args:
        if a in ("--fits", "--optimum", "--go", "--np"):
            mode = a[2:]
        elif mode == "go":
            label, path = a.split("=", 1)
            gos[label] = parse_go(path)
        elif mode == "fits":
            fitfiles.append(a)
        elif mode == "optimum":
            optfile = a
        else:
            nps.append(a)
    label0 = next(iter(gos))
    if nps:
        report_metrics(gos[label0][0], nps, label0)
    if fitfiles:
        report_fits(gos, fitfiles, json.load(open(optfile)) if optfile else {})


def report_metrics(go, npfiles, label):
    runs = [json.load(open(f)) for f in npfiles]
    ms = {k: min(r["ms"][k] for r in runs) for k in runs[0]["ms"]}
    info = runs[0]["info"]
    cpus = sorted({k for v in go.values() for k in v})
    print(f"metrics and temperature fit: numpy vs kdcal ({label} build), fastest of repeats; ratio = numpy/Go (> 1: Go faster)")
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
    print()


def report_fits(gos, fitfiles, optimum):
    """One row per fit and thread count: scipy (OPENBLAS_NUM_THREADS=t) vs each Go build (GOMAXPROCS=t)."""
    byth = {}
    for f in fitfiles:
        r = json.load(open(f))
        for key, ms in r["ms"].items():
            fit = key.split("/", 1)[1]
            th = int(r["info"][fit]["threads"])
            c = r["info"][fit].get("cpu_ms", math.inf)
            cur = byth.setdefault((fit, th), {"ms": ms, "cpu": c, "info": r["info"][fit]})
            cur["ms"], cur["cpu"] = min(cur["ms"], ms), min(cur["cpu"], c)
    print("vector and matrix scaling: one whole fit, scipy L-BFGS-B vs kdcal, fastest of repeats (wall and CPU time);")
    print("ratio = scipy time / kdcal time (>= 1: kdcal at least as fast); gap = objective - f*, with f* the")
    print("optimum of scipy run to max |gradient| < 1e-9 (bench_calib.py optimum); t = BLAS threads = GOMAXPROCS")
    hdr = f"{'fit':<20}{'t':>2}{'scipy s':>9}{'cpu s':>7}{'iters':>7}{'gap':>10}"
    for label in gos:
        hdr += f" | {label + ' s':>11}{'cpu s':>7}{'iters':>6}{'wall':>7}{'cpu':>7}{'gap':>10}"
    print(hdr)
    print(" " * 55 + "".join(f" | {'':>31}{'ratio':>7}{'ratio':>7}{'':>10}" for _ in gos))
    print("-" * len(hdr))
    notes = []
    for (fit, th), v in sorted(byth.items()):
        fstar = optimum.get(fit, {}).get("f")
        gap = lambda f: f"{f - fstar:>10.1e}" if fstar is not None else f"{'-':>10}"
        sp = v["info"]
        row = f"{fit:<20}{th:>2}{v['ms'] / 1e3:>9.2f}{v['cpu'] / 1e3:>7.2f}{sp['nit']:>7}{gap(sp['f'])}"
        for label, (go, fits, cpu) in gos.items():
            name = f"BenchmarkCalibAffineFit/{fit}"
            t, c, o = go.get(name, {}).get(th), cpu.get(name, {}).get(th), fits.get(name, {}).get(th)
            if not t or not o:
                row += f" | {'-':>11}{'-':>7}{'-':>6}{'-':>7}{'-':>7}{'-':>10}"
                continue
            gm, cm = min(t), min(c) if c else math.inf
            row += f" | {gm / 1e3:>11.2f}{cm / 1e3:>7.2f}{o['nit']:>6}{v['ms'] / gm:>6.2f}x{v['cpu'] / cm:>6.2f}x{gap(o['f'])}"
            if not o["converged"]:
                notes.append(f"{label} {fit} t={th}: did NOT converge ({o['status']}, |gradient| {o['grad']:.2e})")
        print(row)
    for fit, o in optimum.items():
        notes.append(f"f* {fit} = {o['f']:.15g} (scipy {o['nit']} iterations, |gradient| {o['grad']:.1e}, {o['message']})")
    for (fit, th), v in sorted(byth.items()):
        if "NORM_OF_PROJECTED_GRADIENT" not in v["info"]["message"]:
            notes.append(f"scipy {fit} t={th}: {v['info']['message']}, |gradient| {v['info']['grad']:.2e}")
    print()
    for n in notes:
        print(n)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2])
    elif cmd == "time":
        run_time(sys.argv[2])
    elif cmd == "fits":
        run_fits(sys.argv[2])
    elif cmd == "optimum":
        run_optimum(sys.argv[2])
    elif cmd == "report":
        report(sys.argv[2:])
    else:
        sys.exit(__doc__)
