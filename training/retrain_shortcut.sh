#!/bin/sh
# Issue 19: fine-tune the shipped default (SqueezeNet) against the source
# shortcut, in the background at the lowest priority on one thread:
#   nohup training/retrain_shortcut.sh > training/runs/squeezenet1_1-shortcut.log 2>&1 &
# Resumable: run it again and it continues from the last finished epoch.
# Non-COVID images of the sources that also have COVID-19 ones weighted 8x,
# the outer 8-16% band masked on half the images, random gamma and JPEG
# quality, the epoch kept by within-source validation AUC.
cd "$(dirname "$0")"
exec nice -n 19 "${PYTHON:-/usr/bin/python3}" train.py --arch squeezenet1_1 --init model:../models/squeezenet1_1 --freeze none \
  --out runs/squeezenet1_1-shortcut --epochs 14 --lr 1e-4 --threads 1 --mixed-weight 8 --margin-mask 0.5 \
  --gamma 0.7,1.4 --jpeg-quality 40,95 --select within --resume
