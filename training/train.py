"""Train one Deep-COVID architecture.

Usage:
  /usr/bin/python3 training/train.py --arch squeezenet1_1 [--init scratch|imagenet --weights PATH]
      [--epochs N] [--batch 32] [--lr 1e-3] [--seed 1] [--threads 2] [--resume]

Reads ../shared/data/cxr and models/split.json (see split.py), trains on the
train split with class-balanced oversampling and the paper's augmentation,
evaluates the validation split after every epoch and keeps the best epoch
(highest validation ROC AUC, then lowest validation loss) in
training/runs/<arch>/best.pt. Progress goes to stdout, one line per epoch,
and to training/runs/<arch>/history.json.
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from torchvision import transforms

import common


class Images(Dataset):
    def __init__(self, data_dir, rows, tf):
        # Decode and shrink once: the source JPEGs are 256 px on the short
        # side, so keeping them in memory costs ~70 MB and saves CPU per epoch.
        shrink = transforms.Resize(224)
        self.items = [(shrink(common.load_rgb(os.path.join(data_dir, r["file"]))),
                       common.LABELS.index(r["label"])) for r in rows]
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


def evaluate(model, loader, loss_fn):
    model.eval()
    tot, n, sc, lb = 0.0, 0, [], []
    with torch.no_grad():
        for x, y in loader:
            logits, probs, _, _ = model(x)
            tot += loss_fn(logits, y).item() * len(y)
            n += len(y)
            sc += probs[:, common.COVID_INDEX].tolist()
            lb += [int(v == common.COVID_INDEX) for v in y.tolist()]
    return tot / n, auc(sc, lb)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, choices=common.ARCHS)
    ap.add_argument("--init", default="scratch", choices=["scratch", "imagenet"])
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
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    common.seed_everything(a.seed)
    out = a.out or os.path.join(common.HERE, "runs", a.arch)
    os.makedirs(out, exist_ok=True)

    split = common.load_split(a.split)
    rows = common.read_labels(a.data)
    if common.sha256_file(os.path.join(a.data, "labels.csv")) != split["labels_sha256"]:
        raise SystemExit("labels.csv changed since the split was made; rerun split.py")
    t0 = time.time()
    train = Images(a.data, common.rows_for(rows, split, "train"), common.train_transform())
    val = Images(a.data, common.rows_for(rows, split, "val"), transforms.Compose([
        transforms.CenterCrop(224), transforms.ToTensor(), transforms.Normalize(common.MEAN, common.STD)]))
    print(f"loaded {len(train)} train / {len(val)} val images in {time.time()-t0:.1f}s", flush=True)

    # Oversample the minority class so each epoch sees both classes equally,
    # the paper's answer to its class imbalance.
    ys = [y for _, y in train.items]
    counts = [ys.count(c) for c in range(len(common.LABELS))]
    weights = [1.0 / counts[y] for y in ys]
    g = torch.Generator().manual_seed(a.seed)
    sampler = WeightedRandomSampler(weights, num_samples=len(ys), replacement=True, generator=g)
    tl = DataLoader(train, batch_size=a.batch, sampler=sampler, num_workers=0, drop_last=True)
    vl = DataLoader(val, batch_size=64, shuffle=False, num_workers=0)

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
        vloss, vauc = evaluate(model, vl, loss_fn)
        rec = {"epoch": ep + 1, "train_loss": tot / n, "val_loss": vloss, "val_auc": vauc,
               "lr": sched.get_last_lr()[0], "seconds": time.time() - te}
        history.append(rec)
        improved = best is None or (vauc, -vloss) > (best["val_auc"], -best["val_loss"])
        if improved:
            best = rec
            torch.save(model.state_dict(), os.path.join(out, "best.pt"))
        print(f"{a.arch} epoch {ep+1}/{a.epochs} train_loss {rec['train_loss']:.4f} val_loss {vloss:.4f} "
              f"val_auc {vauc:.4f} {rec['seconds']:.0f}s{' *best' if improved else ''}", flush=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "rng": g.get_state(), "torch_rng": torch.get_rng_state(),
                    "history": history, "epoch": ep, "best": best}, last_path)
        with open(os.path.join(out, "history.json"), "w") as f:
            json.dump({"arch": a.arch, "init": a.init, "opt": a.opt, "clip": a.clip, "epochs": a.epochs, "batch": a.batch, "lr": a.lr,
                       "seed": a.seed, "threads": a.threads, "best": best, "history": history,
                       "train_images": len(train), "val_images": len(val),
                       "hardware": os.uname().machine + f", {os.cpu_count()} cpus, torch {torch.__version__} CPU"},
                      f, indent=1)
    print(f"best epoch {best['epoch']} val_auc {best['val_auc']:.4f}; total {sum(h['seconds'] for h in history)/60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
