"""Write a seeded, patient-disjoint train/val/test split of labels.csv.

Usage: /usr/bin/python3 training/split.py [--data DIR] [--seed 20201] [--out models/split.json]

Patients are grouped by (source, patient label) and each group is split
70/15/15, so every split holds every source and both classes in proportion.
A patient with both covid and non images counts as covid and all its
images stay in one split. The file lists patient IDs only (dataset
identifiers, not personal data) and the sha256 of the labels file it was made from.
"""
import argparse
import collections
import json
import os
import random

import common


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--seed", type=int, default=20201)
    ap.add_argument("--fractions", default="0.7,0.15,0.15")
    ap.add_argument("--out", default=os.path.join(common.REPO, "models", "split.json"))
    a = ap.parse_args()
    fr = [float(x) for x in a.fractions.split(",")]
    rows = common.read_labels(a.data)
    plabel, psource = {}, {}
    for r in rows:
        p = r["patient_id"]
        plabel[p] = "covid" if r["label"] == "covid" or plabel.get(p) == "covid" else "non"
        psource.setdefault(p, r["source"])
    groups = collections.defaultdict(list)
    for p in sorted(plabel):
        groups[(psource[p], plabel[p])].append(p)
    rng = random.Random(a.seed)
    out = {"train": [], "val": [], "test": []}
    for key in sorted(groups):
        ps = groups[key]
        rng.shuffle(ps)
        n = len(ps)
        nv = max(1, round(n * fr[1])) if n >= 3 else 0
        nt = max(1, round(n * fr[2])) if n >= 3 else 0
        out["test"] += ps[:nt]
        out["val"] += ps[nt:nt + nv]
        out["train"] += ps[nt + nv:]
    for k in out:
        out[k].sort()
    doc = {
        "schema": "triaged.split/v1",
        "seed": a.seed,
        "fractions": fr,
        "labels_sha256": common.sha256_file(os.path.join(a.data, "labels.csv")),
        "patients": out,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for k in ("train", "val", "test"):
        rs = common.rows_for(rows, doc, k)
        c = collections.Counter(r["label"] for r in rs)
        print(f"{k}: {len(out[k])} patients, {len(rs)} images, covid={c['covid']} non={c['non']}")


if __name__ == "__main__":
    main()
