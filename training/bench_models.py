"""Export untrained networks of the Deep-COVID architectures for benchmarking.

Usage:
  /usr/bin/python3 training/bench_models.py [--out var/bench-models] [--arch resnet18 ...]

The bench (docs/performance.md) needs the four-model ensemble before the
trained ResNet18, DenseNet-121 and ResNet50 land in models/. Speed does not
depend on the weights, so this writes, for each architecture, a randomly
initialised network in exactly the exported form of training/export.py
(batch norms folded with their module names kept, the same four outputs,
opset 13, dynamic batch) and a manifest.json the daemon loads. Its batch
norm statistics are first estimated on a few films of the shared data set
(else a deep untrained network without normalisation overflows to NaN),
so its scores are finite but meaningless: the manifest says so, and its
thresholds are placeholders. The output goes into an ignored folder; never
commit it.
"""
import argparse
import json
import os

import torch

import common


def calibrate_bn(model, data_dir, n=64, seed=1):
    """Running statistics of every batch norm from n films of the data set."""
    import random
    rows = common.read_labels(data_dir)
    random.Random(seed).shuffle(rows)
    tf = common.eval_transform()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for i in range(0, n, 16):
            x = torch.stack([tf(common.load_rgb(os.path.join(data_dir, r["file"]))) for r in rows[i:i + 16]])
            model(x)
    model.eval()


def export(arch, out, data_dir, seed):
    torch.manual_seed(seed)
    model = common.build(arch, "plain")
    calibrate_bn(model, data_dir)
    common.fold_all_bn(model)
    os.makedirs(out, exist_ok=True)
    onnx_path = os.path.join(out, "model.onnx")
    feat_shape, cam_shape = common.export_onnx(model, arch, onnx_path, atol=1e-5)
    manifest = {
        "schema": "triaged.model/v1",
        "name": arch,
        "architecture": arch,
        "version": "untrained-bench",
        "file": "model.onnx",
        "sha256": common.sha256_file(onnx_path),
        "input": {"name": common.INPUT_NAME, "shape": [-1, 3, 224, 224], "mean": common.MEAN, "std": common.STD},
        "outputs": {"logits": "logits", "probs": "probs", "features": "features", "cam": "cam"},
        "labels": common.LABELS,
        "covid_index": common.COVID_INDEX,
        "thresholds": {"urgent": 0.5, "critical": 0.9,
                       "calibrated_on": "placeholder: untrained benchmark network (training/bench_models.py)"},
        "training": {"init": "random (untrained, for benchmarks only)", "seed": seed,
                     "features_shape": feat_shape, "cam_shape": cam_shape,
                     "notes": "batch norm statistics estimated on 64 films, then folded; scores are meaningless"},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{arch}: {onnx_path} ({os.path.getsize(onnx_path) >> 20} MiB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(common.REPO, "var", "bench-models"))
    ap.add_argument("--arch", action="append", choices=common.ARCHS)
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for arch in a.arch or ["resnet18", "densenet121", "resnet50"]:
        d = os.path.join(a.out, arch)
        if os.path.exists(os.path.join(d, "manifest.json")):
            print(f"{arch}: {d} exists; keeping it")
            continue
        export(arch, d, a.data, a.seed)


if __name__ == "__main__":
    main()
