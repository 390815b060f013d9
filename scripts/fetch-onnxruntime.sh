#!/bin/sh
# Fetch the ONNX Runtime CPU shared library for linux x64 from the npm
# package onnxruntime-node (the only place it is reachable here), check both
# the package's and the library's sha256, and cache it outside git.
#
# Usage: scripts/fetch-onnxruntime.sh DEST_DIR
# The version must match the C API onnxruntime_go v1.27.0 was built against.
set -eu
VERSION=1.24.1
TGZ_SHA256=57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772
LIB_SHA256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
DEST=${1:?usage: $0 DEST_DIR}
LIB="$DEST/libonnxruntime.so.1"

if [ -f "$LIB" ] && echo "$LIB_SHA256  $LIB" | sha256sum -c --status; then
	exit 0
fi
command -v npm >/dev/null || { echo "fetch-onnxruntime: npm is needed to fetch onnxruntime-node $VERSION" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "fetching onnxruntime-node@$VERSION from the npm registry (about 86 MB)..." >&2
(cd "$TMP" && npm pack --silent "onnxruntime-node@$VERSION" >/dev/null 2>"$TMP/npm.log") || { cat "$TMP/npm.log" >&2; exit 1; }
TGZ="$TMP/onnxruntime-node-$VERSION.tgz"
echo "$TGZ_SHA256  $TGZ" | sha256sum -c --status || { echo "fetch-onnxruntime: sha256 of $TGZ does not match" >&2; exit 1; }
tar -xzf "$TGZ" -C "$TMP" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
echo "$LIB_SHA256  $TMP/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | sha256sum -c --status || {
	echo "fetch-onnxruntime: sha256 of libonnxruntime.so.1 does not match" >&2; exit 1; }
mkdir -p "$DEST"
install -m 0644 "$TMP/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$LIB.tmp"
mv "$LIB.tmp" "$LIB"
echo "ONNX Runtime $VERSION library cached at $LIB" >&2
