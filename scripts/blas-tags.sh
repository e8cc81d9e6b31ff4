#!/usr/bin/env bash
# Print the Go build tags of `make build`: "openblas" when
# libopenblas (Debian libopenblas-dev) can be linked, nothing otherwise (pure Go).
# Override with KDCAL_BLAS=purego or KDCAL_BLAS=openblas. The Makefile runs it inside
# each recipe (not when it parses the Makefile), so a `make setup` that has just
# installed libopenblas-dev in the same make run is seen; scripts/bench.sh runs it too.
case "${KDCAL_BLAS:-auto}" in
  purego) exit 0 ;;
  openblas) echo openblas; exit 0 ;;
esac
if [ -e /usr/lib/x86_64-linux-gnu/libopenblas.so ] || [ -e /usr/lib/aarch64-linux-gnu/libopenblas.so ] ||
   ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; then
  echo openblas
fi
