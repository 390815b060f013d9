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
# Debian packages the cgo decoders build against; the run-time libraries
# (libopenjp2-7, libcharls2, libgdcm3.0) come with them. Only libjpeg is
# linked: the others are opened at run time (docs/dicom.md).
DEB_BUILD    := gcc pkg-config libjpeg62-turbo-dev libopenjp2-7-dev libcharls-dev libgdcm-dev
# Reference decoders and encoders the DICOM tests compare with.
DEB_TEST     := dcmtk libopenjp2-tools
GOFLAGS_BUILD = -trimpath -ldflags "-X main.version=$(VERSION)"
TEST_FLAGS   ?= -race -count=1 -timeout 40m

export TRIAGED_ORT_LIB := $(ORT_LIB)

.PHONY: all build run test deps test-deps install-debs ort vet fmt clean models split train-% export-% help fuzz-decode

all: build

help:
	@echo "make run    build and start the daemon on embedded defaults (NATS + drop folder under ./var)"
	@echo "make test   run every test with the race detector"
	@echo "make build  build $(BIN)"
	@echo "make ort    fetch the ONNX Runtime $(ORT_VERSION) CPU library into $(ORT_DIR)"

deps:
	@$(MAKE) --no-print-directory install-debs DEBS="$(DEB_BUILD)"

test-deps:
	@$(MAKE) --no-print-directory install-debs DEBS="$(DEB_TEST)"

install-debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
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

test: deps test-deps ort
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

# At least a million executions of the decode fuzz target (docs/dicom.md).
fuzz-decode: deps
	$(GO) test ./decode -run '^$$' -fuzz FuzzDecode -fuzztime 1000000x -parallel 2

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
