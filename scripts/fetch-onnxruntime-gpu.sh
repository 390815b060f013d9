#!/bin/sh
# Fetch the CUDA build of ONNX Runtime (the same version as the CPU library
# the daemon is built against) from its official GitHub release archive,
# check its pinned sha256, and install libonnxruntime.so.1 with the provider
# libraries beside it (ONNX Runtime dlopens libonnxruntime_providers_cuda.so
# and _shared.so from the directory of libonnxruntime.so.1).
#
# Usage: scripts/fetch-onnxruntime-gpu.sh DEST_DIR      (make ort-gpu)
#
# The archive could not be fetched where this script was written (no
# internet), so its sha256 is not pinned yet: TGZ_SHA256 below is a
# placeholder. The first run downloads the archive, prints its sha256 and
# stops. Compare that value with the one on the release page
# (https://github.com/microsoft/onnxruntime/releases/tag/v1.24.1), then
# either pin it here (and commit) or run once with
# ORT_GPU_SHA256=<that value> make ort-gpu.
#
# Needs on the GPU host: CUDA 12.x runtime libraries (libcudart.so.12,
# libcublas.so.12, libcublasLt.so.12, libcufft.so.11, libcurand.so.10) and
# cuDNN 9 for CUDA 12 (libcudnn.so.9), and an NVIDIA driver >= 525
# (docs/runbook.md#gpu-hosts). The script reports which are missing.
set -eu
VERSION=1.24.1
NAME=onnxruntime-linux-x64-gpu-$VERSION
URL=https://github.com/microsoft/onnxruntime/releases/download/v$VERSION/$NAME.tgz
TGZ_SHA256=${ORT_GPU_SHA256:-UNPINNED}
DEST=${1:?usage: $0 DEST_DIR}
LIB="$DEST/libonnxruntime.so.1"

command -v curl >/dev/null || { echo "fetch-onnxruntime-gpu: curl is needed" >&2; exit 1; }
if [ ! -f "$LIB" ] || [ ! -f "$DEST/libonnxruntime_providers_cuda.so" ]; then
	TMP=$(mktemp -d)
	trap 'rm -rf "$TMP"' EXIT
	echo "fetching $URL (about 300 MB)..." >&2
	curl -fL --retry 3 -o "$TMP/$NAME.tgz" "$URL"
	GOT=$(sha256sum "$TMP/$NAME.tgz" | cut -d' ' -f1)
	if [ "$TGZ_SHA256" = UNPINNED ]; then
		echo "fetch-onnxruntime-gpu: $NAME.tgz has sha256 $GOT" >&2
		echo "  no sha256 is pinned yet: check it against the release page, then pin it in $0" >&2
		echo "  or run: ORT_GPU_SHA256=$GOT make ort-gpu" >&2
		exit 1
	fi
	[ "$GOT" = "$TGZ_SHA256" ] || { echo "fetch-onnxruntime-gpu: sha256 of $NAME.tgz is $GOT, pinned $TGZ_SHA256" >&2; exit 1; }
	tar -xzf "$TMP/$NAME.tgz" -C "$TMP"
	mkdir -p "$DEST"
	for f in libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
		install -m 0644 "$TMP/$NAME/lib/$f" "$DEST/$f"
	done
	install -m 0644 "$TMP/$NAME/lib/libonnxruntime.so.$VERSION" "$LIB.tmp"
	mv "$LIB.tmp" "$LIB"
	echo "ONNX Runtime $VERSION with the CUDA provider installed in $DEST" >&2
fi
# What the CUDA provider links against that this host lacks.
missing=$(ldd "$DEST/libonnxruntime_providers_cuda.so" 2>/dev/null | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
if [ -n "$missing" ]; then
	echo "fetch-onnxruntime-gpu: the CUDA provider cannot load here yet; missing: $missing" >&2
	echo "  install CUDA 12 and cuDNN 9 (docs/runbook.md#gpu-hosts); the daemon falls back to CPU until then" >&2
else
	echo "CUDA provider libraries resolve. Set onnxruntime.library: $LIB and onnxruntime.device: cuda," >&2
	echo "then check with: triaged version -verbose -config /etc/triaged/triaged.yaml" >&2
fi
