#!/usr/bin/env bash
# `make bench`: kdcal's speed against PyTorch, both kdcal builds, in one run.
#
#   scripts/bench.sh                  # everything (about 15 minutes on 2 cores)
#   E2E_BUILDS=purego scripts/bench.sh   # end-to-end study with the pure-Go build only
#   E2E_BUILDS= scripts/bench.sh      # skip the end-to-end study
#   STEPS=100 COUNT=5 scripts/bench.sh   # steps per measurement (40), repetitions (3)
#   KEEP=1 CALIB=0 scripts/bench.sh   # keep the raw outputs; skip scripts/bench_calib.sh
#   RESNET=0 scripts/bench.sh         # skip scripts/bench_resnet.sh (the ResNet step vs torch)
#
# 1. SGEMM at the shapes of kdcal's training (internal/gemm BenchmarkSgemm): the
#    pure-Go kernel, OpenBLAS and gonum, against the core's float32 FMA peak
#    measured in the same run (BenchmarkFMAPeak).
# 2. One training step (BenchmarkTrainStep, internal/train; batch 128, Adam, random
#    28×28 inputs) of the MLP 784-512-512-10 and the medium CNN, for the plain
#    `go build` (pure Go) and the OpenBLAS build, against scripts/torch_bench.py
#    (torch, 1 thread), with the issue's targets.
# 3. The quick study end to end (kdcal run --config configs/quick.yaml, report stage
#    timed apart) against scripts/torch_study.py (the same study in PyTorch), 2 workers
#    of one thread each, on the same train/validation examples.
#
# Every training uses one core: GOMAXPROCS=1 (go test -cpu 1), OPENBLAS_NUM_THREADS=1,
# torch.set_num_threads(1). The machine may be shared: each figure is the median of
# COUNT runs, the peers alternate, ratios use process CPU time (which other jobs do not
# inflate, wall time is shown next to it), and the load average is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
PY=${PY:-/usr/bin/python3}
STEPS=${STEPS:-40}
COUNT=${COUNT:-3}
E2E_BUILDS=${E2E_BUILDS-purego openblas}
DATA=${KDCAL_DATA_DIR:-data}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d)
if [ -n "${KEEP:-}" ]; then echo "bench: raw outputs kept in $tmp" >&2; else trap 'rm -rf "$tmp"' EXIT; fi
load() { cut -d' ' -f1-3 /proc/loadavg; }
load0=$(load)
ncpu=$(getconf _NPROCESSORS_ONLN) # not nproc: it obeys OMP_NUM_THREADS

ob=$(scripts/blas-tags.sh)
builds="purego${ob:+ openblas}"
[ -n "$ob" ] || echo "bench: libopenblas not found; the OpenBLAS build is left out (install libopenblas-dev)" >&2
torch=
if "$PY" -c 'import torch' 2>/dev/null; then
	torch=$("$PY" -c 'import torch; print(torch.__version__)')
else
	echo "bench: $PY has no torch; its rows say not available (apt-get install python3-torch)" >&2
fi
tagflag() { if [ "$1" = openblas ]; then echo "-tags openblas"; fi; }
label() { # build -> table label
	case $1 in
	purego) echo "go build (pure Go, GEMM $gemmkernel)" ;;
	openblas) echo "make build (OpenBLAS, cgo)" ;;
	torch) echo "torch $torch (1 thread)" ;;
	esac
}

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "na"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# metric value of unit $1 on a benchmark output line
metric() { awk -v u="$1" '{ for (i = 3; i < NF; i++) if ($(i+1) == u) print $i }'; }

# --- 1. SGEMM ---------------------------------------------------------------
echo "bench: go test -bench 'FMAPeak|Sgemm' ${ob:+-tags $ob} ./internal/gemm (count $COUNT)" >&2
$GO test ${ob:+-tags "$ob"} -run '^$' -bench 'FMAPeak|Sgemm' -benchtime 0.2s -count "$COUNT" -cpu 1 ./internal/gemm >"$tmp/gemm.txt"
gemmkernel=$(sed -n 's|^BenchmarkSgemm/[^/]*/gemm-\([^ \t]*\).*|\1|p' "$tmp/gemm.txt" | head -n1)
cpuunit=cpu-GFLOP/s
grep -q cpu-GFLOP/s "$tmp/gemm.txt" || cpuunit=GFLOP/s
peak=$(grep '^BenchmarkFMAPeak' "$tmp/gemm.txt" | metric $cpuunit | median)

# --- 2. Training step ---------------------------------------------------------
for b in $builds; do
	$GO test -c $(tagflag "$b") -o "$tmp/train-$b.test" ./internal/train
done
for r in $(seq "$COUNT"); do
	for b in $builds; do
		echo "bench: BenchmarkTrainStep, $(label "$b"), round $r/$COUNT" >&2
		(cd internal/train && "$tmp/train-$b.test" -test.run '^$' -test.bench BenchmarkTrainStep -test.benchtime "${STEPS}x" -test.cpu 1) |
			awk -v b="$b" '/^BenchmarkTrainStep/ { n = $1; sub(/^BenchmarkTrainStep\//, "", n); print b, n, $0 }' >>"$tmp/steps.txt"
	done
	if [ -n "$torch" ]; then
		echo "bench: scripts/torch_bench.py, round $r/$COUNT" >&2
		"$PY" scripts/torch_bench.py --threads 1 --steps "$STEPS" mlp-784-512-512-10 cnn-medium |
			awk '{ printf "torch %s x %s ms/step %s cpu-ms/step\n", $1, $2, $4 }' >>"$tmp/steps.txt"
	fi
done
stepfig() { # build model unit -> median
	awk -v b="$1" -v m="$2" '$1 == b && $2 == m' "$tmp/steps.txt" | metric "$3" | median
}

# --- 3. End to end --------------------------------------------------------------
fails=
failed() { # what, log, time file: keep the log, drop the timing
	local keep="${TMPDIR:-/tmp}/kdcal-bench-$(basename "$2")"
	cp "$2" "$keep"
	echo "bench: $1 failed; log in $keep:" >&2
	tail -n 5 "$2" >&2
	: >"$3"
	fails="$fails $1"
}
e2e=
if [ -n "$E2E_BUILDS" ] && [ ! -e "$DATA/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
	echo "bench: no Fashion-MNIST in $DATA (make data, or KDCAL_DATA_DIR=...); skipping the end-to-end study" >&2
elif [ -n "$E2E_BUILDS" ]; then
	e2e=1
	workers=$ncpu
	TIMEFORMAT='%R %U %S'
	first=
	for b in $E2E_BUILDS; do
		[ "$b" = openblas ] && [ -z "$ob" ] && continue
		$GO build $(tagflag "$b") -o "$tmp/kdcal-$b" ./cmd/kdcal
		exp="$tmp/quick-$b"
		echo "bench: kdcal run --config configs/quick.yaml ($(label "$b"), $workers workers) into $exp" >&2
		if ! { time KDCAL_DATA_DIR="$DATA" "$tmp/kdcal-$b" run --config configs/quick.yaml --experiment "$exp" -j "$workers" \
			--stage teachers,calibration,students >"$tmp/run-$b.log" 2>&1; } 2>"$tmp/time-$b"; then
			failed "kdcal run ($b)" "$tmp/run-$b.log" "$tmp/time-$b"
			continue
		fi
		first=${first:-$b}
		if [ "$b" = "$first" ]; then
			{ time KDCAL_DATA_DIR="$DATA" "$tmp/kdcal-$b" run --config configs/quick.yaml --experiment "$exp" --stage report \
				>>"$tmp/run-$b.log" 2>&1; } 2>"$tmp/time-report" || failed "kdcal run --stage report" "$tmp/run-$b.log" "$tmp/time-report"
		fi
	done
	if [ -n "$torch" ] && [ -n "$first" ]; then
		echo "bench: scripts/torch_study.py ($workers workers, splits of $tmp/quick-$first)" >&2
		{ time "$PY" scripts/torch_study.py --data "$DATA" --index-from "$tmp/quick-$first" --workers "$workers" \
			>"$tmp/run-torch.log" 2>&1; } 2>"$tmp/time-torch" || failed "torch_study.py" "$tmp/run-torch.log" "$tmp/time-torch"
	fi
fi
load1=$(load)

# --- Tables ---------------------------------------------------------------------------
echo
echo "kdcal speed against PyTorch, $(date -u +%Y-%m-%d) on $(uname -m) ($ncpu cores), load average $load0 at start, $load1 at end"
echo "Medians of $COUNT runs; 'CPU' figures are per process-CPU second (other jobs on the machine do not inflate them)."
echo
echo "SGEMM, one core, GFLOP/s per CPU second (% of the float32 FMA peak, $peak GFLOP/s, measured in the same run):"
awk -v peak="$peak" -v unit="$cpuunit" -v k="gemm-$gemmkernel" '
	/^BenchmarkSgemm\// { split($1, f, "/"); s = f[2]; im = f[3]
		if (!(s in seen)) { seen[s] = 1; order[++n] = s }
		for (i = 3; i < NF; i++) if ($(i+1) == unit) v[s, im] = v[s, im] " " $i }
	function med(list,   a, m, i, j, t) { m = split(list, a, " "); if (m == 0) return "";
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
	function cell(x) { return x == "" ? "n/a" : sprintf("%.1f (%.0f%%)", x, 100 * x / peak) }
	END {
		printf "| %-26s | %-24s | %-14s | %-14s |\n", "shape (op(A) m×k · k×n)", "pure Go " substr(k, 6), "OpenBLAS", "gonum"
		printf "|%s|%s|%s|%s|\n", "----------------------------", "--------------------------:", "---------------:", "---------------:"
		for (i = 1; i <= n; i++) { s = order[i]
			printf "| %-26s | %24s | %14s | %14s |\n", s, cell(med(v[s, k])), cell(med(v[s, "openblas"])), cell(med(v[s, "gonum"])) }
	}' "$tmp/gemm.txt"
echo "(shape names: mlp-fwd-128x784x512 is (128×784)·(784×512); dw and dcol are Aᵀ·B, dx and conv dw are A·Bᵀ.)"

echo
echo "Training step, batch 128, Adam, one core (ratios from CPU ms/step; issue targets in the last column):"
printf "| %-20s | %-40s | %12s | %13s | %15s | %14s | %-16s |\n" model implementation "CPU ms/step" "wall ms/step" "CPU GFLOP/s" "vs torch (CPU)" "target"
printf "|%s|%s|%s|%s|%s|%s|%s|\n" "----------------------" "------------------------------------------" "-------------:" "--------------:" "----------------:" "---------------:" "------------------"
for m in mlp-784-512-512-10 cnn-medium; do
	tc=$(stepfig torch "$m" cpu-ms/step)
	mf=$(stepfig purego "$m" MFLOP/step)
	for b in $builds torch; do
		[ "$b" = torch ] && [ -z "$torch" ] && { printf "| %-20s | %-40s | %12s | %13s | %15s | %14s | %-16s |\n" "$m" "torch (1 thread)" n/a n/a n/a "not available" ""; continue; }
		c=$(stepfig "$b" "$m" cpu-ms/step)
		w=$(stepfig "$b" "$m" ms/step)
		case $b/$m in
		purego/*) target=0.85 ;; openblas/mlp*) target=0.75 ;; openblas/cnn*) target=1.0 ;; *) target= ;;
		esac
		awk -v m="$m" -v l="$(label "$b")" -v c="$c" -v w="$w" -v tc="$tc" -v mf="$mf" -v peak="$peak" -v t="$target" 'BEGIN {
			r = "n/a"; verdict = ""
			if (tc != "na" && tc > 0) { r = sprintf("%.2fx", c / tc) }
			if (t != "" && r != "n/a") verdict = sprintf("<= %sx: %s", t, c / tc <= t ? "met" : "MISSED")
			if (l ~ /^torch/) r = "1"
			printf "| %-20s | %-40s | %12.2f | %13.2f | %8.1f (%3.0f%%) | %14s | %-16s |\n", m, l, c, w, mf / c, 100 * mf / c / peak, r, verdict }'
	done
done

if [ -n "$e2e" ]; then
	echo
	echo "Quick study end to end (configs/quick.yaml: 12 CNN teachers, 12 temperature calibrations, 51 MLP students,"
	echo "10 epochs each, Fashion-MNIST 12k/6k/10k; $workers workers of one thread; same train/validation examples):"
	printf "| %-52s | %8s | %8s | %15s | %14s |\n" implementation "wall s" "CPU s" "vs torch (wall)" "vs torch (CPU)"
	printf "|%s|%s|%s|%s|%s|\n" "------------------------------------------------------" "---------:" "---------:" "----------------:" "---------------:"
	tw=na tc=na
	[ -s "$tmp/time-torch" ] && read -r tw tu ts <"$tmp/time-torch" && tc=$(awk -v u="$tu" -v s="$ts" 'BEGIN { print u + s }')
	for b in $E2E_BUILDS torch; do
		f="$tmp/time-$b"
		[ -s "$f" ] || continue
		l="kdcal run, $(label "$b")"
		[ "$b" = torch ] && l="scripts/torch_study.py, torch $torch"
		awk -v l="$l" -v tw="$tw" -v tc="$tc" '{ c = $2 + $3
			rw = (tw != "na" && tw > 0) ? sprintf("%.2fx", $1 / tw) : "n/a"
			rc = (tc != "na" && tc > 0) ? sprintf("%.2fx", c / tc) : "n/a"
			printf "| %-52s | %8.1f | %8.1f | %15s | %14s |\n", l, $1, c, rw, rc }' "$f"
	done
	[ -s "$tmp/time-report" ] && awk '{ printf "kdcal report stage (no torch peer, not in the rows above): %.1f s wall\n", $1 }' "$tmp/time-report"
	[ -z "$fails" ] || echo "FAILED (logs kept in ${TMPDIR:-/tmp}):$fails"
fi

echo
mem=$($GO test ${ob:+-tags "$ob"} -run '^$' -bench 'BenchmarkEpochMemory' -benchtime 1x -cpu 1 ./internal/train |
	awk '/^BenchmarkEpochMemory/ { for (i = 3; i < NF; i++) { if ($(i+1) == "heap-epoch1-MiB") a = $i; if ($(i+1) == "heap-last-MiB") z = $i }
		printf "Go heap after epoch 1: %.1f MiB, after epoch 6: %.1f MiB (growth %+.2f MiB)", a, z, z - a }')
echo "Memory over epochs (medium CNN, ${ob:-pure Go}): $mem"
echo "bench: go test -bench BenchmarkRunWorkers ${ob:+-tags $ob} (a synthetic study, 1 vs 2 workers)" >&2
$GO test ${ob:+-tags "$ob"} -run '^$' -bench 'BenchmarkRunWorkers' -benchtime 2x ./internal/cli |
	awk '/^BenchmarkRunWorkers/ { for (i = 3; i < NF; i++) { if ($(i+1) == "s/1-worker") a = $i; if ($(i+1) == "s/2-workers") z = $i; if ($(i+1) == "speedup") r = $i }
		printf "kdcal run, synthetic study of 23 steps: %.1f s with 1 worker, %.1f s with 2 (%.2fx)\n", a, z, r }'

if [ "${RESNET:-1}" != 0 ]; then
	echo
	ROUNDS=$COUNT scripts/bench_resnet.sh
fi

if [ -x scripts/bench_calib.sh ] && [ "${CALIB:-1}" != 0 ]; then
	echo
	scripts/bench_calib.sh
fi
