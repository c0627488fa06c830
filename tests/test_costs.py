"""The paper's cost metrics (Eqs. 8-9): static values of every Table-1 structure by hand, and recorded SNN costs."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import prepare
from snnbridge.models import TABLE1, TABLE1_INPUTS
from snnbridge.validation.costs import Conventions, fan_out, graph_costs, recorded_costs, static_costs

# Per structure, by hand: (weights per layer, outputs per layer, MACs per layer) with conv MACs =
# outputs × C_in·k·k (zero-padded taps included), pool MACs = outputs × k·k (no weights), FC MACs = weights.
HAND = {
    "mnist_mlp": (
        [784 * 512, 512 * 10],
        [512, 10],
        [784 * 512, 512 * 10]),
    "mnist_cnn": (  # 28x28 → conv 28 → pool 14 → conv 14 → pool 7
        [1 * 32 * 9, 0, 32 * 32 * 9, 0, 32 * 7 * 7 * 128, 128 * 10],
        [32 * 28 * 28, 32 * 14 * 14, 32 * 14 * 14, 32 * 7 * 7, 128, 10],
        [32 * 28 * 28 * 1 * 9, 32 * 14 * 14 * 4, 32 * 14 * 14 * 32 * 9, 32 * 7 * 7 * 4, 1568 * 128, 128 * 10]),
    "cifar10_cnn": (  # 32 → 32 → pool 16 → 16 → 16 → pool 8
        [3 * 64 * 9, 0, 64 * 128 * 9, 128 * 128 * 9, 0, 128 * 8 * 8 * 256, 256 * 10],
        [64 * 32 * 32, 64 * 16 * 16, 128 * 16 * 16, 128 * 16 * 16, 128 * 8 * 8, 256, 10],
        [64 * 32 * 32 * 3 * 9, 64 * 16 * 16 * 4, 128 * 16 * 16 * 64 * 9, 128 * 16 * 16 * 128 * 9, 128 * 8 * 8 * 4,
         8192 * 256, 256 * 10]),
    "nmnist_mlp": (
        [2312 * 512, 512 * 512, 512 * 10],
        [512, 512, 10],
        [2312 * 512, 512 * 512, 512 * 10]),
    "nmnist_cnn": (  # 34 → 34 → 34 → pool 17 → 17 → pool 8 (floor)
        [2 * 64 * 9, 64 * 128 * 9, 0, 128 * 128 * 9, 0, 128 * 8 * 8 * 256, 256 * 10],
        [64 * 34 * 34, 128 * 34 * 34, 128 * 17 * 17, 128 * 17 * 17, 128 * 8 * 8, 256, 10],
        [64 * 34 * 34 * 2 * 9, 128 * 34 * 34 * 64 * 9, 128 * 17 * 17 * 4, 128 * 17 * 17 * 128 * 9, 128 * 8 * 8 * 4,
         8192 * 256, 256 * 10]),
    "dvscifar10_cnn": (  # 128 → 128 → pool 64 → 64 → pool 32
        [2 * 64 * 9, 0, 64 * 128 * 9, 0, 128 * 32 * 32 * 256, 256 * 10],
        [64 * 128 * 128, 64 * 64 * 64, 128 * 64 * 64, 128 * 32 * 32, 256, 10],
        [64 * 128 * 128 * 2 * 9, 64 * 64 * 64 * 4, 128 * 64 * 64 * 64 * 9, 128 * 32 * 32 * 4, 131072 * 256,
         256 * 10]),
}


@pytest.mark.parametrize("key", sorted(TABLE1))
def test_table1_static_ann_costs(key):
    weights, outputs, macs = HAND[key]
    c = static_costs(TABLE1[key], TABLE1_INPUTS[key], "ann")
    assert c.weights == sum(weights)
    assert c.values == sum(outputs)  # #A: every layer's outputs, the classifier included
    assert c.muls == sum(macs) and c.adds == sum(macs)
    assert c.memory_bits == 32 * (sum(weights) + sum(outputs))
    s = static_costs(TABLE1[key], TABLE1_INPUTS[key], "snn")
    assert (s.weights, s.values) == (sum(weights), sum(outputs))  # #P: pooling units are neurons (paper §4.1)
    assert s.adds is None and s.spikes is None and s.memory_bits is None and s.muls == 0
    assert s.static_memory_bits == 32 * (sum(weights) + sum(outputs))


def test_worked_example_mlp_and_conventions():
    c = static_costs("Input-512-10", 784, "ann")
    assert c.weights == 784 * 512 + 512 * 10 == 406_528
    b = static_costs("Input-512-10", 784, "ann", conventions=Conventions(bias=True))
    assert b.weights == 406_528 + 512 + 10
    assert b.adds == 406_528 + 522 and b.muls == 406_528  # one bias addition per output
    i = static_costs("Input-512-10", 784, "ann", conventions=Conventions(input_layer=True))
    assert i.values == 522 + 784
    p = static_costs("Input-32C3-AP2-10", (1, 4, 4), "ann", conventions=Conventions(pooling=False))
    assert p.adds == 32 * 16 * 9 + 32 * 4 * 10  # the pool costs nothing


def test_snn_estimate_and_encoding_layer():
    e = static_costs("Input-512-10", 784, "snn", T=20, rate=0.1)
    assert e.estimate and e.adds == pytest.approx(20 * 0.1 * 406_528)
    assert e.spikes == pytest.approx(0.1 * 522)
    assert e.memory_bits == pytest.approx(32 * (406_528 + 522) + 0.1 * 522)
    enc = static_costs("Input-512-10", 784, "snn", T=20, rate=0.1, encoding_layer=True)
    assert enc.muls == 20 * 784 * 512  # the first layer multiplies analog intensities at every step
    assert enc.adds == pytest.approx(20 * 784 * 512 + 20 * 0.1 * 5120)


def _small_graph(first_weight=None) -> nir.NIRGraph:
    lif = lambda n: nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n),  # noqa: E731
                            v_threshold=np.full(n, 0.5), v_reset=np.zeros(n))
    w1 = np.full((3, 4), 0.6) if first_weight is None else first_weight
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}), "fc1": nir.Linear(weight=w1), "lif1": lif(3),
             "fc2": nir.Affine(weight=np.full((2, 3), 0.7), bias=np.zeros(2)), "lif2": lif(2),
             "output": nir.Output(output_type={"output": np.array([2])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3, "reset": "zero"}, type_check=False)


def test_recorded_costs_by_hand():
    fg = prepare(_small_graph())
    x = (torch.rand(6, 3, 4, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    rec = ReferenceExecutor(fg).run(x)
    s_in = rec["input"].double().sum((0, 2))  # per sample
    s1 = rec["lif1"].double().sum((0, 2))
    s2 = rec["lif2"].double().sum((0, 2))
    c = recorded_costs(fg, rec)
    assert c.mode == "snn" and c.weights == 12 + 6 and c.values == 3 + 2
    assert c.adds == pytest.approx(float((3 * s_in + 2 * s1).mean()))  # spikes × fan-out
    assert c.muls == 0
    per_step = rec["lif1"].double().sum(2) + rec["lif2"].double().sum(2)  # [T, B]
    assert c.spikes == pytest.approx(float(per_step.max(0).values.mean()))
    assert c.memory_bits == pytest.approx(32 * 23 + c.spikes)
    assert s2.sum() >= 0
    with_bias = recorded_costs(fg, rec, Conventions(bias=True))
    assert with_bias.weights == 18 + 2 and with_bias.adds == pytest.approx(c.adds + 6 * 2)  # T·outputs
    with_input = recorded_costs(fg, rec, Conventions(input_layer=True))
    per_step_in = per_step + rec["input"].double().sum(2)
    assert with_input.spikes == pytest.approx(float(per_step_in.max(0).values.mean()))
    assert with_input.values == 5 + 4
    ann = graph_costs(fg)
    assert (ann.weights, ann.values, ann.adds, ann.muls) == (18, 5, 18.0, 18.0)


def test_encoding_layer_costs_from_analog_input():
    fg = prepare(_small_graph())
    x = torch.rand(5, 2, 4, generator=torch.Generator().manual_seed(2)).double() * 0.9 + 0.05  # analog
    rec = ReferenceExecutor(fg).run(x)
    c = recorded_costs(fg, rec)
    s1 = rec["lif1"].double().sum((0, 2))
    assert c.muls == 5 * 12  # T × MACs of the encoding layer
    assert c.adds == pytest.approx(5 * 12 + float((2 * s1).mean()))


def test_fan_out_conv_border_and_pool():
    conv = nir.Conv2d(input_shape=(3, 3), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1, dilation=1, groups=1,
                      bias=np.zeros(2))
    pool = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 3, 3])}), "conv": conv,
                            "pool": pool, "output": nir.Output(output_type={"output": np.array([2, 1, 1])})},
                     edges=[("input", "conv"), ("conv", "pool"), ("pool", "output")], type_check=False)
    fg = prepare(g)
    fo = fan_out(fg, "conv")[0]
    # centre pixel reaches all 9 outputs of each of 2 maps; corners 4, edges 6
    assert fo.tolist() == [[8, 12, 8], [12, 18, 12], [8, 12, 8]]
    assert fan_out(fg, "pool").tolist() == [[[1, 1, 0], [1, 1, 0], [0, 0, 0]]] * 2  # floor: last row/col unused
