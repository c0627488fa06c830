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

# Per structure, by hand: (weights per layer, outputs per layer, additions per layer) with conv MACs =
# outputs × C_in·k·k (zero-padded taps included), pool additions = outputs × k·k (no weights; plus one
# multiplication per output), FC MACs = weights.
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
    "dvscifar10_cnn": (  # 42 (downsampled) → 42 → pool 21 → 21 → pool 10 (floor)
        [2 * 64 * 9, 0, 64 * 128 * 9, 0, 128 * 10 * 10 * 256, 256 * 10],
        [64 * 42 * 42, 64 * 21 * 21, 128 * 21 * 21, 128 * 10 * 10, 256, 10],
        [64 * 42 * 42 * 2 * 9, 64 * 21 * 21 * 4, 128 * 21 * 21 * 64 * 9, 128 * 10 * 10 * 4, 12800 * 256,
         256 * 10]),
}
POOLED = {  # outputs of the average pools (one multiplication by 1/k² each)
    "mnist_mlp": 0, "nmnist_mlp": 0, "mnist_cnn": 32 * 14 * 14 + 32 * 7 * 7, "cifar10_cnn": 64 * 16 * 16 + 128 * 8 * 8,
    "nmnist_cnn": 128 * 17 * 17 + 128 * 8 * 8, "dvscifar10_cnn": 64 * 21 * 21 + 128 * 10 * 10,
}


@pytest.mark.parametrize("key", sorted(TABLE1))
def test_table1_static_ann_costs(key):
    weights, outputs, macs = HAND[key]
    c = static_costs(TABLE1[key], TABLE1_INPUTS[key], "ann")
    assert c.weights == sum(weights)
    assert c.values == sum(outputs)  # #A: every layer's outputs, the classifier included
    pool_adds = 4 * POOLED[key]
    assert c.adds == sum(macs)
    assert c.muls == sum(macs) - pool_adds + POOLED[key]  # a pool output: 4 additions, 1 multiplication
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
    assert p.adds == p.muls == 32 * 16 * 9 + 32 * 4 * 10  # the pool costs nothing
    q = static_costs("Input-32C3-AP2-10", (1, 4, 4), "ann")
    assert (q.adds, q.muls) == (p.adds + 32 * 4 * 4, p.muls + 32 * 4)  # 2x2 pool: 4 additions + 1 mult. per output
    # without padded taps a 3x3 "same" conv on 4x4 has 3+3+3... taps: per axis 2+3+3+2 = 10, so 10·10 per map
    r = static_costs("Input-32C3-AP2-10", (1, 4, 4), "ann", conventions=Conventions(padded_taps=False))
    assert r.muls == q.muls - 32 * 16 * 9 + 32 * 10 * 10


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
    assert float(s2.sum()) > 0  # the output layer spikes: lif2's own spikes drive nothing, so adds ignore them
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


def test_padded_taps_same_on_both_sides():
    """An input that spikes everywhere once costs the SNN exactly the ANN's MACs, under either convention."""
    conv = nir.Conv2d(input_shape=(5, 4), weight=np.ones((3, 2, 3, 3)), stride=1, padding=1, dilation=1, groups=1,
                      bias=np.zeros(3))
    thr = nir.Threshold(threshold=np.full((3, 5, 4), 0.5))
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2, 5, 4])}), "conv": conv,
                            "thr": thr, "output": nir.Output(output_type={"output": np.array([3, 5, 4])})},
                     edges=[("input", "conv"), ("conv", "thr"), ("thr", "output")], type_check=False)
    fg = prepare(g)
    rec = ReferenceExecutor(fg).run(torch.ones(1, 1, 2, 5, 4, dtype=torch.float64).bool())
    for padded in (True, False):
        conv_ = Conventions(padded_taps=padded)
        ann = graph_costs(fg, conv_)
        snn = recorded_costs(fg, rec, conv_)
        assert snn.adds == pytest.approx(ann.muls)
    # by hand: padded 3·5·4·2·9 = 1080; real taps per axis (5 rows: 2+3+3+3+2 = 13, 4 cols: 2+3+3+2 = 10)
    assert graph_costs(fg).muls == 1080 and graph_costs(fg, Conventions(padded_taps=False)).muls == 3 * 2 * 13 * 10


# Table 6's static numbers, in 10^6 to 4 decimals as the paper prints them, derived by hand from Eqs. 8-9 and
# Table 1 (the numeric body of Table 6 is not in our copy of the paper, so these are derivations, not copies):
# (structure, input shape, extra CLI flags, #W, #A, #Add, #Mul).  Model-1/5 take the Table-1 inputs; Model-4
# the unfolded binary image [1, P·H·W, 100] with every conv at stride 2; CIFAR10 counts no pooling.
PAPER_ROWS = {
    "mnist_mlp/1": ("Input-512-10", "784", (), 406_528, 522, 406_528, 406_528),
    "mnist_cnn/1": ("Input-32C3-AP2-32C3-AP2-128FC-10", "1,28,28", (), 211_488, 39_338,
                    225_792 + 25_088 + 1_806_336 + 6_272 + 200_704 + 1_280,
                    225_792 + 6_272 + 1_806_336 + 1_568 + 200_704 + 1_280),
    "cifar10_cnn/1": ("Input-64C3-AP2-128C3-128C3-AP2-256FC-10", "3,32,32", ("--no-pooling-ops",),
                      1_728 + 73_728 + 147_456 + 2_097_152 + 2_560, 65_536 + 16_384 + 32_768 * 2 + 8_192 + 266,
                      1_769_472 + 18_874_368 + 37_748_736 + 2_097_152 + 2_560,
                      1_769_472 + 18_874_368 + 37_748_736 + 2_097_152 + 2_560),
    "nmnist_mlp/5": ("Input-512-512-10", "2312", (), 1_451_008, 1_034, 1_451_008, 1_451_008),
    "nmnist_cnn/5": ("Input-64C3-128C3-AP2-128C3-AP2-256FC-10", "2,34,34", (), 1_152 + 73_728 + 147_456 + 2_097_152
                     + 2_560, 73_984 + 147_968 + 36_992 * 2 + 8_192 + 266,
                     1_331_712 + 85_229_568 + 147_968 + 42_614_784 + 32_768 + 2_097_152 + 2_560,
                     1_331_712 + 85_229_568 + 36_992 + 42_614_784 + 8_192 + 2_097_152 + 2_560),
    "dvscifar10_cnn/5": ("Input-64C3-AP2-128C3-AP2-256FC-10", "2,42,42", (), 3_354_240,
                         112_896 + 28_224 + 56_448 + 12_800 + 266,
                         2_032_128 + 112_896 + 32_514_048 + 51_200 + 3_276_800 + 2_560,
                         2_032_128 + 28_224 + 32_514_048 + 12_800 + 3_276_800 + 2_560),
    "nmnist_mlp/4": ("Input-512-512-10", "231200", (), 231_200 * 512 + 262_144 + 5_120, 1_034,
                     231_200 * 512 + 262_144 + 5_120, 231_200 * 512 + 262_144 + 5_120),
    # [1, 2312, 100] → 64×1156×50 → 128×578×25 → AP 128×289×12 → 128×145×6 → AP 128×72×3 → 256 → 10
    "nmnist_cnn/4": ("Input-64C3s2-128C3s2-AP2-128C3s2-AP2-256FC-10", "1,2312,100", (),
                     576 + 73_728 + 147_456 + 27_648 * 256 + 2_560,
                     3_699_200 + 1_849_600 + 443_904 + 111_360 + 27_648 + 266,
                     3_699_200 * 9 + 1_849_600 * 576 + 443_904 * 4 + 111_360 * 1_152 + 27_648 * 4 + 27_648 * 256
                     + 2_560,
                     3_699_200 * 9 + 1_849_600 * 576 + 443_904 + 111_360 * 1_152 + 27_648 + 27_648 * 256 + 2_560),
    # [1, 3528, 100] → 64×1764×50 → AP 64×882×25 → 128×441×13 → AP 128×220×6 → 256 → 10
    "dvscifar10_cnn/4": ("Input-64C3s2-AP2-128C3s2-AP2-256FC-10", "1,3528,100", (),
                         576 + 73_728 + 168_960 * 256 + 2_560,
                         5_644_800 + 1_411_200 + 733_824 + 168_960 + 266,
                         5_644_800 * 9 + 1_411_200 * 4 + 733_824 * 576 + 168_960 * 4 + 168_960 * 256 + 2_560,
                         5_644_800 * 9 + 1_411_200 + 733_824 * 576 + 168_960 + 168_960 * 256 + 2_560),
}


@pytest.mark.parametrize("row", sorted(PAPER_ROWS))
def test_cli_prints_table6_row(row, capsys, monkeypatch):
    from snnbridge.cli import main

    structure, shape, flags, w, a, add, mul = PAPER_ROWS[row]
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["costs", structure, "--input-shape", shape, "--paper-units", *flags]) == 0
    out = capsys.readouterr().out
    ann_line = next(line for line in out.splitlines() if "ANN" in line)
    cells = [c.strip() for c in ann_line.strip("│ ").split("│")]
    assert cells[1:3] == [f"{w / 1e6:.4f}", f"{a / 1e6:.4f}"]
    assert cells[5:7] == [f"{add / 1e6:.4f}", f"{mul / 1e6:.4f}"]
    assert cells[4] == f"{32 * (w + a) / 1e6:.4f}"  # Eq. 8: M = 32·(#W + #A) bits


def test_docs_table6_rows_match_the_derivations():
    """docs/validation.md's Table-6 rows are the derivations above (the table cannot drift from the test)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "validation.md").read_text()
    for row, (structure, shape, _, w, a, add, mul) in PAPER_ROWS.items():
        line = next(ln for ln in text.splitlines() if f"`{structure}`, {shape} |" in ln)
        assert line.rstrip(" |").split(" | ")[-4:] == [f"{v / 1e6:.4f}" for v in (w, a, add, mul)], row
