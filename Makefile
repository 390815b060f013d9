# triaged: build, run and test. `make run` and `make test` work on a fresh
# Debian machine: they install the C libraries the decoders link against
# (when run as root) and fetch the ONNX Runtime library by themselves.

SHELL        := /bin/bash
GO           ?= go
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
ORT_VERSION  := 1.24.1
CACHE_DIR    ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/triaged
ORT_DIR      := $(CACHE_DIR)/onnxruntime-$(ORT_VERSION)
ORT_LIB      := $(ORT_DIR)/libonnxruntime.so.1
BIN          := bin/triaged
PYTHON       ?= /usr/bin/python3
# Debian packages the cgo decoders build against.
DEB_BUILD    := gcc pkg-config libjpeg62-turbo-dev
GOFLAGS_BUILD = -trimpath -ldflags "-X main.version=$(VERSION)"
TEST_FLAGS   ?= -race -count=1 -timeout 40m

export TRIAGED_ORT_LIB := $(ORT_LIB)

.PHONY: all build run test deps ort vet fmt clean models split train-% export-% help

all: build

help:
	@echo "make run    build and start the daemon on embedded defaults (NATS + drop folder under ./var)"
	@echo "make test   run every test with the race detector"
	@echo "make build  build $(BIN)"
	@echo "make ort    fetch the ONNX Runtime $(ORT_VERSION) CPU library into $(ORT_DIR)"

deps:
	@missing=""; for p in $(DEB_BUILD); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing build dependencies:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing Debian packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; \
		fi; \
	fi

ort: $(ORT_LIB)

$(ORT_LIB):
	scripts/fetch-onnxruntime.sh $(ORT_DIR)

build: deps
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/triaged

run: build ort
	@mkdir -p var/incoming
	@echo "drop DICOM films into ./var/incoming; alerts: $(BIN) alerts -follow"
	$(BIN) run

test: deps ort
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w .

# --- models (Python tooling, Debian's python3-torch; see training/README.md)
split:
	$(PYTHON) training/split.py

train-%:
	$(PYTHON) training/train.py --arch $* --resume

export-%:
	$(PYTHON) training/export.py --arch $*

clean:
	rm -rf bin

# --- heatmaps (docs/heatmaps.md)
.PHONY: heatmap-examples heatmap-check
HEATMAP_EXAMPLES ?= var/heatmap-examples

# Overlays (CAM and occlusion) of 4 COVID-19 films of the test split, into an
# ignored folder: they are derived from the shared data set, never commit them.
heatmap-examples: build ort
	$(BIN) heatmap -test-positives 4 -method both -out $(HEATMAP_EXAMPLES)
	@echo "overlays in $(HEATMAP_EXAMPLES)/ (derived from ../shared/data: do not commit)"

# The deletion check of every configured model on every test-split positive.
heatmap-check: build ort
	$(BIN) heatmap-check
