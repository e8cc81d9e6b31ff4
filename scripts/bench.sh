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
# Also runs scripts/bench_calib.sh (calibration and metrics) when present.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
PY=${PY:-/usr/bin/python3}
STEPS=${STEPS:-40}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gobench() { # $1 = label, $2 = build tags
	echo "bench: go test -bench BenchmarkTrainStep ${2:+-tags $2} ($1)" >&2
	$GO test ${2:+-tags "$2"} -run '^$' -bench 'BenchmarkTrainStep' -benchtime "${STEPS}x" -cpu 1 -count 1 ./internal/train |
		awk -v b="$1" '/^BenchmarkTrainStep\// {
			name = $1; sub(/^BenchmarkTrainStep\//, "", name)
			for (i = 3; i < NF; i++) { if ($(i+1) == "ms/step") ms = $i; if ($(i+1) == "samples/s") sps = $i }
			print name, b, ms, sps }' >>"$tmp/rows"
}

gobench "go (pure Go)" ""
if [ "$(scripts/blas-tags.sh)" = openblas ]; then
	gobench "go + OpenBLAS" openblas
else
	echo "bench: libopenblas not found; skipping the OpenBLAS build (install libopenblas-dev)" >&2
fi
if "$PY" -c 'import torch' 2>/dev/null; then
	echo "bench: $PY scripts/torch_bench.py (torch $("$PY" -c 'import torch; print(torch.__version__)'), 1 thread)" >&2
	"$PY" scripts/torch_bench.py --threads 1 --steps "$STEPS" mlp-784-512-512-10 cnn-medium |
		awk '{ print $1, "torch (1 thread)", $2, $3 }' >>"$tmp/rows"
else
	echo "bench: $PY has no torch; the table has no PyTorch peer (apt-get install python3-torch)" >&2
fi

echo
echo "Training step, batch 128, Adam, one core ($(date -u +%Y-%m-%d), $(uname -m))"
awk '
	{ key = $1; backend = $2; for (i = 3; i <= NF - 2; i++) backend = backend " " $i
	  ms[key, backend] = $(NF-1); sps[key, backend] = $NF; rows[++n] = key SUBSEP backend
	  if (backend == "torch (1 thread)") torch[key] = $(NF-1) }
	END {
		printf "| %-20s | %-16s | %9s | %9s | %-22s |\n", "model", "implementation", "ms/step", "samples/s", "vs torch (1 thread)"
		printf "|%s|%s|%s|%s|%s|\n", "----------------------", "------------------", "----------:", "----------:", "------------------------"
		for (i = 1; i <= n; i++) {
			split(rows[i], kb, SUBSEP); k = kb[1]; b = kb[2]
			r = "n/a"
			if (k in torch) {
				f = ms[k, b] / torch[k]
				if (b == "torch (1 thread)") r = "1"
				else if (f >= 1) r = sprintf("%.2fx slower", f)
				else r = sprintf("%.2fx faster", 1 / f)
			}
			printf "| %-20s | %-16s | %9.2f | %9.0f | %-22s |\n", k, b, ms[k, b], sps[k, b], r
		}
	}' "$tmp/rows"

if [ -x scripts/bench_calib.sh ]; then
	echo
	scripts/bench_calib.sh
fi
