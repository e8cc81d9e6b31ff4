#!/usr/bin/env bash
# Training-step benchmark: kdcal (gorgonia, pure Go and OpenBLAS) against the
# PyTorch peer, measured in this one invocation, printed as one table.
#
#   scripts/bench.sh              # `make bench`
#   STEPS=100 scripts/bench.sh    # more steps per measurement (default 40)
#
# Every measurement uses one core: GOMAXPROCS=1 (go test -cpu 1),
# OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(1). One training per core
# is the fastest way to use a multi-core machine for kdcal's sweeps
# (shared/docs/gorgonia-notes.md §9); read the ratios, not the absolute
# figures, on a shared machine. Models and data: internal/train/bench_test.go
# and scripts/torch_bench.py (random 28×28 inputs, batch 128, Adam).
# Also times `kdcal run` with 1 vs 2 workers (BenchmarkRunWorkers) and runs
# scripts/bench_calib.sh (calibration and metrics) when present.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
PY=${PY:-/usr/bin/python3}
STEPS=${STEPS:-40}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gobench() { # $1 = label, $2 = build tags
	echo "bench: go test -bench 'BenchmarkTrainStep|BenchmarkSgemm' ${2:+-tags $2} ($1)" >&2
	$GO test ${2:+-tags "$2"} -run '^$' -bench 'BenchmarkTrainStep|BenchmarkSgemm' -benchtime "${STEPS}x" -cpu 1 -count 1 ./internal/train |
		awk -v b="$1" '/^Benchmark(TrainStep|Sgemm)/ {
			name = $1; sub(/^BenchmarkTrainStep\//, "", name); sub(/^BenchmarkSgemm.*/, "sgemm", name)
			ms = sps = mf = gf = 0
			for (i = 3; i < NF; i++) {
				if ($(i+1) == "ms/step") ms = $i; if ($(i+1) == "samples/s") sps = $i
				if ($(i+1) == "MFLOP/step") mf = $i; if ($(i+1) == "GFLOP/s") gf = $i }
			if (name == "sgemm") print "sgemm|" b "|" gf >> "'"$tmp/peak"'"
			else print name "|" b "|" ms "|" sps "|" mf }' >>"$tmp/rows"
}

gobench "go (pure Go)" ""
if [ "$(scripts/blas-tags.sh)" = openblas ]; then
	gobench "go + OpenBLAS" openblas
	tags=openblas
else
	echo "bench: libopenblas not found; skipping the OpenBLAS build (install libopenblas-dev)" >&2
	tags=
fi
if "$PY" -c 'import torch' 2>/dev/null; then
	echo "bench: $PY scripts/torch_bench.py (torch $("$PY" -c 'import torch; print(torch.__version__)'), 1 thread)" >&2
	"$PY" scripts/torch_bench.py --threads 1 --steps "$STEPS" mlp-784-512-512-10 cnn-medium |
		awk '{ print $1 "|torch (1 thread)|" $2 "|" $3 "|0" }' >>"$tmp/rows"
else
	echo "bench: $PY has no torch; the table says not available (apt-get install python3-torch)" >&2
	for m in mlp-784-512-512-10 cnn-medium; do echo "$m|torch (1 thread)|na|na|0" >>"$tmp/rows"; done
fi
echo "bench: go test -bench BenchmarkEpochMemory ${tags:+-tags $tags}" >&2
mem=$($GO test ${tags:+-tags "$tags"} -run '^$' -bench 'BenchmarkEpochMemory' -benchtime 1x -cpu 1 ./internal/train |
	awk '/^BenchmarkEpochMemory/ { for (i = 3; i < NF; i++) { if ($(i+1) == "heap-epoch1-MiB") a = $i; if ($(i+1) == "heap-last-MiB") z = $i }
		printf "Go heap after epoch 1: %.1f MiB, after epoch 6: %.1f MiB (growth %+.2f MiB)", a, z, z - a }')

peak=$(sort -t'|' -k3 -g "$tmp/peak" | tail -n1)
echo
echo "Training step, batch 128, Adam, one core ($(date -u +%Y-%m-%d), $(uname -m), load $(cut -d' ' -f1 /proc/loadavg))"
echo "Single-core SGEMM peak (128x784 . 784x512): $(awk -F'|' '{ printf "%s %.1f GFLOP/s; ", $2, $3 }' "$tmp/peak")"
awk -F'|' -v peak="${peak##*|}" '
	{ key = $1; b = $2; ms[key, b] = $3; sps[key, b] = $4; if ($5 > 0) mf[key] = $5
	  rows[++n] = key SUBSEP b; if (b == "torch (1 thread)" && $3 != "na") torch[key] = $3 }
	END {
		printf "| %-20s | %-16s | %9s | %9s | %8s | %9s | %-20s |\n", "model", "implementation", "ms/step", "samples/s", "GFLOP/s", "% of peak", "vs torch (1 thread)"
		printf "|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------", "------------------", "----------:", "----------:", "---------:", "----------:", "----------------------"
		for (i = 1; i <= n; i++) {
			split(rows[i], kb, SUBSEP); k = kb[1]; b = kb[2]
			if (ms[k, b] == "na") { printf "| %-20s | %-16s | %9s | %9s | %8s | %9s | %-20s |\n", k, b, "n/a", "n/a", "n/a", "n/a", "not available"; continue }
			gf = mf[k] / ms[k, b] # MFLOP/step ÷ ms/step = GFLOP/s
			r = "n/a"
			if (k in torch) {
				f = ms[k, b] / torch[k]
				if (b == "torch (1 thread)") r = "1"
				else if (f >= 1) r = sprintf("%.2fx slower", f)
				else r = sprintf("%.2fx faster (%.2fx)", 1 / f, f)
			}
			printf "| %-20s | %-16s | %9.2f | %9.0f | %8.1f | %8.0f%% | %-20s |\n", k, b, ms[k, b], sps[k, b], gf, 100 * gf / peak, r
		}
	}' "$tmp/rows"
echo "Memory over epochs (medium CNN, ${tags:-pure Go}): $mem"
echo "bench: go test -bench BenchmarkRunWorkers ${tags:+-tags $tags} (a synthetic study, 1 vs 2 workers)" >&2
$GO test ${tags:+-tags "$tags"} -run '^$' -bench 'BenchmarkRunWorkers' -benchtime 2x ./internal/cli |
	awk '/^BenchmarkRunWorkers/ { for (i = 3; i < NF; i++) { if ($(i+1) == "s/1-worker") a = $i; if ($(i+1) == "s/2-workers") z = $i; if ($(i+1) == "speedup") r = $i }
		printf "kdcal run, synthetic study of 23 steps: %.1f s with 1 worker, %.1f s with 2 (%.2fx)\n", a, z, r }'

if [ -x scripts/bench_calib.sh ]; then
	echo
	scripts/bench_calib.sh
fi
