"""Export a trained model to ONNX, calibrate its thresholds and write its manifest.

Usage:
  /usr/bin/python3 training/export.py --arch squeezenet1_1 [--run training/runs/squeezenet1_1]
      [--out models/squeezenet1_1] [--version 2026.11.26]

Writes <out>/model.onnx with a dynamic batch axis and four outputs
(logits, probs, features = last convolutional feature map, cam = class
activation maps computed in the graph), and <out>/manifest.json with the
sha256 the daemon checks, the labels (index 0 = COVID-19), the operating
thresholds calibrated on the validation split (urgent: sensitivity >= 98%,
critical: specificity >= 99%) and the training provenance.

It also writes <out>/reference_scores.csv: PyTorch's P(COVID-19) for every
validation and test image of the split, which the Go tests use to check that
the daemon's decode + preprocessing + ONNX Runtime path agrees with PyTorch.
"""
import argparse
import csv
import datetime
import json
import math
import os

import torch

import common


def finite(v):
    """JSON has no NaN: a metric a tiny validation set cannot give is null."""
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def calibrate(scores, labels, sens=0.98, spec=0.99):
    """The same rule as `triaged calibrate` (triage/calibrate.go).

    urgent: the largest threshold t with sensitivity(score >= t) >= sens.
    critical: the smallest threshold t with specificity >= spec, i.e. just
    above the score of the negative that may still be a false positive.
    critical is never below urgent.
    """
    pos = sorted(s for s, y in zip(scores, labels) if y)
    neg = sorted((s for s, y in zip(scores, labels) if not y), reverse=True)
    k = int(math.floor((1 - sens) * len(pos) + 1e-9))
    urgent = pos[k]
    m = int(math.floor((1 - spec) * len(neg) + 1e-9))
    critical = math.nextafter(neg[m], 1.0) if m < len(neg) else 0.0
    critical = max(critical, urgent)
    tp = sum(1 for s in pos if s >= urgent)
    tn = sum(1 for s in neg if s < critical)
    return {"urgent": urgent, "critical": critical,
            "urgent_sensitivity": tp / len(pos), "critical_specificity": tn / len(neg)}


@torch.no_grad()
def score_rows(model, data_dir, rows):
    tf = common.eval_transform()
    out = []
    for i in range(0, len(rows), 32):
        chunk = rows[i:i + 32]
        x = torch.stack([tf(common.load_rgb(os.path.join(data_dir, r["file"]))) for r in chunk])
        probs = model(x)[1][:, common.COVID_INDEX]
        out += [float(p) for p in probs]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, choices=common.ARCHS)
    ap.add_argument("--run", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--split", default=os.path.join(common.REPO, "models", "split.json"))
    ap.add_argument("--version", default=datetime.date.today().isoformat())
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run = a.run or os.path.join(common.HERE, "runs", a.arch)
    out = a.out or os.path.join(common.REPO, "models", a.arch)
    os.makedirs(out, exist_ok=True)
    hist = json.load(open(os.path.join(run, "history.json")))

    if hist["init"].startswith("model:"):
        model = common.folded(a.arch)  # fine-tuned from a committed model: already folded
    else:
        model = common.build(a.arch, "scratch" if hist["init"] == "scratch" else "plain")
    model.load_state_dict(torch.load(os.path.join(run, "best.pt"), map_location="cpu"))
    model.eval()
    common.fold_conv_bn(model)  # SqueezeNet's training-only batch norms
    common.fold_all_bn(model)   # conv+BN pairs, keeping module names (see common.fold_all_bn)

    onnx_path = os.path.join(out, "model.onnx")
    feat_shape, cam_shape = common.export_onnx(model, a.arch, onnx_path)

    rows = common.read_labels(a.data)
    if a.split == "auto":
        # A labels.csv without a split file (train.py --split auto): its
        # hashed validation part; no test part (evaluate with triaged model eval).
        _, val = common.auto_split(rows)
        test = []
        calibrated_on = f"validation part (--split auto) of {a.data}, {len(val)} images"
        if len({r["label"] for r in val}) < 2:
            # A handful of films (the walk-through): recalibrate with
            # `triaged model calibrate` on a proper set before any use.
            val = rows
            calibrated_on = f"all {len(rows)} images of {a.data} (the validation part lacks a class)"
    else:
        split = common.load_split(a.split)
        val = common.rows_for(rows, split, "val")
        test = common.rows_for(rows, split, "test")
        calibrated_on = f"validation split of models/split.json (seed {split['seed']}), {len(val)} images"
    vs = score_rows(model, a.data, val)
    th = calibrate(vs, [r["label"] == "covid" for r in val])
    th["calibrated_on"] = calibrated_on
    ts = score_rows(model, a.data, test)
    with open(os.path.join(out, "reference_scores.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        # Our model's outputs keyed by file; labels and sources stay in the shared labels.csv.
        w.writerow(["file", "split", "p_covid"])
        for split_name, rs, ss in (("val", val, vs), ("test", test, ts)):
            for r, s in zip(rs, ss):
                w.writerow([r["file"], split_name, repr(s)])

    best = hist["best"]
    manifest = {
        "schema": "triaged.model/v1",
        "name": a.arch,
        "architecture": a.arch,
        "version": a.version,
        "file": "model.onnx",
        "sha256": common.sha256_file(onnx_path),
        "input": {"name": common.INPUT_NAME, "shape": [-1, 3, 224, 224], "mean": common.MEAN, "std": common.STD},
        "outputs": {"logits": "logits", "probs": "probs", "features": "features", "cam": "cam"},
        "labels": common.LABELS,
        "covid_index": common.COVID_INDEX,
        "thresholds": th,
        "training": {
            "init": hist["init"], "freeze": hist.get("freeze", "none"), "optimizer": hist.get("opt", "adamw"), "lr": hist["lr"], "batch": hist["batch"],
            "epochs_run": len(hist["history"]), "best_epoch": best["epoch"], "best_val_auc": finite(best["val_auc"]),
            "best_val_within_auc": finite(best.get("val_within_auc")), "select": hist.get("select", "overall"),
            "against_shortcut": {k: hist.get(k) for k in ("mixed_weight", "margin_mask", "gamma", "jpeg_quality")},
            "train_minutes": round(sum(h["seconds"] for h in hist["history"]) / 60, 1),
            "hardware": hist.get("hardware", ""), "seed": hist["seed"],
            "train_images": hist.get("train_images"), "val_images": hist.get("val_images"),
            "features_shape": feat_shape, "cam_shape": cam_shape,
            "notes": ("trained with batch norm after every convolution, folded into the convolutions at export"
                      if a.arch.startswith("squeezenet") and hist["init"] == "scratch" else ""),
        },
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, allow_nan=False)
        f.write("\n")
    print(json.dumps({"model": onnx_path, "thresholds": th, "best_epoch": best["epoch"],
                      "val_auc": finite(best["val_auc"])}, indent=1))


if __name__ == "__main__":
    main()
