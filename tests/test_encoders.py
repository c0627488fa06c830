"""Image → spike conversions (paper §3.1, Fig. 4a/4b) and the Fig. 8b MAE analysis."""

from __future__ import annotations

import math

import pytest
import torch

from snnbridge.models.encoders import ENCODERS, analog, bernoulli, encode, poisson, sampling_mae, spike_count_image


def test_bernoulli_extremes_and_rate():
    x = torch.tensor([[0.0, 1.0, 0.8]])
    s = bernoulli(x, 4000, seed=0)
    assert s.shape == (4000, 1, 3) and set(s.unique().tolist()) <= {0.0, 1.0}
    assert s[:, 0, 0].sum() == 0 and s[:, 0, 1].sum() == 4000
    assert abs(float(s[:, 0, 2].mean()) - 0.8) < 0.02  # B(0.8, T) as in the paper's Fig. 4a


def test_poisson_probability():
    s = poisson(torch.tensor([0.5]), 20000, seed=1)
    assert abs(float(s.mean()) - (1 - math.exp(-0.5))) < 0.01


def test_seeded_and_generator_driven():
    x = torch.rand(2, 5)
    assert torch.equal(bernoulli(x, 7, seed=3), bernoulli(x, 7, seed=3))
    assert not torch.equal(bernoulli(x, 7, seed=3), bernoulli(x, 7, seed=4))
    g = torch.Generator().manual_seed(0)
    assert not torch.equal(bernoulli(x, 7, g), bernoulli(x, 7, g))  # a generator advances


def test_encoding_layer_input_is_the_analog_image():
    x = torch.tensor([[0.2, 0.7]])
    a = analog(x, 3)
    assert a.shape == (3, 1, 2) and torch.equal(a[2], x)
    assert ENCODERS["layer"] is analog and ENCODERS["none"] is analog
    assert torch.equal(encode("layer", x, 3), a)
    with pytest.raises(ValueError, match="unknown encoder"):
        encode("rate", x, 3)


def test_spike_count_image():
    s = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])  # [T=4, B=1, 2]
    assert torch.allclose(spike_count_image(s), torch.tensor([[0.75, 0.25]]))


def test_sampling_mae_hand_computed_and_decreasing():
    binary = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    rows = sampling_mae(binary, [1, 5], repeats=3)
    assert [r["T"] for r in rows] == [1, 5] and all(r["mae_mean"] == 0 and r["mae_std"] == 0 for r in rows)
    half = torch.full((1, 400), 0.5)
    r1 = sampling_mae(half, [1], repeats=2)[0]
    assert r1["mae_mean"] == pytest.approx(0.5)  # T=1: every pixel is 0 or 1, |0.5 - s| = 0.5
    rows = sampling_mae(torch.rand(8, 64, generator=torch.Generator().manual_seed(0)), [1, 4, 16, 64], repeats=3)
    maes = [r["mae_mean"] for r in rows]
    assert maes == sorted(maes, reverse=True)  # Fig. 8b: precision loss falls with T
    assert 0.2 < maes[0] < 0.4 and maes[-1] < 0.06
