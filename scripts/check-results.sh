#!/bin/sh
# Regenerates a committed report under docs/results/ from its study's store
# and compares every file byte for byte except manifest.json (which records
# when, by which process and with which command the report was written).
#
#   scripts/check-results.sh [STORE] [RESULTS]
#
# STORE defaults to experiments/study (where `kdcal run --config
# configs/study.yaml` puts the study), RESULTS to docs/results/study. Exits 1
# and prints the differences if any file differs.
set -eu
store=${1:-experiments/study}
results=${2:-docs/results/study}
kdcal=${KDCAL:-bin/kdcal}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kdcal" report --config "$results/config.yaml" --experiment "$store" --out "$tmp/report" >/dev/null
if diff -r -x manifest.json "$results" "$tmp/report"; then
	n=$(find "$results" -type f ! -name manifest.json | wc -l)
	echo "check-results: $results: all $n files but manifest.json regenerate byte for byte from $store"
else
	echo "check-results: $results differs from the report regenerated from $store (above)" >&2
	exit 1
fi
