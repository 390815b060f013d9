#!/bin/sh
# The walk-through of training/README.md, "Fine-tune on your own films":
# labeled DICOM films -> triaged dataset export -> a short fine-tune from
# the shipped default -> export.py -> triaged model calibrate -> triaged
# model eval. Run from anywhere:
#
#   training/walkthrough.sh (-labels CSV | -folder DIR) WORKDIR [EPOCHS] [FREEZE]
#
# CSV: file,label[,source|site][,patient_id|patient] (files relative to the
# CSV); DIR: covid/ and non/ subfolders. Writes WORKDIR/dataset (export),
# WORKDIR/run (training), WORKDIR/model (the candidate model directory) and
# WORKDIR/eval (the evaluation). EPOCHS defaults to 1, FREEZE to
# all-but-last (the paper's mode: only the last layer trains; "none" trains
# every layer). Environment: TRIAGED (the triaged binary, default
# bin/triaged), PYTHON (default /usr/bin/python3), BASE (the model to start
# from, default models/squeezenet1_1), BATCH (default 8), THREADS (default 1).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
[ $# -ge 3 ] || { echo "usage: $0 (-labels CSV | -folder DIR) WORKDIR [EPOCHS] [FREEZE]" >&2; exit 2; }
kind=$1 input=$2 work=$3 epochs=${4:-1} freeze=${5:-all-but-last}
case $kind in -labels|-folder) ;; *) echo "$0: want -labels CSV or -folder DIR, got $kind" >&2; exit 2 ;; esac
TRIAGED=${TRIAGED:-$repo/bin/triaged}
PYTHON=${PYTHON:-/usr/bin/python3}
BASE=${BASE:-$repo/models/squeezenet1_1}
arch=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["architecture"])' "$BASE/manifest.json")
mkdir -p "$work"

echo "== 1. dataset export: each film through the daemon's decoder" >&2
"$TRIAGED" dataset export "$kind" "$input" -o "$work/dataset" || [ -s "$work/dataset/labels.csv" ]

echo "== 2. fine-tune $arch from $BASE ($epochs epoch(s), freeze $freeze)" >&2
"$PYTHON" "$here/train.py" --arch "$arch" --init "model:$BASE" --freeze "$freeze" --data "$work/dataset" --split auto \
    --epochs "$epochs" --batch "${BATCH:-8}" --lr 1e-4 --threads "${THREADS:-1}" --out "$work/run"

echo "== 3. export.py: ONNX, manifest, thresholds" >&2
"$PYTHON" "$here/export.py" --arch "$arch" --run "$work/run" --out "$work/model" --data "$work/dataset" --split auto \
    --threads "${THREADS:-1}" --version "walkthrough-$(date -u +%Y%m%d)"

echo "== 4. triaged model calibrate: the site's operating points, written into the manifest" >&2
"$TRIAGED" model calibrate -labels "$work/dataset/labels.csv" -models "$work/model" -workers 1 -write

echo "== 5. triaged model eval: metrics with CIs, per source, border test" >&2
"$TRIAGED" model eval -labels "$work/dataset/labels.csv" -models "$work/model" -workers 1 -heatmaps off -border 0.12 -o "$work/eval"
