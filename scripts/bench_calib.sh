#!/usr/bin/env bash
# Calibration and metrics speed, Go vs numpy on the same arrays (issue #8, part 4).
# Usage: scripts/bench_calib.sh [rounds, default 2]
#   1. scripts/bench_calib.py gen: 1000000x10 and 10000x100 logits/labels into a temp dir
#   2. rounds × (numpy times ECE, NLL, Brier, all metrics and the temperature fit;
#      go test -bench '^BenchmarkCalib' times kdcal's code on the same files, 1 and 2 CPUs),
#      alternating so that both peers see the same machine load
#   3. a table of the fastest times and numpy/Go ratios (> 1 means Go is faster)
# Quote ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
rounds=${1:-2}
if ! "$PY" -c "import numpy" 2>/dev/null; then
  echo "bench_calib: $PY has no numpy (install python3-numpy); skipping" >&2
  exit 0
fi
dir=$(mktemp -d /tmp/kdcal-bench-calib.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "bench_calib: data in $dir; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$PY" scripts/bench_calib.py gen "$dir"
go test -c -o "$dir/metrics.test" ./internal/metrics
go test -c -o "$dir/calibrate.test" ./internal/calibrate
: >"$dir/go.txt"
np=()
for r in $(seq "$rounds"); do
  echo "bench_calib: round $r/$rounds: numpy" >&2
  "$PY" scripts/bench_calib.py time "$dir" >"$dir/numpy$r.json"
  np+=("$dir/numpy$r.json")
  echo "bench_calib: round $r/$rounds: Go" >&2
  for t in metrics calibrate; do
    KDCAL_BENCH_DIR="$dir" "$dir/$t.test" -test.run '^$' -test.bench '^BenchmarkCalib' \
      -test.benchtime 3x -test.count 2 -test.cpu 1,2 >>"$dir/go.txt"
  done
done
echo "bench_calib: load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$PY" scripts/bench_calib.py report "$dir/go.txt" "${np[@]}"
