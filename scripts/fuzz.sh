#!/usr/bin/env bash
# Run every native Go fuzz target of kdcal for a fixed time each.
#
#   scripts/fuzz.sh [FUZZTIME]      (default $FUZZTIME, else 60s; e.g. 10s in CI)
#
# The targets are listed once, below; `make fuzz` and .ci/run both call this
# script. It fails when a Fuzz function exists that the list lacks, so a new
# target cannot be forgotten. When a target finds a crasher, go test writes
# it to <package>/testdata/fuzz/<Target>/; fix the bug and commit that file:
# it then runs as a regression case in every `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:-${FUZZTIME:-60s}}
# Minimizing a new input is capped well below the fuzz time, or a slow
# target spends its whole budget minimizing one input.
minimize=${FUZZMINIMIZETIME:-2s}

# package        target
targets=(
  "./internal/npyfile FuzzReadNPY"
  "./internal/npyfile FuzzNPYRoundTrip"
  "./internal/gemm    FuzzSgemm"
  "./internal/gemm/dgemm FuzzDgemm"
  "./internal/data    FuzzReadIDX"
  "./internal/data    FuzzCIFAR"
  "./internal/model   FuzzSafetensors"
  "./internal/config  FuzzConfigFile"
  "./internal/config  FuzzConfigSet"
)

listed=$(for t in "${targets[@]}"; do set -- $t; echo "$2"; done | sort)
found=$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' internal cmd | sed 's/^func //' | sort)
if [ "$listed" != "$found" ]; then
  echo "scripts/fuzz.sh: the target list differs from the Fuzz functions in the code:" >&2
  diff <(echo "$listed") <(echo "$found") >&2 || true
  exit 1
fi

for t in "${targets[@]}"; do
  set -- $t
  echo "== $2 ($1) for $fuzztime"
  go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$1"
done
