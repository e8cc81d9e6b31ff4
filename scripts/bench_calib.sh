#!/usr/bin/env bash
# Calibration and metrics speed, Go vs numpy/scipy on the same arrays (issues #8 part 4, #12 item 4).
# Usage: scripts/bench_calib.sh [rounds, default 2]
#   1. scripts/bench_calib.py gen: 1000000x10, 10000x100 and the nearly separable 5000x100
#      logits/labels into a temp dir; scipy's reference optimum of each affine fit (once)
#   2. rounds × (numpy times ECE, NLL, Brier, all metrics and the temperature fit;
#      go test -bench '^BenchmarkCalib' times kdcal's code on the same files, 1 and 2 CPUs;
#      scipy's L-BFGS-B fits vector and matrix scaling with 1 and 2 BLAS threads, and
#      BenchmarkCalibAffineFit does the same fits with GOMAXPROCS 1 and 2 in the pure-Go
#      build and, when libopenblas is installed, the -tags openblas build),
#      alternating so that both peers see the same machine load
#   3. tables of the fastest times and the scipy/Go ratios (> 1 means Go is faster)
# Quote ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
rounds=${1:-2}
if ! "$PY" -c "import numpy, scipy" 2>/dev/null; then
  echo "bench_calib: $PY has no numpy/scipy (install python3-numpy python3-scipy); skipping" >&2
  exit 0
fi
dir=$(mktemp -d /tmp/kdcal-bench-calib.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "bench_calib: data in $dir; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$PY" scripts/bench_calib.py gen "$dir"
go test -c -o "$dir/metrics.test" ./internal/metrics
go test -c -o "$dir/calibrate-purego.test" ./internal/calibrate
builds=(purego)
if [ "$(scripts/blas-tags.sh)" = openblas ]; then
  go test -tags openblas -c -o "$dir/calibrate-openblas.test" ./internal/calibrate
  builds+=(openblas)
fi
echo "bench_calib: scipy's reference optima (tight tolerance, once)" >&2
"$PY" scripts/bench_calib.py optimum "$dir" >"$dir/optimum.json"
: >"$dir/go.txt"
np=() fits=()
for b in "${builds[@]}"; do : >"$dir/fits-$b.txt"; done
for r in $(seq "$rounds"); do
  echo "bench_calib: round $r/$rounds: numpy" >&2
  "$PY" scripts/bench_calib.py time "$dir" >"$dir/numpy$r.json"
  np+=("$dir/numpy$r.json")
  echo "bench_calib: round $r/$rounds: Go metrics and temperature fit" >&2
  KDCAL_BENCH_DIR="$dir" "$dir/metrics.test" -test.run '^$' -test.bench '^BenchmarkCalib' \
    -test.benchtime 3x -test.count 2 -test.cpu 1,2 >>"$dir/go.txt"
  KDCAL_BENCH_DIR="$dir" "$dir/calibrate-purego.test" -test.run '^$' -test.bench '^BenchmarkCalibTempFit' \
    -test.benchtime 3x -test.count 2 -test.cpu 1,2 >>"$dir/go.txt"
  for t in 1 2; do
    echo "bench_calib: round $r/$rounds: scipy fits, $t BLAS thread(s)" >&2
    OPENBLAS_NUM_THREADS=$t "$PY" scripts/bench_calib.py fits "$dir" >"$dir/fits$r-$t.json"
    fits+=("$dir/fits$r-$t.json")
    for b in "${builds[@]}"; do
      echo "bench_calib: round $r/$rounds: Go fits, $b build, GOMAXPROCS $t" >&2
      OPENBLAS_NUM_THREADS=$t KDCAL_BENCH_DIR="$dir" "$dir/calibrate-$b.test" -test.run '^$' \
        -test.bench '^BenchmarkCalibAffineFit' -test.benchtime 2x -test.cpu "$t" >>"$dir/fits-$b.txt"
    done
  done
done
echo "bench_calib: load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
goargs=()
for b in "${builds[@]}"; do goargs+=("$b=$dir/fits-$b.txt"); done
"$PY" scripts/bench_calib.py report --go "go=$dir/go.txt" --np "${np[@]}"
"$PY" scripts/bench_calib.py report --go "${goargs[@]}" --fits "${fits[@]}" --optimum "$dir/optimum.json"
