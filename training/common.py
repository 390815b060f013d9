"""Shared pieces of the training and export tooling.

The daemon never runs Python: this package exists to train, export and
cross-check the Deep-COVID models. Everything that must match the Go
inference path (preprocessing, output names, class order) is defined here once.
"""
import csv
import hashlib
import json
import os
import random

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision import transforms

ARCHS = ("squeezenet1_1", "resnet18", "resnet50", "densenet121")
LABELS = ["covid", "non"]  # index 0 = COVID-19, as in the paper's class folders
COVID_INDEX = 0
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
OUTPUT_NAMES = ["logits", "probs", "features", "cam"]
INPUT_NAME = "input"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "cxr"))


def eval_transform():
    """The reference evaluation preprocessing (Deep-COVID's test transform)."""
    return transforms.Compose([
        transforms.Resize(224),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])


def train_transform():
    """The paper augments with flips, small rotations and small distortions."""
    return transforms.Compose([
        transforms.Resize(224),
        transforms.RandomResizedCrop(224, scale=(0.75, 1.0), ratio=(0.9, 1.1)),
        transforms.RandomHorizontalFlip(),
        transforms.RandomRotation(10),
        transforms.ColorJitter(brightness=0.2, contrast=0.2),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])


def load_rgb(path):
    # Same call chain as the paper's inference script: PIL open, convert to RGB.
    with Image.open(path) as im:
        return im.convert("RGB")


def read_labels(data_dir):
    with open(os.path.join(data_dir, "labels.csv"), newline="") as f:
        return list(csv.DictReader(f))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_split(path):
    with open(path) as f:
        return json.load(f)


def rows_for(rows, split, name):
    pats = set(split["patients"][name])
    return [r for r in rows if r["patient_id"] in pats]


def auto_split(rows, val_fraction=0.2):
    """A patient-disjoint train/val split by a hash of the patient (or file),
    for a labels.csv without a split file (e.g. `triaged dataset export`)."""
    train, val = [], []
    for r in rows:
        key = r.get("patient_id") or r["file"]
        h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < val_fraction else train).append(r)
    return train, val


def seed_everything(seed):
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class TwoHead(nn.Module):
    """Wraps a torchvision classifier so one forward pass yields
    logits, softmax probabilities, the last convolutional feature map and the
    class activation maps (CAM, Zhou et al. 2016) computed from it.

    CAM is built inside the graph so the daemon gets the heatmap of a film
    from the same ONNX Runtime call that scores it.
    """

    def __init__(self, arch, net):
        super().__init__()
        self.arch = arch
        self.net = net

    def forward(self, x):
        a, n = self.arch, self.net
        if a.startswith("squeezenet"):
            f = n.features(x)
            # classifier = Dropout, Conv1x1(512->2), ReLU, AdaptiveAvgPool.
            # The ReLU'd 1x1 conv output is already one map per class.
            cam = n.classifier[2](n.classifier[1](f))
            logits = torch.flatten(F.adaptive_avg_pool2d(cam, 1), 1)
        elif a.startswith("resnet"):
            x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
            f = n.layer4(n.layer3(n.layer2(n.layer1(x))))
            logits = n.fc(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1))
            cam = torch.einsum("kc,nchw->nkhw", n.fc.weight, f)
        elif a.startswith("densenet"):
            f = F.relu(n.features(x))
            logits = n.classifier(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1))
            cam = torch.einsum("kc,nchw->nkhw", n.classifier.weight, f)
        else:
            raise ValueError(a)
        return logits, F.softmax(logits, dim=1), f, cam


def build(arch, init="scratch", weights=None):
    """Build an architecture with a 2-class head.

    init="imagenet" loads ImageNet weights from a local file (no download is
    attempted), replaces the last layer and freezes the backbone, as the paper
    did. init="scratch" trains every layer from a random start.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch}; choose from {ARCHS}")
    ctor = getattr(torchvision.models, arch)
    if init == "imagenet":
        if not weights or not os.path.exists(weights):
            raise SystemExit(f"--init imagenet needs --weights PATH to a local torchvision {arch} state dict")
        net = ctor(weights=None, num_classes=1000)
        net.load_state_dict(torch.load(weights, map_location="cpu"))
        for p in net.parameters():
            p.requires_grad = False
        replace_head(arch, net)
    elif init == "scratch":
        net = ctor(weights=None, num_classes=2)
        if arch.startswith("squeezenet"):
            add_conv_bn(net)
    elif init == "plain":  # the bare 2-class architecture, to load an imagenet-mode checkpoint
        net = ctor(weights=None, num_classes=2)
    else:
        raise ValueError(init)
    return TwoHead(arch, net)


def replace_head(arch, net):
    if arch.startswith("squeezenet"):
        conv = nn.Conv2d(512, 2, kernel_size=1)
        nn.init.normal_(conv.weight, mean=0.0, std=0.01)
        nn.init.zeros_(conv.bias)
        net.classifier[1] = conv
        net.num_classes = 2
    elif arch.startswith("resnet"):
        net.fc = nn.Linear(net.fc.in_features, 2)
    elif arch.startswith("densenet"):
        net.classifier = nn.Linear(net.classifier.in_features, 2)


class ConvBN(nn.Module):
    """A convolution followed by batch norm, for training only.

    SqueezeNet has no normalisation; trained from a random start on ~1000
    films its final ReLU died (every class map <= 0, zero gradient) within a
    few epochs under every optimiser we tried. With batch norm after each
    convolution it trains; fold_conv_bn() then folds the statistics back into
    the convolution, so the exported network is exactly torchvision's
    squeezenet1_1.
    """

    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(conv.out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))


def add_conv_bn(module):
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(module, name, ConvBN(child))
        else:
            add_conv_bn(child)


@torch.no_grad()
def _fused(c, bn):
    """A convolution computing conv c followed by eval-mode batch norm bn."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                      c.dilation, c.groups, bias=True)
    fused.weight.copy_(c.weight * scale.reshape(-1, 1, 1, 1))
    b = c.bias if c.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((b - bn.running_mean) * scale + bn.bias)
    return fused


@torch.no_grad()
def fold_conv_bn(module):
    """Replace every ConvBN by a plain Conv2d computing the same eval-mode function."""
    for name, child in module.named_children():
        if isinstance(child, ConvBN):
            setattr(module, name, _fused(child.conv, child.bn))
        else:
            fold_conv_bn(child)


@torch.no_grad()
def fold_all_bn(model, example=None):
    """Fold every batch norm that directly follows a convolution into it.

    This is what ONNX export does anyway in eval mode, but done here, with
    the modules keeping their names, the exported ONNX initializers carry the
    state-dict names, so the PyTorch reference script can rebuild the exact
    network from the committed ONNX file (see load_onnx_weights) instead of
    needing a second copy of the weights. Batch norms that follow something
    else (DenseNet's pre-activation norms) stay.
    """
    if example is None:
        example = torch.zeros(1, 3, 224, 224)
    produced = {}  # id(output tensor) -> (conv module name, the tensor, kept alive so ids stay unique)
    pairs = []
    names = {m: n for n, m in model.named_modules()}
    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(lambda mod, i, o: produced.__setitem__(id(o), (names[mod], o))))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(
                lambda mod, i, o: pairs.append((produced[id(i[0])][0], names[mod])) if id(i[0]) in produced else None))
    was_training = model.training
    model.eval()
    model(example)
    for h in hooks:
        h.remove()
    mods = dict(model.named_modules())
    for conv_name, bn_name in pairs:
        _set(model, conv_name, _fused(mods[conv_name], mods[bn_name]))
        _set(model, bn_name, nn.Identity())
    model.train(was_training)
    return len(pairs)


def _set(model, dotted, module):
    parent, _, leaf = dotted.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def folded(arch):
    """The inference-time architecture of an exported model: built, then BN-folded."""
    m = build(arch, "plain")
    m.eval()
    fold_all_bn(m)
    return m


@torch.no_grad()
def load_onnx_weights(model, onnx_path):
    """Load the weights of an exported ONNX file into its folded architecture.

    Initializers carry the state-dict names; where the exporter merged equal
    tensors into one initializer (it deduplicates), the parameter is found
    through the node of its module (node names carry the module path).
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(onnx_path).graph
    inits = {i.name: i for i in graph.initializer}
    # The exporter replaces a tensor equal to an earlier one by an Identity of it.
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    for out, src in list(alias.items()):
        while src in alias:
            src = alias[src]
        if src in inits:
            inits[out] = inits[src]
    slots = {"BatchNormalization": ["weight", "bias", "running_mean", "running_var"],
             "Conv": ["weight", "bias"], "Gemm": ["weight", "bias"]}
    by_module = {}
    for n in graph.node:
        if n.op_type in slots:
            path = ".".join(p for p in n.name.split("/")[:-1] if p)
            for param, name in zip(slots[n.op_type], list(n.input)[1:]):
                by_module[(path, param)] = name
    sd = model.state_dict()
    new, missing = {}, []
    for k, v in sd.items():
        name = k if k in inits else None
        if name is None and not k.endswith("num_batches_tracked"):
            path, _, param = k.rpartition(".")
            name = by_module.get((path.removeprefix("net."), param))
        if name is None or name not in inits:
            if not k.endswith("num_batches_tracked"):
                missing.append(k)
            new[k] = v
            continue
        new[k] = torch.from_numpy(np.array(numpy_helper.to_array(inits[name]))).reshape(v.shape)
    if missing:
        raise SystemExit(f"{onnx_path}: no initializer for {missing[:5]} ... ({len(missing)} missing)")
    model.load_state_dict(new)
    return model


def export_onnx(model, arch, onnx_path, atol=0.0):
    """Export a folded model with a dynamic batch axis and the four outputs.

    The PyTorch reference rebuilds the network from the ONNX file alone, so
    the rebuilt one is checked against the exported one here (bit-identical
    with atol 0). Returns the per-image shapes of the features and cam outputs.
    """
    import onnx
    x = torch.zeros(2, 3, 224, 224)
    torch.onnx.export(model, x, onnx_path, input_names=[INPUT_NAME], output_names=OUTPUT_NAMES,
                      dynamic_axes={n: {0: "batch"} for n in [INPUT_NAME] + OUTPUT_NAMES},
                      opset_version=13, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(onnx_path))
    probe = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        rebuilt = load_onnx_weights(folded(arch), onnx_path)(probe)[0]
        got = model(probe)[0]
        ok = torch.equal(rebuilt, got) if atol == 0 else torch.allclose(rebuilt, got, atol=atol)
        if not ok:
            raise SystemExit(f"{arch}: the network rebuilt from the ONNX file differs from the exported one")
        out = model(x)
    return list(out[2].shape[1:]), list(out[3].shape[1:])
