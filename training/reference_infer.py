"""PyTorch reference inference, in the style of the Deep-COVID paper's script.

Usage:
  /usr/bin/python3 training/reference_infer.py --model models/squeezenet1_1 [--model models/resnet18 ...]
      [--threads 2] [--csv out.csv] FILE_OR_DIR...

Image by image, as the paper's inference script does: open the film (PIL for
JPEG/PNG; pydicom + numpy for DICOM, with the daemon's display pipeline of
docs/dicom.md: Modality LUT, VOI LUT, window, identity or percentile stretch,
MONOCHROME1 inversion, to 8 bits; compressed syntaxes through pydicom's GDCM
handler, Debian's python3-gdcm; HTJ2K through Pillow's OpenJPEG), convert
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


def _first(v):
    """The first value of a possibly multi-valued element, as float."""
    import pydicom
    if isinstance(v, (pydicom.multival.MultiValue, list, tuple)):
        v = v[0]
    return float(v)


def _lut(ds, seq):
    """First item of a LUT sequence: (first mapped, bits, data) or None, as decode/header.go reads it."""
    items = getattr(ds, seq, None)
    if not items:
        return None
    it = items[0]
    desc, data = getattr(it, "LUTDescriptor", None), getattr(it, "LUTData", None)
    if desc is None or data is None:
        return None
    if isinstance(desc, bytes):
        desc = list(np.frombuffer(desc[:len(desc) & ~1], "<u2"))
    desc = [int(d) & 0xFFFF for d in desc]
    if len(desc) < 3:
        return None
    n = desc[0] or 65536
    first, bits = desc[1], desc[2]
    if not 1 <= bits <= 16:
        return None
    if isinstance(data, bytes):
        data = np.frombuffer(data[:len(data) & ~1], "<u2")
    data = np.asarray(data, dtype=np.int64) & 0xFFFF
    if data.size < n:
        return None
    return first, bits, data[:n].astype(np.float64)


# HTJ2K (1.2.840.10008.1.2.4.201-203) is newer than bookworm's pydicom 2.3
# and GDCM 3.0.21: the frame's codestream goes to Pillow, whose JPEG 2000
# plugin decodes it with OpenJPEG 2.5 (HT included), the library pydicom 3
# reaches through pylibjpeg-openjpeg for these syntaxes.
HTJ2K = ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")


def _know_htj2k():
    import pydicom._uid_dict
    for uid, name in zip(HTJ2K, ("HTJ2KLossless", "HTJ2KLosslessRPCL", "HTJ2K")):
        pydicom._uid_dict.UID_dictionary.setdefault(uid, (name, "Transfer Syntax", "", "", name))


def _htj2k_frame(ds):
    """The first frame's samples, right-aligned (Pillow scales them to 16 bits)."""
    import io
    from pydicom.encaps import generate_pixel_data_frame
    cs = next(generate_pixel_data_frame(ds.PixelData, 1))
    if len(cs) < 43 or cs[:4] != b"\xff\x4f\xff\x51":
        raise ValueError("HTJ2K frame without a codestream")
    prec, signed = (cs[42] & 0x7F) + 1, cs[42] & 0x80
    if signed or prec > 16:
        raise ValueError(f"HTJ2K: {prec}-bit {'signed' if signed else 'unsigned'} samples not handled here")
    im = Image.open(io.BytesIO(cs), formats=["JPEG2000"])
    a = np.asarray(im).astype(np.int64)
    return a >> (16 - prec) if im.mode.startswith("I;16") else a


def _stored(ds):
    """The first frame's stored values s (docs/dicom.md step 1), int64."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    ba = int(ds.BitsAllocated)
    bs = int(getattr(ds, "BitsStored", ba) or ba)
    hb = int(getattr(ds, "HighBit", bs - 1))
    pr = int(getattr(ds, "PixelRepresentation", 0) or 0)
    compressed = ds.file_meta.TransferSyntaxUID.is_compressed
    if not compressed and ba == 16:
        # The words as stored: pydicom's pixel_array would sign-extend from
        # Bits Stored alone, the rule takes the bits at High Bit.
        words = np.frombuffer(ds.PixelData, ("<" if ds.is_little_endian else ">") + "u2", count=rows * cols)
        shift = hb + 1 - bs
    elif str(ds.file_meta.TransferSyntaxUID) in HTJ2K:
        words, shift = _htj2k_frame(ds).ravel(), 0
    else:
        arr = ds.pixel_array
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            arr = arr[0]
        words = arr.ravel()
        shift = 0 if compressed else hb + 1 - bs  # codecs hand back right-aligned samples
    v = (words.astype(np.int64) >> shift) & ((1 << bs) - 1)
    if pr == 1:
        v = v - ((v >> (bs - 1)) & 1) * (1 << bs)
    return v.reshape(rows, cols), bs, pr


def _color_to_l(ds):
    arr = ds.pixel_array
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    pi = str(ds.PhotometricInterpretation).upper()
    ts = str(ds.file_meta.TransferSyntaxUID)
    lossy_jpeg = ts in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
    if lossy_jpeg or pi in ("RGB", "YBR_RCT", "YBR_ICT"):
        return Image.fromarray(arr, "RGB").convert("L")  # PIL's L: the daemon's rule
    y = arr[..., 0].astype(np.float64)
    if pi.startswith("YBR_PARTIAL"):
        y = np.floor(np.clip((y - 16) * 255 / 219, 0, 255) + 0.5)
    return Image.fromarray(y.astype(np.uint8), "L")


def dicom_to_pil(path):
    """The daemon's display pipeline (docs/dicom.md, "The display pipeline,
    exactly"; decode/render.go), in numpy, float64 as the rule states."""
    import pydicom
    _know_htj2k()
    ds = pydicom.dcmread(path)
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) == 3:
        return _color_to_l(ds)
    s, bs, pr = _stored(ds)
    # 2. Modality LUT Sequence, else rescale (a slope of 0 counts as absent).
    mlut = _lut(ds, "ModalityLUTSequence")
    rs, ri = getattr(ds, "RescaleSlope", None), getattr(ds, "RescaleIntercept", None)
    slope = (_first(rs) if rs not in (None, "") else 1.0) or 1.0
    inter = _first(ri) if ri not in (None, "") else 0.0
    if mlut:
        first, _, data = mlut
        if pr == 1 and first >= 1 << 15:
            first -= 1 << 16
        m = data[np.clip(s - first, 0, data.size - 1)]
    else:
        m = s.astype(np.float64) * slope + inter
    # 3. VOI: VOI LUT Sequence, first window (width > 0), identity for 8-bit
    # films, else the percentile stretch.
    vlut = _lut(ds, "VOILUTSequence")
    wc, ww = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    has_window = wc not in (None, "") and ww not in (None, "") and _first(ww) > 0
    if vlut:
        first, bits, data = vlut
        k = np.clip(np.floor(m) - first, 0, data.size - 1).astype(np.int64)
        y = data[k] * (255 / float((1 << bits) - 1))
    elif has_window:
        c, w = _first(wc), _first(ww)
        fn = str(getattr(ds, "VOILUTFunction", "") or "LINEAR").strip().upper()
        if fn == "LINEAR_EXACT":
            y = ((m - c) / w + 0.5) * 255
        elif fn == "SIGMOID":
            y = 255 / (1 + np.exp(-4 * (m - c) / w))
        elif w <= 1:
            y = np.where(m <= c - 0.5, 0.0, 255.0)
        else:
            y = np.where(m <= c - 0.5 - (w - 1) / 2, 0.0,
                         np.where(m > c - 0.5 + (w - 1) / 2, 255.0, ((m - (c - 0.5)) / (w - 1) + 0.5) * 255))
    elif bs == 8 and pr == 0 and not mlut and slope == 1 and inter == 0:
        y = m
    else:
        v = m.ravel()
        n = v.size
        k = (n - 1) // 100
        part = np.partition(v, [k, n - 1 - k])
        lo, hi = part[k], part[n - 1 - k]
        if hi == lo:
            lo, hi = v.min(), v.max()
        y = np.zeros_like(m) if hi == lo else (m - lo) / (hi - lo) * 255
    # 4. 8 bits, round half up; 5. MONOCHROME1 or INVERSE: 255 - value.
    out = np.floor(np.clip(y, 0, 255) + 0.5).astype(np.uint8)
    inv = str(getattr(ds, "PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1" or \
        str(getattr(ds, "PresentationLUTShape", "")).strip().upper() == "INVERSE"
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
    # seconds is the whole film; load_s reading and decoding it to the RGB
    # PIL image, preprocess_s the transform, <model>_s each forward pass.
    w.writerow(["file"] + [n for n, _, _ in models] + ["ensemble", "seconds", "load_s", "preprocess_s"] +
               [n + "_s" for n, _, _ in models])
    n, t_all = 0, time.perf_counter()
    with torch.no_grad():
        for path in files_of(a.paths):
            t0 = time.perf_counter()
            im = load(path)
            t1 = time.perf_counter()
            x = tf(im).unsqueeze(0)
            t2 = time.perf_counter()
            ps, ts = [], []
            for _, ci, m in models:
                t = time.perf_counter()
                ps.append(float(m(x)[1][0, ci]))
                ts.append(time.perf_counter() - t)
            w.writerow([path] + [repr(p) for p in ps] + [repr(sum(ps) / len(ps)), f"{time.perf_counter() - t0:.4f}",
                                                        f"{t1 - t0:.4f}", f"{t2 - t1:.4f}"] + [f"{t:.4f}" for t in ts])
            n += 1
    dt = time.perf_counter() - t_all
    print(f"# {n} films in {dt:.2f}s: {n / dt if dt else math.nan:.2f} films/s, {a.threads} threads, torch {torch.__version__}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
