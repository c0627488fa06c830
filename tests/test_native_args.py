"""native_args.conv_types: a convolution's NIR types computed right (nir 1.0.8 takes the kernel's first spatial size
for every axis and a grouped convolution's input channels from the weight), checked against torch itself."""

from __future__ import annotations

import nir
import numpy as np
import torch

from snnbridge.backends.native_args import conv_types, native_graph


def test_conv_types_match_torch_for_every_kernel_stride_padding_dilation_and_groups():
    rng = np.random.default_rng(0)
    for _ in range(200):
        groups = int(rng.choice([1, 2]))
        c_in, c_out = 2 * groups, 2 * groups
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        hw = (int(rng.integers(6, 12)), int(rng.integers(6, 12)))
        w = rng.normal(size=(c_out, c_in // groups) + k)
        node = nir.Conv2d(input_shape=hw, weight=w, stride=np.array(s), padding=np.array(p), dilation=np.array(d),
                          groups=groups, bias=np.zeros(c_out))
        y = torch.nn.functional.conv2d(torch.zeros((1, c_in) + hw), torch.zeros(w.shape, dtype=torch.float32),
                                       stride=s, padding=p, dilation=d, groups=groups)
        inp, out = conv_types(node)
        assert list(inp["input"]) == [c_in, *hw]
        assert list(out["output"]) == list(y.shape[1:]), (k, s, p, d, groups)
    c1 = nir.Conv1d(input_shape=9, weight=np.ones((3, 1, 2)), stride=2, padding=1, dilation=2, groups=2,
                    bias=np.zeros(3))
    assert list(conv_types(c1)[1]["output"]) == [3, 5]  # (9 + 2 - 2 - 1) // 2 + 1


def test_native_graph_accepts_a_non_square_strided_convolution():
    """nir 1.0.8's own check would refuse this chain (it computes the conv's output as [1, 7, 4])."""
    conv = nir.Conv2d(input_shape=(7, 8), weight=np.ones((1, 3, 3, 1)), stride=np.array([1, 2]),
                      padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=1, bias=np.zeros(1))
    nodes = {"input": nir.Input(input_type={"input": np.array([3, 7, 8])}), "conv": conv,
             "if": nir.IF(r=np.ones((1, 7, 5)), v_threshold=np.ones((1, 7, 5)), v_reset=np.zeros((1, 7, 5))),
             "output": nir.Output(output_type={"output": np.array([1, 7, 5])})}
    g = native_graph(nodes, [("input", "conv"), ("conv", "if"), ("if", "output")], {})
    assert list(g.nodes["conv"].output_type["output"]) == [1, 7, 5]
