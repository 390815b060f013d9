"""PyTorch reference inference, in the style of the Deep-COVID paper's script.

Usage:
  /usr/bin/python3 training/reference_infer.py --model models/squeezenet1_1 [--model models/resnet18 ...]
      [--threads 2] [--csv out.csv] FILE_OR_DIR...

Image by image, as the paper's inference script does: open the film (PIL for
JPEG/PNG; pydicom + numpy for DICOM, with the daemon's display pipeline:
Modality LUT, VOI LUT or fallback, MONOCHROME1 inversion, to 8 bits), convert
to RGB, torchvision Resize(224) + CenterCrop(224) + ToTensor + Normalize, one
forward pass per model, softmax. The weights are read from the committed ONNX
files themselves (training/common.py load_onnx_weights), so the daemon and
this script score with the same weights. Prints one CSV line per file
(file, P(COVID-19) per model, ensemble mean, seconds) and a throughput line.
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

import common


def dicom_to_pil(path):
    """The daemon's decode/render rules (decode/decode.go), in numpy."""
    import pydicom
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array  # stored values, masked and sign-extended by pydicom
    if getattr(ds, "NumberOfFrames", 1) and int(getattr(ds, "NumberOfFrames", 1)) > 1:
        arr = arr[0]
    x = arr.astype(np.float64)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    inter = float(getattr(ds, "RescaleIntercept", 0) or 0)
    x = x * slope + inter
    wc, ww = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    first = lambda v: float(v[0]) if isinstance(v, pydicom.multival.MultiValue) else float(v)
    fn = str(getattr(ds, "VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if wc is not None and ww is not None and first(ww) >= 1:
        c, w = first(wc), first(ww)
        if fn == "LINEAR_EXACT":
            y = np.clip(((x - c) / w + 0.5) * 255, 0, 255)
        elif fn == "SIGMOID":
            y = 255 / (1 + np.exp(-4 * (x - c) / w))
        elif w <= 1:
            y = np.where(x <= c - 0.5, 0.0, 255.0)
        else:
            y = np.where(x <= c - 0.5 - (w - 1) / 2, 0.0,
                         np.where(x > c - 0.5 + (w - 1) / 2, 255.0, ((x - (c - 0.5)) / (w - 1) + 0.5) * 255))
    else:
        lo, hi = x.min(), x.max()
        y = np.zeros_like(x) if hi == lo else np.clip((x - lo) / (hi - lo) * 255, 0, 255)
    out = np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)
    inv = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1" or \
        str(getattr(ds, "PresentationLUTShape", "")).upper() == "INVERSE"
    if inv:
        out = 255 - out
    return Image.fromarray(out, "L")


def load(path):
    with open(path, "rb") as f:
        head = f.read(132)
    if len(head) == 132 and head[128:132] == b"DICM":
        return dicom_to_pil(path).convert("RGB")
    return common.load_rgb(path)


def files_of(args):
    for p in args:
        if os.path.isdir(p):
            for root, _, names in sorted(os.walk(p)):
                for n in sorted(names):
                    if not n.startswith("."):
                        yield os.path.join(root, n)
        else:
            yield p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="model directory (manifest.json + model.onnx)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--csv", help="write the scores here instead of stdout")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    models = []
    for d in a.model:
        man = json.load(open(os.path.join(d, "manifest.json")))
        m = common.load_onnx_weights(common.folded(man["architecture"]), os.path.join(d, man["file"]))
        m.eval()
        models.append((man["name"], man["covid_index"], m))
    tf = common.eval_transform()
    out = open(a.csv, "w", newline="") if a.csv else sys.stdout
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["file"] + [n for n, _, _ in models] + ["ensemble", "seconds"])
    n, t_all = 0, time.perf_counter()
    with torch.no_grad():
        for path in files_of(a.paths):
            t0 = time.perf_counter()
            x = tf(load(path)).unsqueeze(0)
            ps = [float(m(x)[1][0, ci]) for _, ci, m in models]
            w.writerow([path] + [repr(p) for p in ps] + [repr(sum(ps) / len(ps)), f"{time.perf_counter() - t0:.4f}"])
            n += 1
    dt = time.perf_counter() - t_all
    print(f"# {n} films in {dt:.2f}s: {n / dt if dt else math.nan:.2f} films/s, {a.threads} threads, torch {torch.__version__}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
