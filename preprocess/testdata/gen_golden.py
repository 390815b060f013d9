"""Generate the preprocessing golden fixtures with Debian's Pillow and torchvision.

Usage: /usr/bin/python3 preprocess/testdata/gen_golden.py

For each synthetic gray image (odd sizes, down- and up-scaling, both
orientations) it writes <name>.png (the input), <name>.crop.png (the 8-bit
224x224 image after Resize(224)+CenterCrop(224), as PIL computes it) and
<name>.tensor.f32.gz (the float32 3x224x224 tensor after ToTensor+Normalize,
little endian). The Go golden test compares against these.
"""
import gzip
import os

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [(300, 257), (257, 300), (225, 800), (1001, 224), (150, 97), (1501, 1203), (224, 224), (227, 229)]


def synth(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    v = 128 + 60 * np.sin(x / 7.3) * np.cos(y / 11.1) + 50 * (x / w - y / h) + rng.normal(0, 20, (h, w))
    v[h // 3: h // 3 + 5, :] = 255  # sharp edges exercise ringing/clipping
    v[:, w // 2: w // 2 + 3] = 0
    return Image.fromarray(np.clip(np.rint(v), 0, 255).astype(np.uint8), "L")


def main():
    tf_crop = transforms.Compose([transforms.Resize(224), transforms.CenterCrop(224)])
    tf_norm = transforms.Compose([transforms.ToTensor(),
                                  transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    for i, (w, h) in enumerate(SIZES):
        name = f"synth_{w}x{h}"
        im = synth(w, h, i)
        im.save(os.path.join(HERE, name + ".png"))
        # The reference loads films as RGB; every channel equals the gray one.
        rgb = Image.open(os.path.join(HERE, name + ".png")).convert("RGB")
        crop = tf_crop(rgb)
        crop.getchannel(0).save(os.path.join(HERE, name + ".crop.png"))
        t = tf_norm(crop)
        assert t.dtype == torch.float32 and tuple(t.shape) == (3, 224, 224)
        with open(os.path.join(HERE, name + ".tensor.f32.gz"), "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
                f.write(t.numpy().astype("<f4").tobytes())
        print(name, crop.size)


if __name__ == "__main__":
    main()
