#!/bin/sh
# The three larger models, after SqueezeNet (see train_all.sh for the order
# and the reason for the epoch counts: CPU time on 2 cores).
set -e
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
train() { "$PY" train.py --resume --arch "$@" >> "runs/$1.log" 2>&1; }
train resnet18 --epochs 40 --lr 1e-3
train densenet121 --epochs 24 --lr 1e-3
train resnet50 --epochs 20 --lr 1e-3
