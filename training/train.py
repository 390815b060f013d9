"""Train one Deep-COVID architecture.

Usage:
  /usr/bin/python3 training/train.py --arch squeezenet1_1
      [--init scratch|imagenet --weights PATH|model:DIR [--freeze all-but-last|none]]
      [--data DIR] [--split models/split.json|auto] [--epochs N] [--batch 32] [--lr 1e-3]
      [--seed 1] [--threads 2] [--resume]
      [--mixed-weight W] [--margin-mask P] [--gamma LO,HI] [--jpeg-quality LO,HI] [--select overall|within]

--init model:DIR fine-tunes a committed model (models/<arch>/): its weights
are read back from the ONNX file (common.load_onnx_weights, checked
bit-identical at export), so a site starts from ours. --freeze all-but-last
trains only the last layer (the paper's mode), none trains every layer.

--data can be any folder with a labels.csv in training's columns, e.g. one
written by `triaged dataset export`; --split auto then splits its patients
(patient_id, else file) 80/20 into train/val by a hash, no split file needed.

Against the source shortcut (issue 19): --mixed-weight W draws non-COVID
images of the sources that also have COVID-19 images W times as often as
their class share (the class totals stay balanced); --margin-mask P replaces,
with probability P, an outer band of 8-16% of the crop by the mean (zero
after Normalize), where markers and text sit; --gamma and --jpeg-quality add
random gamma and JPEG re-encoding; --select within keeps the epoch with the
best within-source validation AUC (positive/negative pairs of the same
source only) instead of the overall one.

Reads ../shared/data/cxr and models/split.json (see split.py), trains on the
train split with class-balanced oversampling and the paper's augmentation,
evaluates the validation split after every epoch and keeps the best epoch
(highest validation ROC AUC, then lowest validation loss) in
training/runs/<arch>/best.pt. Progress goes to stdout, one line per epoch,
and to training/runs/<arch>/history.json.
"""
import argparse
import io
import json
import os
import random
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from PIL import Image
from torchvision import transforms

import common


class Gamma:
    """Random gamma on the 8-bit display image: sites window differently."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __call__(self, im):
        g = random.uniform(self.lo, self.hi)
        lut = [min(255, int(round(255 * (i / 255) ** g))) for i in range(256)] * len(im.getbands())
        return im.point(lut)


class JPEGQuality:
    """Random JPEG re-encoding: compression differs by source."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __call__(self, im):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=random.randint(self.lo, self.hi))
        buf.seek(0)
        with Image.open(buf) as j:
            return j.convert(im.mode)


class MarginMask:
    """With probability p, set an outer band of the normalised crop to zero
    (the ImageNet mean, the border test's fill), so laterality markers, text
    and tube labels near the edge cannot carry the decision."""

    def __init__(self, p, lo=0.08, hi=0.16):
        self.p, self.lo, self.hi = p, lo, hi

    def __call__(self, x):
        if random.random() >= self.p:
            return x
        h, w = x.shape[-2:]
        b = max(1, int(round(random.uniform(self.lo, self.hi) * min(h, w))))
        x = x.clone()
        x[..., :b, :] = 0
        x[..., h - b:, :] = 0
        x[..., :, :b] = 0
        x[..., :, w - b:] = 0
        return x


def train_transform(a):
    pre = []
    if a.jpeg_quality:
        pre.append(JPEGQuality(*a.jpeg_quality))
    if a.gamma:
        pre.append(Gamma(*a.gamma))
    tf = common.train_transform()
    steps = pre + list(tf.transforms)
    if a.margin_mask > 0:
        steps.append(MarginMask(a.margin_mask))
    return transforms.Compose(steps)


def parse_range(s, conv):
    lo, hi = (conv(v) for v in s.split(","))
    return lo, hi


class Images(Dataset):
    def __init__(self, data_dir, rows, tf):
        # Decode and shrink once: the source JPEGs are 256 px on the short
        # side, so keeping them in memory costs ~70 MB and saves CPU per epoch.
        shrink = transforms.Resize(224)
        self.items = [(shrink(common.load_rgb(os.path.join(data_dir, r["file"]))),
                       common.LABELS.index(r["label"])) for r in rows]
        self.sources = [r.get("source", "") for r in rows]
        self.tf = tf

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        im, y = self.items[i]
        return self.tf(im), y


def auc(scores, labels):
    """ROC AUC by the rank statistic; positives are label 1 here."""
    pairs = sorted(zip(scores, labels))
    npos = sum(labels)
    nneg = len(labels) - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg = (i + j + 1) / 2.0
        rank_sum += avg * sum(l for _, l in pairs[i:j])
        i = j
    return (rank_sum - npos * (npos + 1) / 2.0) / (npos * nneg)


def within_auc(scores, labels, sources):
    """AUC over the positive/negative pairs of the same source only: a model
    that tells sources apart gains nothing here."""
    num, den = 0.0, 0
    for src in set(sources):
        idx = [i for i, s in enumerate(sources) if s == src]
        sc, lb = [scores[i] for i in idx], [labels[i] for i in idx]
        npos = sum(lb)
        pairs = npos * (len(lb) - npos)
        if pairs:
            num += auc(sc, lb) * pairs
            den += pairs
    return num / den if den else float("nan")


def evaluate(model, loader, loss_fn, sources=None):
    model.eval()
    tot, n, sc, lb = 0.0, 0, [], []
    with torch.no_grad():
        for x, y in loader:
            logits, probs, _, _ = model(x)
            tot += loss_fn(logits, y).item() * len(y)
            n += len(y)
            sc += probs[:, common.COVID_INDEX].tolist()
            lb += [int(v == common.COVID_INDEX) for v in y.tolist()]
    w = within_auc(sc, lb, sources) if sources else float("nan")
    return tot / n, auc(sc, lb), w


def last_layer(arch, net):
    if arch.startswith("squeezenet"):
        return net.classifier[1]
    if arch.startswith("resnet"):
        return net.fc
    return net.classifier


def from_model(arch, spec, freeze):
    """The committed model of DIR (manifest.json + model.onnx), as a folded
    PyTorch network to fine-tune."""
    d = spec.removeprefix("model:")
    man = json.load(open(os.path.join(d, "manifest.json")))
    if man["architecture"] != arch:
        raise SystemExit(f"--init {spec}: the model is a {man['architecture']}, not {arch}")
    if man.get("labels") != common.LABELS:
        raise SystemExit(f"--init {spec}: labels {man.get('labels')}, want {common.LABELS}")
    model = common.load_onnx_weights(common.folded(arch), os.path.join(d, man["file"]))
    if freeze == "all-but-last":
        for p in model.parameters():
            p.requires_grad = False
        for p in last_layer(arch, model.net).parameters():
            p.requires_grad = True
    return model, man


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, choices=common.ARCHS)
    ap.add_argument("--init", default="scratch",
                    help="scratch, imagenet (with --weights) or model:DIR (fine-tune a committed model)")
    ap.add_argument("--freeze", default="none", choices=["none", "all-but-last"],
                    help="with --init model:DIR, train every layer (none) or only the last one")
    ap.add_argument("--weights", help="local torchvision ImageNet state dict (for --init imagenet)")
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--split", default=os.path.join(common.REPO, "models", "split.json"))
    ap.add_argument("--out", default=None, help="run folder (default training/runs/<arch>)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--opt", default="adamw", choices=["adamw", "sgd"])
    ap.add_argument("--clip", type=float, default=1.0, help="gradient norm clip (0 = off)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true", help="continue from last.pt in the run folder")
    ap.add_argument("--mixed-weight", type=float, default=1.0,
                    help="oversample non-COVID images of sources that also have COVID-19 images this many times")
    ap.add_argument("--margin-mask", type=float, default=0.0, help="probability of masking an outer band of the crop")
    ap.add_argument("--gamma", type=lambda v: parse_range(v, float), default=None, help="random gamma range LO,HI")
    ap.add_argument("--jpeg-quality", type=lambda v: parse_range(v, int), default=None,
                    help="random JPEG re-encoding quality range LO,HI")
    ap.add_argument("--select", default="overall", choices=["overall", "within"],
                    help="keep the epoch with the best overall or within-source validation AUC")
    a = ap.parse_args()
    if a.init not in ("scratch", "imagenet") and not a.init.startswith("model:"):
        raise SystemExit(f"--init {a.init}: want scratch, imagenet or model:DIR")

    torch.set_num_threads(a.threads)
    common.seed_everything(a.seed)
    out = a.out or os.path.join(common.HERE, "runs", a.arch)
    os.makedirs(out, exist_ok=True)

    rows = common.read_labels(a.data)
    if a.split == "auto":
        train_rows, val_rows = common.auto_split(rows)
    else:
        split = common.load_split(a.split)
        if common.sha256_file(os.path.join(a.data, "labels.csv")) != split["labels_sha256"]:
            raise SystemExit("labels.csv changed since the split was made; rerun split.py")
        train_rows, val_rows = common.rows_for(rows, split, "train"), common.rows_for(rows, split, "val")
    t0 = time.time()
    random.seed(a.seed)
    train = Images(a.data, train_rows, train_transform(a))
    val = Images(a.data, val_rows, transforms.Compose([
        transforms.CenterCrop(224), transforms.ToTensor(), transforms.Normalize(common.MEAN, common.STD)]))
    print(f"loaded {len(train)} train / {len(val)} val images in {time.time()-t0:.1f}s", flush=True)

    # Oversample the minority class so each epoch sees both classes equally,
    # the paper's answer to its class imbalance.
    ys = [y for _, y in train.items]
    counts = [ys.count(c) for c in range(len(common.LABELS))]
    weights = [1.0 / counts[y] for y in ys]
    if a.mixed_weight != 1.0:
        # Non-COVID images of the sources that also have COVID-19 ones are
        # the only negatives a source shortcut cannot explain: weight them
        # up within the non-COVID class, keeping the class totals.
        neg = 1 - common.COVID_INDEX
        mixed = {s for s, y in zip(train.sources, ys) if y == common.COVID_INDEX}
        raw = [a.mixed_weight if (y == neg and s in mixed) else 1.0 for s, y in zip(train.sources, ys)]
        tot = {c: sum(r for r, y in zip(raw, ys) if y == c) for c in range(len(common.LABELS))}
        weights = [r / tot[y] for r, y in zip(raw, ys)]
    g = torch.Generator().manual_seed(a.seed)
    sampler = WeightedRandomSampler(weights, num_samples=len(ys), replacement=True, generator=g)
    tl = DataLoader(train, batch_size=a.batch, sampler=sampler, num_workers=0, drop_last=True)
    if len(tl) == 0:
        raise SystemExit(f"{len(train)} training images make no full batch of {a.batch}; lower --batch")
    vl = DataLoader(val, batch_size=64, shuffle=False, num_workers=0)

    init_manifest = None
    if a.init.startswith("model:"):
        model, init_manifest = from_model(a.arch, a.init, a.freeze)
    else:
        model = common.build(a.arch, a.init, a.weights)
    params = [p for p in model.parameters() if p.requires_grad]
    if a.opt == "sgd":
        opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, nesterov=True, weight_decay=a.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay)
    steps = a.epochs * len(tl)
    warm = len(tl)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + __import__("math").cos(__import__("math").pi * min(s, steps) / steps)))
    loss_fn = nn.CrossEntropyLoss()

    history, start, best = [], 0, None
    last_path = os.path.join(out, "last.pt")
    if a.resume and os.path.exists(last_path):
        ck = torch.load(last_path, map_location="cpu")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        g.set_state(ck["rng"])
        torch.set_rng_state(ck["torch_rng"])
        history, start, best = ck["history"], ck["epoch"] + 1, ck["best"]
        print(f"resumed at epoch {start}", flush=True)

    for ep in range(start, a.epochs):
        model.train()
        te = time.time()
        tot, n = 0.0, 0
        for x, y in tl:
            opt.zero_grad()
            logits = model(x)[0]
            loss = loss_fn(logits, y)
            loss.backward()
            if a.clip > 0:
                # From scratch, one large early step can kill SqueezeNet's
                # final ReLU for good (every class map <= 0, zero gradient).
                nn.utils.clip_grad_norm_(params, a.clip)
            opt.step()
            sched.step()
            tot += loss.item() * len(y)
            n += len(y)
        vloss, vauc, vwithin = evaluate(model, vl, loss_fn, val.sources)
        rec = {"epoch": ep + 1, "train_loss": tot / n, "val_loss": vloss, "val_auc": vauc,
               "val_within_auc": vwithin, "lr": sched.get_last_lr()[0], "seconds": time.time() - te}
        history.append(rec)
        key = "val_within_auc" if a.select == "within" else "val_auc"
        improved = best is None or (rec[key], -vloss) > (best.get(key, float("nan")), -best["val_loss"]) \
            or (best.get(key) != best.get(key) and rec[key] == rec[key])
        if improved:
            best = rec
            torch.save(model.state_dict(), os.path.join(out, "best.pt"))
        print(f"{a.arch} epoch {ep+1}/{a.epochs} train_loss {rec['train_loss']:.4f} val_loss {vloss:.4f} "
              f"val_auc {vauc:.4f} within {vwithin:.4f} {rec['seconds']:.0f}s{' *best' if improved else ''}", flush=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "rng": g.get_state(), "torch_rng": torch.get_rng_state(),
                    "history": history, "epoch": ep, "best": best}, last_path)
        with open(os.path.join(out, "history.json"), "w") as f:
            json.dump({"arch": a.arch, "init": a.init, "freeze": a.freeze, "opt": a.opt,
                       "init_version": init_manifest["version"] if init_manifest else None,
                       "select": a.select, "mixed_weight": a.mixed_weight, "margin_mask": a.margin_mask,
                       "gamma": a.gamma, "jpeg_quality": a.jpeg_quality, "data": a.data, "split": a.split, "clip": a.clip, "epochs": a.epochs, "batch": a.batch, "lr": a.lr,
                       "seed": a.seed, "threads": a.threads, "best": best, "history": history,
                       "train_images": len(train), "val_images": len(val),
                       "hardware": os.uname().machine + f", {os.cpu_count()} cpus, torch {torch.__version__} CPU"},
                      f, indent=1)
    print(f"best epoch {best['epoch']} val_auc {best['val_auc']:.4f}; total {sum(h['seconds'] for h in history)/60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
