"""The report's figures, embedded in ``report.html`` as PNG data URIs: spike rasters of the focus node and the
output node, membrane traces of the neuron that decides the focus node's spikes, accuracy against #Add."""

from __future__ import annotations

import numpy as np
import torch

from snnbridge.validation import explain as ex
from snnbridge.validation import plots
from snnbridge.validation.results import YARDSTICK, ConformanceResult


def draw(result: ConformanceResult, node: str, sample: int, extra_points: list[dict] | None = None) -> dict:
    """Data URIs (``None`` where there is nothing to draw) of ``raster``, ``raster_output``, ``membranes`` and
    ``chart``, and ``membrane_node``: the node whose membranes are drawn."""
    runs = result.all_runs()
    ref = result.yardstick.recording
    figs: dict[str, str | None] = {}

    def raster_for(n: str) -> str | None:
        if ref[n].dtype != torch.bool:
            return None
        panel = {}
        for name, b in runs.items():
            r = b.recording
            if n in r and r[n].shape == ref[n].shape:
                t = r[n][:, sample].reshape(ref.steps, -1)
                panel["yardstick (f64)" if name == YARDSTICK else name] = t.bool() if t.dtype == torch.bool else t > 0.5
        return plots.raster(panel, "yardstick (f64)", f"node '{n}' ({result.graph.type_of(n)}), sample {sample}")

    figs["raster"] = raster_for(node)
    out = result.graph.outputs[0]
    figs["raster_output"] = raster_for(out) if out != node else None
    # membranes: the node's own, or the neuron that decides its spikes
    from snnbridge.validation.conformance import _threshold_source

    src = _threshold_source(result.graph, node) or node
    if src in ref.membranes:
        traces, spikes = {}, {}
        for name, b in runs.items():
            r = b.recording
            label = "yardstick (f64)" if name == YARDSTICK else name
            if src in r.membranes and r.membranes[src].shape == ref.membranes[src].shape:
                traces[label] = r.membranes[src][:, sample].reshape(ref.steps, -1)
                if src in r and r[src].dtype == torch.bool:
                    spikes[label] = r[src][:, sample].reshape(ref.steps, -1)
        chosen: list[int] = []
        for b in result.backends.values():
            nr = b.nodes.get(src)
            fd = nr.first_divergence if nr else None
            if fd is not None and fd.sample == sample and fd.neuron not in chosen:
                chosen.append(fd.neuron)
        if ref[src].dtype == torch.bool:  # then neurons that cross θ about every other step: the dynamics show
            count = ref[src][:, sample].reshape(ref.steps, -1).double().sum(0)
            score = (count - ref.steps / 2).abs() + ref.steps * (count == 0)
        else:
            score = -ref.membranes[src][:, sample].reshape(ref.steps, -1).double().abs().sum(0)
        for i in torch.argsort(score, stable=True).tolist():
            if len(chosen) >= 3:
                break
            if i not in chosen:
                chosen.append(i)
        th = ex.threshold_of(result.graph, src)
        if th is not None:
            th = np.broadcast_to(th, result.graph.out_shapes[src]).reshape(-1)
        figs["membranes"] = plots.membranes(traces, spikes, chosen[:3], th,
                                            f"membrane of '{src}', sample {sample}") if traces else None
        figs["membrane_node"] = src
    else:
        figs["membranes"] = None
    pts = chart_points(result.to_dict(), extra_points)
    figs["chart"] = plots.accuracy_vs_adds(pts)
    return figs


def chart_points(doc: dict, extra_points: list[dict] | None) -> list[dict]:
    """The accuracy-vs-#Add chart's points: the yardstick, every backend with costs and accuracy, ``extra_points``."""
    pts = []
    ref = doc["reference"]
    if ref["costs"] and ref["accuracy"] is not None:
        pts.append({"label": "yardstick (f64)", "adds": ref["costs"]["adds"], "accuracy": ref["accuracy"],
                    "kind": "snn"})
    for b in doc["backends"]:
        if b["costs"] and b["accuracy"] is not None:
            pts.append({"label": b["name"], "adds": b["costs"]["adds"], "accuracy": b["accuracy"], "kind": "snn"})
    pts.extend(extra_points or [])
    return pts
