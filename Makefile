# kdcal — see README.md. Targets: build test test-full test-long demo data bench lint golden clean setup fuzz.
GO       ?= go
BIN      := bin/kdcal
# Build tags: TAGS if given, else what scripts/blas-tags.sh finds ("openblas"
# when libopenblas-dev is installed, nothing for the pure-Go build). The shell
# evaluates it inside each recipe, after `setup` may have installed OpenBLAS,
# not when make reads this file. KDCAL_BLAS=purego|openblas forces a choice.
TAGS     ?=
GO_TAGS   = $$(if [ -n "$(TAGS)" ]; then echo "$(TAGS)"; else scripts/blas-tags.sh; fi)
REV      := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/kdcal/kdcal/internal/version.revision=$(REV)
GOFLAGS_  = -tags "$(GO_TAGS)" -ldflags '$(LDFLAGS)'
CONFIG   ?= configs/quick.yaml

.PHONY: all build test test-full test-long demo data bench lint golden clean setup fuzz FORCE

all: build

build: $(BIN)

# Prints the backend the binary got (kdcal version), so a slow build shows.
$(BIN): FORCE
	$(GO) build $(GOFLAGS_) -o $(BIN) ./cmd/kdcal
	@./$(BIN) version | head -n1

# Installs Debian packages when root (dataset-fashion-mnist, libopenblas-dev,
# python3-numpy, python3-torch); prints the command otherwise.
setup:
	scripts/setup.sh

# Copies MNIST (Go module) and Fashion-MNIST (Debian package) into data/.
data: build
	./$(BIN) data fetch --dataset mnist
	./$(BIN) data fetch --dataset fashion-mnist

# The test command of the README: installs what the tests need (best effort
# without root: tests that need absent data or numpy skip with a message).
# -short skips the slow tests (testutil.Slow: end-to-end studies, torch/sklearn
# cross-checks), each saying so; test-full and CI run them.
test: setup data
	$(GO) test $(GOFLAGS_) -short -count=1 ./...

# Every test, the slow ones too (what .ci/run runs).
test-full: setup data
	$(GO) test $(GOFLAGS_) -count=1 ./...

# Tests without -short, and every benchmark once (a smoke test of the benchmarks).
test-long: setup data
	$(GO) test $(GOFLAGS_) -count=1 -timeout 60m -bench . -benchtime 1x ./...

# The main job on the default preset: the whole quick study, report in experiments/quick/report/.
demo: setup data
	./$(BIN) run --config $(CONFIG)

# Benchmarks: training step vs PyTorch, calibration/metrics vs numpy.
bench: setup build
	scripts/bench.sh

# Every fuzz target (listed in scripts/fuzz.sh) for FUZZTIME each; a crasher
# lands in <package>/testdata/fuzz/<Target>/ and is committed as a regression case.
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags openblas ./...

# Regenerate golden files (tables, figures) after an intended change.
golden:
	$(GO) test ./internal/report/... ./internal/executor/slurm/... -update

clean:
	rm -rf bin
