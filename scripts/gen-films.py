#!/usr/bin/python3
"""Realistic full-size test films from the shared chest X-ray images.

Usage (make films):
  /usr/bin/python3 scripts/gen-films.py [--out var/films] [--n 24] [--short 2000] [--long 2500]

The shared images are 8-bit JPEGs with a 256-pixel shorter side; hospitals
send 12-16 bit films of about 2500x2000 pixels, 5-15 MB, often compressed.
For each of n images of the test split (models/split.json, half COVID-19,
half not, so the committed model raises alerts on some), this writes one
film in each transfer syntax hospitals use:

  NNNN-explicit.dcm   Explicit VR Little Endian (native)         1.2.840.10008.1.2.1
  NNNN-jpegll.dcm     JPEG Lossless SV1 (dcmtk dcmcjpeg +e1)     1.2.840.10008.1.2.4.70
  NNNN-j2kll.dcm      JPEG 2000 lossless (gdcmconv --j2k)        1.2.840.10008.1.2.4.90
  NNNN-j2k.dcm        JPEG 2000 lossy, about 10:1 (gdcmconv)     1.2.840.10008.1.2.4.91
  NNNN-htj2kll.dcm    HTJ2K lossless (OpenJPH ojph_compress      1.2.840.10008.1.2.4.201
                      -reversible true, wrapped with pydicom)

The image is scaled (bicubic) so its shorter side is --short pixels and its
longer side at most --long (center crop beyond), mapped to 12 bits stored
in 16 (value x 16 + 8) with Gaussian detector noise (sigma 12 of 4096), so
lossless compression lands near real films' 2:1. Even-numbered films are
MONOCHROME2, odd ones MONOCHROME1 (stored inverted, Presentation LUT Shape
INVERSE); three films in four carry a window (centre and width varying
around the full range), the fourth none (the daemon's percentile stretch).
Tags are those of a CR/DX chest film (synthetic patient, study, series,
equipment, spacing). Every SOP Instance UID ends in a 10-digit component
starting with 1, which the bench rewrites to make unique copies.

The output is derived from the shared research data: it goes into an
ignored folder and must never be committed. A manifest.json lists every
film with its source image, label, syntax and photometric interpretation.
"""
import argparse
import csv
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "cxr"))
ROOT = "2.25.1813"  # UUID-derived root (2.25); the rest of each UID is a hash

SYNTAXES = [
    ("explicit", "1.2.840.10008.1.2.1", None),
    ("jpegll", "1.2.840.10008.1.2.4.70", ["dcmcjpeg", "+e1"]),
    ("j2kll", "1.2.840.10008.1.2.4.90", ["gdcmconv", "--quiet", "--j2k"]),
    ("j2k", "1.2.840.10008.1.2.4.91", ["gdcmconv", "--quiet", "--j2k", "--lossy", "--irreversible", "-r", "10"]),
    # No DICOM toolkit on Debian writes HTJ2K: write_htj2k encodes with OpenJPH.
    ("htj2kll", "1.2.840.10008.1.2.4.201", "htj2k"),
]


def uid(*parts):
    h = int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:24], 16)
    return f"{ROOT}.{h}"


def pick(n, split_path, labels_path):
    split = json.load(open(split_path))
    test = set(split["patients"]["test"])
    with open(labels_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["patient_id"] in test]
    rows.sort(key=lambda r: r["file"])
    cov = [r for r in rows if r["label"] == "covid"]
    non = [r for r in rows if r["label"] != "covid"]
    out = []
    for i in range(n):
        src = cov if i % 2 == 0 else non
        out.append(src[(i // 2) % len(src)])
    return out


def test_rows(split_path, labels_path):
    split = json.load(open(split_path))
    test = set(split["patients"]["test"])
    with open(labels_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["patient_id"] in test]
    rows.sort(key=lambda r: r["file"])
    return rows


def pixels(path, short, long_, rng):
    im = Image.open(path).convert("L")
    w, h = im.size
    s = short / min(w, h)
    nw, nh = max(short, round(w * s)), max(short, round(h * s))
    f = im.convert("F").resize((nw, nh), Image.BICUBIC)
    a = np.asarray(f, dtype=np.float64)
    # Center crop the longer side to at most long_.
    if nh > long_:
        t = (nh - long_) // 2
        a = a[t:t + long_]
    if nw > long_:
        l = (nw - long_) // 2
        a = a[:, l:l + long_]
    v = a * 16 + 8 + rng.normal(0, 12, a.shape)
    return np.clip(np.rint(v), 0, 4095).astype(np.uint16)


def write_native(path, px, i, row, mono1, window, now):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    sop_class = "1.2.840.10008.5.1.4.1.1.1.1" if i % 3 else "1.2.840.10008.5.1.4.1.1.1"  # DX for presentation, CR
    study, series = uid("study", i), uid("series", i)
    sop = f"{uid('sop', i)}.1000000000"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "2.25.18130000000000000000001"
    meta.ImplementationVersionName = "TRIAGED_BENCH"
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber = f"BENCH{i:06d}"
    ds.Modality = "DX" if i % 3 else "CR"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "triaged bench (synthetic)"
    ds.InstitutionName = "Synthetic General Hospital"
    ds.ReferringPhysicianName = "REFERRER^SYNTHETIC"
    ds.StationName = "BENCHDR01"
    ds.StudyDescription = "XR CHEST 1 VIEW"
    ds.SeriesDescription = "CHEST PA" if i % 4 != 3 else "CHEST AP"
    ds.ManufacturerModelName = "gen-films.py"
    ds.PatientName = f"SYNTHETIC^PATIENT{i:04d}"
    ds.PatientID = f"SYN{i:08d}"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA" if i % 4 != 3 else "AP"
    ds.PatientOrientation = ["L", "F"]
    ds.KVP = "120"
    ds.ExposureTime = "8"
    ds.XRayTubeCurrent = "320"
    ds.ImagerPixelSpacing = ["0.143", "0.143"]
    ds.PixelSpacing = ["0.143", "0.143"]
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.StudyID = f"{i:04d}"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.RequestedProcedurePriority = "ROUTINE"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if mono1 else "MONOCHROME2"
    ds.Rows, ds.Columns = px.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    if window:
        c, w = window
        ds.WindowCenter, ds.WindowWidth = f"{c:g}", f"{w:g}"
        ds.VOILUTFunction = "LINEAR"
    ds.PresentationLUTShape = "INVERSE" if mono1 else "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = (4095 - px if mono1 else px).astype("<u2").tobytes()
    ds.save_as(path, write_like_original=False)
    return sop


def write_htj2k(native, path, i, tmpdir):
    """HTJ2K lossless from the native film's stored samples: OpenJPH's
    ojph_compress (5 decomposition levels, its default, so a reduced decode
    can stop at 1/4 of the size) on a 16-bit PGM, the codestream wrapped as
    encapsulated Pixel Data (one fragment, empty offset table) with the
    native film's tags. A transcode by a tool other than the sender's gets
    a SOP Instance UID of its own, of the bench's rewritable form."""
    import pydicom
    import pydicom._uid_dict
    from pydicom.encaps import encapsulate
    # pydicom 2.3 (bookworm) predates the HTJ2K syntaxes: it refuses to
    # write a transfer syntax it does not know, so it learns this one.
    pydicom._uid_dict.UID_dictionary.setdefault("1.2.840.10008.1.2.4.201", (
        "High-Throughput JPEG 2000 Image Compression (Lossless Only)", "Transfer Syntax", "", "", "HTJ2KLossless"))
    ds = pydicom.dcmread(native)
    bits = int(ds.BitsStored)
    px = np.frombuffer(ds.PixelData, dtype="<u2").reshape(int(ds.Rows), int(ds.Columns))
    pgm, j2c = os.path.join(tmpdir, f"{i:04d}.pgm"), os.path.join(tmpdir, f"{i:04d}.j2c")
    with open(pgm, "wb") as f:
        f.write(f"P5\n{px.shape[1]} {px.shape[0]}\n{(1 << bits) - 1}\n".encode())
        f.write(px.astype(">u2").tobytes())
    subprocess.run(["ojph_compress", "-i", pgm, "-o", j2c, "-reversible", "true"], check=True, stdout=subprocess.DEVNULL)
    with open(j2c, "rb") as f:
        cs = f.read()
    os.remove(pgm)
    os.remove(j2c)
    sop = f"{uid('sop-htj2kll', i)}.1000000000"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SOPInstanceUID = sop
    ds.PixelData = encapsulate([cs])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "var", "films"))
    ap.add_argument("--n", type=int, default=24, help="source images (films = 5 x n)")
    ap.add_argument("--short", type=int, default=2000)
    ap.add_argument("--long", type=int, default=2500)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--split", default=os.path.join(REPO, "models", "split.json"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--syntaxes", default=",".join(n for n, _, _ in SYNTAXES),
                    help="comma-separated syntaxes to keep (the native film is always made, as the encoders' input)")
    ap.add_argument("--all-test", action="store_true",
                    help="every test-split image once, in file order (the accuracy gates), instead of --n balanced ones")
    a = ap.parse_args()
    keep = set(a.syntaxes.split(","))
    if not os.path.exists(os.path.join(a.data, "labels.csv")):
        sys.exit(f"the shared data set is not at {a.data}")
    for tool in ("dcmcjpeg", "gdcmconv", "ojph_compress"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (apt-get install dcmtk libgdcm-tools openjph-tools)")
    os.makedirs(a.out, exist_ok=True)
    settings = {"n": a.n, "short": a.short, "long": a.long, "seed": a.seed, "version": 1}
    unknown = keep - {n for n, _, _ in SYNTAXES}
    if unknown:
        sys.exit(f"unknown syntaxes {sorted(unknown)}: choose from {[n for n, _, _ in SYNTAXES]}")
    # A film set of the first four syntaxes (made before htj2kll) keeps its
    # manifest's settings; any other choice is recorded, so a set made with
    # fewer syntaxes is made again rather than taken as complete.
    if a.all_test or keep != {"explicit", "jpegll", "j2kll", "j2k"}:
        settings.update(all_test=a.all_test, syntaxes=sorted(keep))
    mpath = os.path.join(a.out, "manifest.json")
    if os.path.exists(mpath):
        old = json.load(open(mpath))
        if old.get("settings") == settings and not old.get("partial") and all(os.path.exists(os.path.join(a.out, f["file"])) for f in old["films"]):
            print(f"{len(old['films'])} films already in {a.out}")
            return
    # An interrupted run (partial manifest, same settings) resumes: the films
    # it listed are kept; the random draws of their images are replayed so
    # later films come out as an uninterrupted run would make them.
    done = {}
    if os.path.exists(mpath):
        old = json.load(open(mpath))
        if old.get("settings") == settings and old.get("partial"):
            for f in old["films"]:
                if os.path.exists(os.path.join(a.out, f["file"])):
                    done.setdefault(f["file"][:4], []).append(f)
    rng = np.random.default_rng(a.seed)
    now = datetime.datetime(2026, 11, 26, 9, 0, 0)
    films = []
    rows = pick(a.n, a.split, os.path.join(a.data, "labels.csv"))
    if a.all_test:
        rows = test_rows(a.split, os.path.join(a.data, "labels.csv"))
    for i, row in enumerate(rows):
        px = pixels(os.path.join(a.data, row["file"]), a.short, a.long, rng)
        mono1 = i % 2 == 1
        window = None
        if i % 4 != 2:
            c = 2048 + int(rng.integers(-160, 161))
            w = 4096 - int(rng.integers(0, 641))
            window = (4095 - c if mono1 else c, w)
        if len(done.get(f"{i:04d}", [])) == len(keep):
            films += done[f"{i:04d}"]
            continue
        base = os.path.join(a.out, f"{i:04d}")
        native = f"{base}-explicit.dcm"
        write_native(native, px, i, row, mono1, window, now)
        for name, ts, cmd in SYNTAXES:
            if name not in keep:
                continue
            path = f"{base}-{name}.dcm"
            if cmd == "htj2k":
                write_htj2k(native, path, i, a.out)
            elif cmd:
                subprocess.run(cmd + [native, path], check=True)
            if name == "j2k":
                # Lossy compression makes a new instance (GDCM gave it a UID of
                # its own); give it one of the bench's rewritable form.
                subprocess.run(["dcmodify", "-nb", "-q", "-m", f"(0008,0018)={uid('sop-lossy', i)}.1000000000", path], check=True)
            films.append({"file": os.path.basename(path), "image": row["file"], "label": row["label"],
                          "syntax": name, "transfer_syntax": ts, "photometric": "MONOCHROME1" if mono1 else "MONOCHROME2",
                          "window": bool(window), "rows": int(px.shape[0]), "columns": int(px.shape[1]),
                          "bytes": os.path.getsize(path)})
        if "explicit" not in keep:
            os.remove(native)
        # The manifest so far, so a long run (--all-test) can be used before it ends.
        with open(mpath, "w") as f:
            json.dump({"settings": settings, "partial": True, "films": films}, f, indent=1)
        print(f"{i + 1}/{len(rows)}: " + ", ".join(f"{f['syntax']} {f['bytes'] / 1e6:.1f} MB" for f in films[-len(keep):]), flush=True)
    with open(mpath, "w") as f:
        json.dump({"settings": settings, "films": films}, f, indent=1)
        f.write("\n")
    print(f"{len(films)} films in {a.out} (derived from the shared data set: never commit them)")


if __name__ == "__main__":
    main()
