#!/usr/bin/env python3
"""scripts/compare-stores.py BEFORE AFTER: compare two kdcal stores' outputs, ignoring
manifests, logs, config history and timing fields. Prints differing files.

The check a refactor must pass: run the quick study with the binary from
before and from after the change into two stores, then compare. Every file
under teachers/, calibration/, students/ and report/ must be equal, except
manifest.json and logs; JSON files and report/steps.csv are compared with
their timing fields dropped (wall_seconds, ms_per_step, samples_per_s,
seconds, heap_mib and steps.csv's time columns). Exit 1 when anything differs."""
import json, os, sys, csv, io
TIMING = {"wall_seconds","ms_per_step","samples_per_s","seconds","heap_mib","started","finished","duration_s"}
def norm_json(t):
    def strip(v):
        if isinstance(v, dict): return {k: strip(x) for k, x in v.items() if k not in TIMING}
        if isinstance(v, list): return [strip(x) for x in v]
        return v
    return strip(t)
def load(p):
    b = open(p, "rb").read()
    if p.endswith(".json"): return json.dumps(norm_json(json.loads(b)), sort_keys=True)
    if p.endswith(".jsonl"): return "\n".join(json.dumps(norm_json(json.loads(l)), sort_keys=True) for l in b.decode().splitlines() if l.strip())
    if p.endswith("steps.csv"):
        rows = list(csv.reader(io.StringIO(b.decode())))
        drop = [i for i, h in enumerate(rows[0]) if any(t in h for t in ("second", "wall"))]
        return "\n".join(",".join(c for i, c in enumerate(r) if i not in drop) for r in rows)
    return b
a, b = sys.argv[1], sys.argv[2]
same = diff = 0; only = []
for sub in ("teachers", "calibration", "students", "report"):
    for root, _, files in os.walk(os.path.join(a, sub)):
        for f in files:
            pa = os.path.join(root, f); rel = os.path.relpath(pa, a); pb = os.path.join(b, rel)
            if f == "manifest.json" or f.endswith(".log"): continue
            if not os.path.exists(pb): only.append(rel); continue
            if load(pa) == load(pb): same += 1
            else: diff += 1; print("DIFF", rel)
    for root, _, files in os.walk(os.path.join(b, sub)):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), b)
            if not os.path.exists(os.path.join(a, rel)) and f != "manifest.json": only.append("after-only " + rel)
for o in only: print("ONLY", o)
print(f"{same} files identical (timing fields ignored), {diff} differ, {len(only)} only on one side")
sys.exit(1 if diff or only else 0)
