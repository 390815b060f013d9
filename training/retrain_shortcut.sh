#!/bin/sh
cd /work/wt-dataset/training
exec nice -n 19 /usr/bin/python3 train.py --arch squeezenet1_1 --init model:../models/squeezenet1_1 --freeze none \
  --out runs/squeezenet1_1-shortcut --epochs 14 --lr 1e-4 --threads 1 --mixed-weight 8 --margin-mask 0.5 \
  --gamma 0.7,1.4 --jpeg-quality 40,95 --select within --resume
