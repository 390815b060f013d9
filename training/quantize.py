#!/usr/bin/python3
"""Static int8 quantization (QDQ) of an exported model, written against the
ONNX graph with Debian's python3-onnx (no onnxruntime Python package is
reachable here; the result is what ONNX Runtime's own quantize_static makes
in QDQ format, so ONNX Runtime fuses it into QLinearConv).

  1. instrument: the fp32 model with every tensor to be quantized as an extra
     graph output, and tensors.json naming them;
  2. calibration (Go, the daemon's own decode and preprocessing):
       go run ./bench/calib -model DIR/instrumented.onnx -tensors DIR/tensors.json \\
           -set train -n 100 -o DIR/ranges.json
  3. quantize: the QDQ model and its manifest (name NAME-int8, sha256, the
     calibration's provenance under "training"; thresholds copied from the fp32
     model until `triaged model calibrate -write` recalibrates them).

  /usr/bin/python3 training/quantize.py instrument --model models/resnet18 --out var/int8/resnet18
  /usr/bin/python3 training/quantize.py quantize --model models/resnet18 --ranges var/int8/resnet18/ranges.json \\
      --out var/int8/resnet18-int8

What is quantized: every Conv with constant weights. Weights per output channel,
symmetric int8 (scale = max|w| / 127); biases int32 at scale x_scale * w_scale;
activations per tensor, asymmetric uint8 (U8S8, the combination x86 VNNI
accelerates), from the calibration's mean per-image min/max. A Conv whose only
consumer is a Relu has the Relu folded into its output quantization (zero
point 0 clamps at 0, exactly Relu), as ONNX Runtime's quantizer does. Gemm
(the classifier of the ResNets and DenseNet, under 1% of the work), pooling,
concatenation and softmax stay in float.
"""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import sys
from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def load(model_dir):
    man = json.load(open(os.path.join(model_dir, "manifest.json")))
    return man, onnx.load(os.path.join(model_dir, man["file"]))


def plan(g):
    """The Conv nodes to quantize and, per Conv, the tensor its output is
    ranged by (its Relu's output when the Relu is folded)."""
    inits = {i.name for i in g.initializer}
    outs = {o.name for o in g.output}
    consumers = defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    convs, fold = [], {}
    for n in g.node:
        if n.op_type != "Conv" or n.input[1] not in inits:
            continue
        convs.append(n)
        y = n.output[0]
        c = consumers[y]
        if len(c) == 1 and c[0].op_type == "Relu" and y not in outs and c[0].output[0] not in outs:
            fold[n.name or y] = c[0]
    return convs, fold


def ranged_tensors(g):
    convs, fold = plan(g)
    names = []
    for n in convs:
        relu = fold.get(n.name or n.output[0])
        for t in (n.input[0], relu.output[0] if relu else n.output[0]):
            if t not in names:
                names.append(t)
    return names


def instrument(a):
    man, m = load(a.model)
    names = ranged_tensors(m.graph)
    have = {o.name for o in m.graph.output} | {i.name for i in m.graph.input}
    for t in names:
        if t not in have:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    os.makedirs(a.out, exist_ok=True)
    onnx.save(m, os.path.join(a.out, "instrumented.onnx"))
    json.dump(names, open(os.path.join(a.out, "tensors.json"), "w"), indent=1)
    print(f"{len(names)} tensors to range in {a.out}/tensors.json")


def act_params(r):
    lo, hi = min(0.0, r["min"]), max(0.0, r["max"])
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(np.clip(round(-lo / scale), 0, 255))
    return np.float32(scale), np.uint8(zp)


def quantize(a):
    man, m = load(a.model)
    g = m.graph
    ranges = json.load(open(a.ranges))
    R = ranges["tensors"]
    convs, fold = plan(g)
    inits = {i.name: i for i in g.initializer}
    new_inits, head = [], []
    qparams = {}  # ranged tensor -> (scale, zp)
    for t in ranged_tensors(g):
        if t not in R:
            sys.exit(f"no calibration range for {t}")
        qparams[t] = act_params(R[t])

    def qdq(src, ranged, nodes):
        """Q/DQ of tensor src with the parameters of ranged; returns the DQ output."""
        s, z = qparams[ranged]
        sn, zn = f"{ranged}_scale", f"{ranged}_zp"
        if sn not in {i.name for i in new_inits}:
            new_inits.append(numpy_helper.from_array(np.array(s, np.float32), sn))
            new_inits.append(numpy_helper.from_array(np.array(z, np.uint8), zn))
        q, dq = f"{ranged}_q", f"{ranged}_dq"
        nodes.append(helper.make_node("QuantizeLinear", [src, sn, zn], [q], name=f"{ranged}_QuantizeLinear"))
        nodes.append(helper.make_node("DequantizeLinear", [q, sn, zn], [dq], name=f"{ranged}_DequantizeLinear"))
        return dq

    # Where each ranged tensor gets its Q/DQ: after the node producing it (a
    # folded Relu's output: after the Conv, from the Conv's output).
    after = defaultdict(list)  # producer output -> [(src, ranged)]
    removed = set()
    graph_inputs = {i.name for i in g.input}
    for n in convs:
        relu = fold.get(n.name or n.output[0])
        if relu is not None:
            after[n.output[0]].append((n.output[0], relu.output[0]))
            removed.add(id(relu))
        else:
            after[n.output[0]].append((n.output[0], n.output[0]))
    pre = []  # the graph input, quantized before any node
    ranged = {r for lst in after.values() for _, r in lst}
    for n in convs:
        x = n.input[0]
        if x in graph_inputs:
            if (x, x) not in pre:
                pre.append((x, x))
        elif x not in ranged:
            after[x].append((x, x))
            ranged.add(x)
    # Rename every use of a ranged tensor (not graph outputs) to its DQ output.
    rename = {r: f"{r}_dq" for lst in list(after.values()) + [pre] for _, r in lst}
    for n in g.node:
        if id(n) in removed:
            continue
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]
    # Weights and biases of the Convs.
    for n in convs:
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
        oc = w.shape[0]
        ws = np.abs(w.reshape(oc, -1)).max(axis=1) / 127.0
        ws[ws == 0] = 1.0
        wq = np.clip(np.rint(w / ws.reshape((oc,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
        base = n.input[1]
        new_inits += [numpy_helper.from_array(wq, base + "_q"), numpy_helper.from_array(ws.astype(np.float32), base + "_scale"),
                      numpy_helper.from_array(np.zeros(oc, np.int8), base + "_zp")]
        head.append(helper.make_node("DequantizeLinear", [base + "_q", base + "_scale", base + "_zp"], [base + "_dq"], axis=0,
                                     name=base + "_DequantizeLinear"))
        n.input[1] = base + "_dq"
        if len(n.input) > 2 and n.input[2] in inits:
            x = n.input[0][:-3] if n.input[0].endswith("_dq") else n.input[0]
            bs = (np.float64(qparams[x][0]) * ws).astype(np.float32)
            b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64)
            bq = np.clip(np.rint(b / bs), -2**31, 2**31 - 1).astype(np.int32)
            bb = n.input[2]
            new_inits += [numpy_helper.from_array(bq, bb + "_q"), numpy_helper.from_array(bs, bb + "_scale"),
                          numpy_helper.from_array(np.zeros(oc, np.int32), bb + "_zp")]
            head.append(helper.make_node("DequantizeLinear", [bb + "_q", bb + "_scale", bb + "_zp"], [bb + "_dq"], axis=0,
                                         name=bb + "_DequantizeLinear"))
            n.input[2] = bb + "_dq"
    # The new node order: weight DQs and the graph input's Q/DQ first, then
    # each node followed by the Q/DQ of what it produced.
    nodes = list(head)
    for src, r in pre:
        qdq(src, r, nodes)
    for n in g.node:
        if id(n) in removed:
            continue
        nodes.append(n)
        for o in n.output:
            for src, r in after.get(o, []):
                qdq(src, r, nodes)
    used = {i for n in nodes for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    onnx.checker.check_model(m)
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "model.onnx")
    onnx.save(m, path)
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    out = dict(man)
    out["name"] = man["name"] + "-int8"
    out["file"] = "model.onnx"
    out["sha256"] = sha
    training = man.get("training") or {}
    training = dict(training) if isinstance(training, dict) else {"fp32": training}
    training["quantization"] = {
        "method": "static QDQ, training/quantize.py: Conv weights int8 per output channel (symmetric), biases int32, "
                  "activations uint8 per tensor (mean per-image min/max), Relu folded; Gemm, pooling, softmax in float",
        "from": {"name": man["name"], "version": man["version"], "sha256": man["sha256"]},
        "calibration": {"set": ranges.get("set"), "images": len(ranges.get("images", [])),
                        "images_sha256": hashlib.sha256("\n".join(ranges.get("images", [])).encode()).hexdigest(),
                        "selection": "every len/n-th image of the set in labels.csv order", "tool": "bench/calib (daemon decode and preprocessing)"},
        "quantized_convs": len(convs), "folded_relus": len(removed),
        "date": datetime.date.today().isoformat(),
    }
    out["training"] = training
    out["thresholds"] = dict(man["thresholds"])
    out["thresholds"]["calibrated_on"] = "copied from the fp32 model: recalibrate with triaged model calibrate -write"
    json.dump(out, open(os.path.join(a.out, "manifest.json"), "w"), indent=1)
    print(f"{len(convs)} Convs quantized ({len(removed)} Relus folded): {path} sha256 {sha}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("instrument")
    i.add_argument("--model", required=True, help="fp32 model directory (manifest.json)")
    i.add_argument("--out", required=True)
    q = sub.add_parser("quantize")
    q.add_argument("--model", required=True)
    q.add_argument("--ranges", required=True, help="bench/calib output")
    q.add_argument("--out", required=True, help="the int8 model directory")
    a = ap.parse_args()
    {"instrument": instrument, "quantize": quantize}[a.cmd](a)


if __name__ == "__main__":
    main()
