#!/usr/bin/env bash
# ResNet training-step benchmark: internal/fused (OpenBLAS and pure Go)
# against torch 1.13 with one thread, measured in this one invocation, in
# interleaved rounds, printed as one table with ratios.
#
#   scripts/bench_resnet.sh                   # 3 rounds, 3 steps per Go measurement
#   ROUNDS=5 STEPS=5 scripts/bench_resnet.sh
#   PLAIN=0 scripts/bench_resnet.sh           # skip the (slow) pure-Go build
#
# One training step = forward (batch statistics) + backward + SGD-momentum update,
# batch 128, resnet8-w8, resnet20-w16 and resnet32-w16 on 3x32x32 and 1x28x28
# (BenchmarkResNetStep, scripts/torch_resnet_bench.py). Part of `make bench`
# (scripts/bench.sh; RESNET=0 skips it there).
# Every measurement uses one core: -cpu 1, OPENBLAS_NUM_THREADS=1,
# torch.set_num_threads(1). Wall time and CPU time (getrusage / process_time)
# are both reported: on a shared machine CPU time is the steadier of the two
# (it excludes the time other processes hold the core, not their effect on
# the caches). The table shows the median over rounds and the load.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
PY=${PY:-/usr/bin/python3}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-3}
PLAIN=${PLAIN:-1}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

builds=()
if [ "$(scripts/blas-tags.sh)" = openblas ]; then builds+=(openblas); fi
if [ "$PLAIN" = 1 ]; then builds+=(plain); fi
for b in "${builds[@]}"; do
	tags=""
	[ "$b" = openblas ] && tags="-tags openblas"
	# shellcheck disable=SC2086
	$GO test $tags -c -o "$tmp/fused-$b.test" ./internal/fused
done
havetorch=0
if "$PY" -c 'import torch' 2>/dev/null; then havetorch=1; fi

loads=()
for r in $(seq "$ROUNDS"); do
	loads+=("$(cut -d' ' -f1 /proc/loadavg)")
	for b in "${builds[@]}"; do
		echo "bench: round $r/$ROUNDS: go ($b)" >&2
		(cd internal/fused && "$tmp/fused-$b.test" -test.run '^$' -test.bench 'BenchmarkResNetStep' \
			-test.benchtime "${STEPS}x" -test.cpu 1) |
			awk -v b="go+$b" '/^BenchmarkResNetStep/ { name = $1; sub(/^BenchmarkResNetStep\//, "", name)
				for (i = 3; i < NF; i++) { if ($(i+1) == "ms/step") ms = $i; if ($(i+1) == "cpu-ms/step") cpu = $i }
				print name, b, ms, cpu }' >>"$tmp/rows"
	done
	if [ "$havetorch" = 1 ]; then
		echo "bench: round $r/$ROUNDS: torch" >&2
		"$PY" scripts/torch_resnet_bench.py --steps "$STEPS" --threads 1 |
			awk '{ print $2, "torch-1thread", $4, $11 }' >>"$tmp/rows"
	fi
done

echo
echo "ResNet training step (forward + backward + SGD update), batch 128, one core ($(date -u +%Y-%m-%d), $(getconf _NPROCESSORS_ONLN) CPUs, load per round: ${loads[*]})"
sort -k1,1 -k2,2 "$tmp/rows" | awk '
	function median(s,   a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	{ k = $1 SUBSEP $2; wall[k] = wall[k] " " $3; cpu[k] = cpu[k] " " $4; if (!(k in seen)) { seen[k] = 1; keys[++n] = k } }
	END {
		printf "| %-22s | %-15s | %12s | %12s | %-22s |\n", "model/input", "implementation", "wall ms/step", "CPU ms/step", "CPU time vs torch"
		printf "|%s|%s|%s|%s|%s|\n", "------------------------", "-----------------", "-------------:", "-------------:", "------------------------"
		for (i = 1; i <= n; i++) { split(keys[i], kb, SUBSEP); w[keys[i]] = median(wall[keys[i]]); c[keys[i]] = median(cpu[keys[i]]) }
		for (i = 1; i <= n; i++) {
			split(keys[i], kb, SUBSEP); t = kb[1] SUBSEP "torch-1thread"; r = "n/a"
			if (t in c && c[t] > 0) { f = c[keys[i]] / c[t]; r = (kb[2] == "torch-1thread") ? "1" : (f >= 1 ? sprintf("%.2fx slower", f) : sprintf("%.2fx faster", 1 / f)) }
			printf "| %-22s | %-15s | %12.1f | %12.1f | %-22s |\n", kb[1], kb[2], w[keys[i]], c[keys[i]], r
		}
	}'
