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
# Reference decoders and encoders the DICOM tests compare with; systemd-analyze;
# the real peers the intake, delivery and page tests start on loopback:
# dcmtk (storescu, storescp), Orthanc with DICOMweb, Alertmanager and promtool,
# headless Chromium, dicom3tools (dciodvfy), OpenJPH (HTJ2K reference).
DEB_TEST     := dcmtk libopenjp2-tools systemd orthanc orthanc-dicomweb prometheus-alertmanager prometheus \
                chromium dicom3tools openjph-tools curl
# PyTorch side of the dataset tests (export parity with the daemon, the training walk-through).
DEB_TEST     += python3-torch python3-torchvision python3-onnx python3-pil python3-pydicom
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOFLAGS_BUILD = -trimpath -ldflags "-X main.version=$(VERSION)"
TEST_FLAGS   ?= -race -count=1 -timeout 40m

export TRIAGED_ORT_LIB := $(ORT_LIB)

.PHONY: all build run test test-short lint generate deps test-deps install-debs ort vet fmt clean models split train-% export-% help eval fuzz-decode

all: build

help:
	@echo "make run    build and start the daemon on embedded defaults (NATS + drop folder under ./var)"
	@echo "make test   run every test with the race detector"
	@echo "make build  build $(BIN)"
	@echo "make ort    fetch the ONNX Runtime $(ORT_VERSION) CPU library into $(ORT_DIR)"
	@echo "make ort-gpu  fetch its CUDA build (GPU hosts) into $(ORT_GPU_DIR)"

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

# The CUDA build of the same ONNX Runtime, for GPU hosts (docs/runbook.md#gpu-hosts):
# fetched from the official release archive, sha256 checked (see the script
# for the pin), provider libraries installed beside libonnxruntime.so.1.
ORT_GPU_DIR  := $(CACHE_DIR)/onnxruntime-gpu-$(ORT_VERSION)
.PHONY: ort-gpu
ort-gpu:
	scripts/fetch-onnxruntime-gpu.sh $(ORT_GPU_DIR)

$(ORT_LIB):
	scripts/fetch-onnxruntime.sh $(ORT_DIR)

build: deps
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/triaged

run: build ort
	@mkdir -p var/incoming
	@echo "drop DICOM films into ./var/incoming; alerts: $(BIN) alerts -follow"
	$(BIN) run

# The full suite: lint, then every test with the race detector against real
# NATS, real models, real DICOM files and real peers; then the packaging.
test: deps test-deps ort lint
	$(GO) test $(TEST_FLAGS) ./...
	$(MAKE) check-packaging

# The fast path: unit tests only (no subprocesses, peers, clusters or long
# model runs), with the race detector.
test-short: deps ort
	$(GO) test -short -race -count=1 ./...

# gofmt, go vet, staticcheck (pinned), and go.mod/go.sum tidy.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

# Generated files: the heatmap colormap table (go generate ./...).
generate:
	$(GO) generate ./...

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
	rm -rf bin build

# --- service packaging: make install / uninstall / deb (see docs/runbook.md)
PREFIX        ?= /usr/local
DESTDIR       ?=
BINDIR        ?= $(PREFIX)/bin
LIBDIR        ?= $(PREFIX)/lib/triaged
DATADIR       ?= $(PREFIX)/share/triaged
DOCDIR        ?= $(PREFIX)/share/doc/triaged
UNITDIR       ?= $(PREFIX)/lib/systemd/system
CONFDIR       ?= /etc/triaged
STATEDIR      ?= /var/lib/triaged
# Models shipped: every committed model directory.
MODEL_DIRS    := $(patsubst %/manifest.json,%,$(wildcard models/*/manifest.json))
NFPM          ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
# v1.2.3[-4-gabc] -> 1.2.3[~4~gabc]; an untagged commit -> 0.0.0~git<hash>.
DEB_VERSION   := $(shell v='$(VERSION)'; if echo "$$v" | grep -Eq '^v?[0-9]+\.[0-9]+'; then echo "$${v#v}"; else echo "0.0.0~git$$v"; fi | tr - '~')
DEB_STAGE     := build/deb/root
DEB_FILE      := build/triaged_$(DEB_VERSION)_amd64.deb
# Runtime Depends: the packages providing the libraries the binary and
# ONNX Runtime link against (ldd + dpkg -S), plus any named here.
DEB_EXTRA_DEPENDS ?=

.PHONY: install uninstall deb check-packaging verify-unit

install: build ort
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/triaged
	install -D -m 0644 $(ORT_LIB) $(DESTDIR)$(LIBDIR)/libonnxruntime.so.1
	@for m in $(MODEL_DIRS); do \
		n=$$(basename $$m); f=$$(sed -n 's/^ *"file": *"\(.*\)",*$$/\1/p' $$m/manifest.json); \
		echo "install model $$n"; \
		install -D -m 0644 $$m/manifest.json $(DESTDIR)$(DATADIR)/models/$$n/manifest.json; \
		install -D -m 0644 $$m/$$f $(DESTDIR)$(DATADIR)/models/$$n/$$f; \
	done
	sed -e 's|/usr/bin/triaged|$(BINDIR)/triaged|; s|/etc/triaged/|$(CONFDIR)/|; s|/var/lib/triaged|$(STATEDIR)|g; s|/usr/share/doc/triaged|$(DOCDIR)|' \
		systemd/triaged.service > $(BIN).service && install -D -m 0644 $(BIN).service $(DESTDIR)$(UNITDIR)/triaged.service
	install -D -m 0644 systemd/gpu.conf $(DESTDIR)$(DOCDIR)/gpu.conf
	install -D -m 0644 docs/runbook.md $(DESTDIR)$(DOCDIR)/runbook.md
	@# Never overwrite an operator's configuration.
	sed -e 's|@DATADIR@|$(DATADIR)|g; s|@STATEDIR@|$(STATEDIR)|g; s|@CONFDIR@|$(CONFDIR)|g; s|@DOCDIR@|$(DOCDIR)|g' \
		packaging/triaged.yaml.in > $(BIN).yaml
	@if [ -e $(DESTDIR)$(CONFDIR)/triaged.yaml ]; then \
		install -D -m 0640 $(BIN).yaml $(DESTDIR)$(CONFDIR)/triaged.yaml.dist; \
		echo "kept $(DESTDIR)$(CONFDIR)/triaged.yaml; the shipped default is triaged.yaml.dist"; \
	else install -D -m 0640 $(BIN).yaml $(DESTDIR)$(CONFDIR)/triaged.yaml; fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		TRIAGED_STATEDIR=$(STATEDIR) TRIAGED_CONFDIR=$(CONFDIR) packaging/postinst configure; \
	else install -d -m 0750 $(DESTDIR)$(STATEDIR)/incoming $(DESTDIR)$(STATEDIR)/nats; fi

# Removes what install put under PREFIX. The configuration and
# $(STATEDIR) (films, quarantine, stored results) are kept.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl stop triaged.service 2>/dev/null || true; fi
	rm -f $(DESTDIR)$(BINDIR)/triaged $(DESTDIR)$(UNITDIR)/triaged.service
	rm -rf $(DESTDIR)$(LIBDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
	@echo "kept $(CONFDIR) and $(STATEDIR) (films and results); remove them by hand when no longer needed"

deb: build ort
	rm -rf build/deb && mkdir -p build/deb
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DEB_STAGE) PREFIX=/usr UNITDIR=/usr/lib/systemd/system
	rm -rf $(DEB_STAGE)/var # created by postinst, owned by the service user
	deps=$$( { scripts/deb-depends.sh $(BIN) $(ORT_LIB); for d in $(DEB_EXTRA_DEPENDS); do echo $$d; done; } | sort -u | sed 's/^/  - /') && \
	sed -e 's|@VERSION@|$(DEB_VERSION)|; s|@STAGE@|$(DEB_STAGE)|g' packaging/nfpm.yaml.in | \
		awk -v deps="$$deps" '{ if ($$0 == "@DEPENDS@") print deps; else print }' > build/deb/nfpm.yaml
	$(NFPM) package -f build/deb/nfpm.yaml -p deb -t $(DEB_FILE)
	@echo "built $(DEB_FILE)"

# The unit passes systemd-analyze verify, with and without the GPU drop-in.
# verify checks that ExecStart exists, so it runs on a copy pointing at the
# built binary; any warning fails.
verify-unit: build
	@rm -rf build/unit && mkdir -p build/unit/triaged.service.d
	sed 's|/usr/bin/triaged|$(CURDIR)/$(BIN)|' systemd/triaged.service > build/unit/triaged.service
	@out=$$(SYSTEMD_UNIT_PATH=$(CURDIR)/build/unit: systemd-analyze verify $(CURDIR)/build/unit/triaged.service 2>&1); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi
	cp systemd/gpu.conf build/unit/triaged.service.d/gpu.conf
	@out=$$(SYSTEMD_UNIT_PATH=$(CURDIR)/build/unit: systemd-analyze verify $(CURDIR)/build/unit/triaged.service 2>&1); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi
	@rm build/unit/triaged.service.d/gpu.conf
	@SYSTEMD_UNIT_PATH=$(CURDIR)/build/unit: systemd-analyze security --offline=true --no-pager $(CURDIR)/build/unit/triaged.service | tail -n1
	@echo "systemd-analyze verify: OK"

# Run by make test: the unit verifies and the .deb holds what it must.
check-packaging: verify-unit deb
	dpkg-deb -c $(DEB_FILE)
	dpkg-deb -f $(DEB_FILE) Package Version Depends
	@for f in ./usr/bin/triaged ./usr/lib/triaged/libonnxruntime.so.1 ./usr/lib/systemd/system/triaged.service \
		./etc/triaged/triaged.yaml ./usr/share/doc/triaged/runbook.md ./usr/share/doc/triaged/gpu.conf \
		$(patsubst models/%,./usr/share/triaged/models/%/manifest.json,$(MODEL_DIRS)); do \
		dpkg-deb -c $(DEB_FILE) | awk '{print $$6}' | grep -qx "$$f" || { echo "missing from the .deb: $$f"; exit 1; }; \
	done
	@dpkg-deb -I $(DEB_FILE) postinst | grep -q useradd || { echo "postinst does not create the user"; exit 1; }
	@dpkg-deb -f $(DEB_FILE) Depends | grep -q libonnxruntime && { echo "bogus Depends"; exit 1; } || true
	@echo "check-packaging: OK"

# --- evaluation (needs ../shared/data)
# The four models and the ensemble, with the ensemble's own thresholds.
EVAL_CONFIG ?= config/examples/ensemble.yaml
eval: build ort
	$(BIN) model eval -config $(EVAL_CONFIG) -labels ../shared/data/cxr/labels.csv -split models/split.json -set test -o out/eval

# --- heatmaps (docs/heatmaps.md)
.PHONY: heatmap-examples heatmap-check
HEATMAP_EXAMPLES ?= var/heatmap-examples

# Overlays (CAM and occlusion) of 4 COVID-19 films of the test split, into an
# ignored folder: they are derived from the shared data set, never commit them.
heatmap-examples: build ort
	$(BIN) heatmap render -test-positives 4 -method both -o $(HEATMAP_EXAMPLES)
	@echo "overlays in $(HEATMAP_EXAMPLES)/ (derived from ../shared/data: do not commit)"

# The deletion check of every configured model on every test-split positive.
heatmap-check: build ort
	$(BIN) heatmap check

# --- performance (docs/performance.md): realistic films, end-to-end bench
.PHONY: films bench bench-quick bench-models bench-deps
# Python tooling of the bench: the PyTorch reference (pydicom with GDCM for
# JPEG lossless and JPEG 2000; Pillow's OpenJPEG for HTJ2K) and the film
# generator's encoders (dcmtk, GDCM, OpenJPH for the HTJ2K films).
DEB_BENCH      := python3-torch python3-torchvision python3-onnx python3-pil python3-pydicom python3-gdcm python3-numpy dcmtk libgdcm-tools openjph-tools
FILMS_DIR      ?= var/films
FILMS_N        ?= 24
BENCH_OUT      ?= out/bench
# The default setup's model, and the ensemble: every committed model, or
# e.g. BENCH_MODELS=models/squeezenet1_1,var/bench-models/resnet18,... (make bench-models).
BENCH_DEFAULT_MODEL ?= models/squeezenet1_1
BENCH_MODELS   ?= $(shell ls -d models/*/manifest.json 2>/dev/null | sed 's:/manifest.json$$::' | paste -sd, -)
BENCH_SECONDS  ?= 120s
BENCH_RATE     ?= 1
BENCH_LATENCY_FILMS ?= 100
BENCH_NATS_SECONDS ?= 45s
BENCH_BACKLOG  ?= 10000
BENCH_FLAGS    ?=
# The int8 default model and the int8 ensemble beside the fp32 ones, and
# both with reduced-resolution decode (issue 18); empty or 0: skip.
BENCH_INT8_MODEL ?= $(wildcard models/int8/squeezenet1_1-int8)
BENCH_INT8_MODELS ?= $(wildcard models/int8/*-int8)
BENCH_REDUCED  ?= 1

bench-deps:
	@$(MAKE) --no-print-directory install-debs DEBS="$(DEB_BENCH)"

# Full-size DICOM films (5 transfer syntaxes x FILMS_N images of the test
# split: explicit, jpegll, j2kll, j2k, htj2kll) into an ignored folder: derived from ../shared/data, never commit them.
films: bench-deps
	$(PYTHON) scripts/gen-films.py --out $(FILMS_DIR) --n $(FILMS_N)

# Untrained ResNet18, DenseNet-121, ResNet50 in the exported form, for the
# ensemble before the trained ones land in models/ (speed does not depend on weights).
bench-models: bench-deps
	$(PYTHON) training/bench_models.py --out var/bench-models

bench: build ort films
	$(GO) build -o bin/triaged-bench ./cmd/triaged-bench
	bin/triaged-bench -films $(FILMS_DIR) -out $(BENCH_OUT) -default-model $(BENCH_DEFAULT_MODEL) -models "$(BENCH_MODELS)" \
		-seconds $(BENCH_SECONDS) -rate $(BENCH_RATE) -latency-films $(BENCH_LATENCY_FILMS) -nats-seconds $(BENCH_NATS_SECONDS) \
		-backlog $(BENCH_BACKLOG) -python $(PYTHON) -int8-model "$(BENCH_INT8_MODEL)" -int8-models "$(BENCH_INT8_MODELS)" \
		-reduced=$(if $(filter 1 true yes,$(BENCH_REDUCED)),true,false) $(BENCH_FLAGS)

# A few minutes: checks the harness end to end, measures nothing worth quoting.
bench-quick:
	$(MAKE) --no-print-directory bench BENCH_FLAGS=-quick BENCH_OUT=out/bench-quick

# --- issue 18's accuracy gates (docs/performance.md); need ../shared/data
.PHONY: films-gate gate-resolution films-gate-htj2k gate-resolution-htj2k int8 gate-int8
GATE_FILMS     ?= var/films-gate
GATE_SYNTAXES  ?= j2kll,j2k
GATE_FILMS_HTJ2K ?= var/films-gate-htj2k
GATE_ENSEMBLE  ?= -urgent 0.269455 -critical 0.926611
INT8_MODELS    ?= squeezenet1_1 resnet18 densenet121 resnet50
# Every test-split image as a full-size JPEG 2000 film, lossless and lossy
# (long: about 2 CPU-seconds of encoding per film).
films-gate: bench-deps
	$(PYTHON) scripts/gen-films.py --out $(GATE_FILMS) --all-test --syntaxes $(GATE_SYNTAXES)

# The same images as HTJ2K lossless films (OpenJPH; about 1 s per film).
films-gate-htj2k:
	$(MAKE) --no-print-directory films-gate GATE_FILMS=$(GATE_FILMS_HTJ2K) GATE_SYNTAXES=htj2kll

# Reduced-resolution vs full-size decode, the four models and the ensemble,
# on the gate films and the shared JPEG 2000 films.
gate-resolution: ort
	$(GO) run ./bench/gate -films $(GATE_FILMS) -extra ../shared/data/dicom/original/RG1_J2KI.dcm,../shared/data/dicom/original/RG3_J2KI.dcm \
		-models $(BENCH_MODELS) $(GATE_ENSEMBLE) -b-floor 448 -o out/gate-resolution

# The same gate on the HTJ2K lossless films.
gate-resolution-htj2k: ort
	$(GO) run ./bench/gate -films $(GATE_FILMS_HTJ2K) \
		-models $(BENCH_MODELS) $(GATE_ENSEMBLE) -b-floor 448 -o out/gate-resolution-htj2k

# int8 models (training/quantize.py), calibrated on 100 training-split images, into var/int8/NAME-int8.
int8: ort
	@for m in $(INT8_MODELS); do \
		$(PYTHON) training/quantize.py instrument --model models/$$m --out var/int8/$$m && \
		$(GO) run ./bench/calib -model var/int8/$$m/instrumented.onnx -tensors var/int8/$$m/tensors.json -set train -n 100 -o var/int8/$$m/ranges.json && \
		$(PYTHON) training/quantize.py quantize --model models/$$m --ranges var/int8/$$m/ranges.json --out var/int8/$$m-int8 || exit 1; \
	done

# fp32 vs int8 on the test split's images, with images/s at batch 1 and 8
# (the arms pair models by position: both lists in INT8_MODELS order).
gate-int8: ort
	$(GO) run ./bench/gate -labels ../shared/data/cxr/labels.csv -split models/split.json -set test \
		-models $$(for m in $(INT8_MODELS); do printf 'models/%s,' $$m; done | sed 's/,$$//') \
		-b-models $$(for m in $(INT8_MODELS); do printf 'var/int8/%s-int8,' $$m; done | sed 's/,$$//') \
		$(GATE_ENSEMBLE) -speed 3s -o out/gate-int8
