"""Spike metrics, rate decoding and accuracy on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from snnbridge.validation import metrics as m
from snnbridge.validation.accuracy import accuracy, agreement, agreement_matrix, rate_predictions


def raster(rows: list[list[int]]) -> torch.Tensor:
    """``rows[n][t]`` for one sample → bool ``[T, 1, N]``."""
    return torch.tensor(rows, dtype=torch.bool).T.unsqueeze(1)


REF = raster([[1, 0, 1, 0], [0, 0, 0, 0]])
GOT = raster([[1, 0, 0, 1], [0, 1, 0, 0]])


def test_event_scores_hand_case():
    s = m.event_scores(REF, GOT)
    assert (s.tp, s.fp, s.fn) == (1, 2, 1)
    assert s.precision == pytest.approx(1 / 3)
    assert s.recall == pytest.approx(1 / 2)
    assert s.f1 == pytest.approx(2 / 5)


def test_event_scores_silent_is_perfect_not_fraction_of_zeros():
    z = torch.zeros(5, 2, 3, dtype=torch.bool)
    assert m.event_scores(z, z).f1 == 1.0
    one = z.clone()
    one[2, 1, 0] = True
    s = m.event_scores(one, z)  # 29 equal zeros out of 30 would be 0.97 "accuracy"; recall is 0
    assert (s.precision, s.recall, s.f1) == (1.0, 0.0, 0.0)


def test_count_difference():
    c = m.count_difference(REF, GOT)
    assert c.mean_abs == pytest.approx(0.5)  # per-neuron differences [0, +1]
    assert c.max_abs == 1
    assert (c.total_ref, c.total_got) == (2, 3)
    assert c.trains_differing == 2  # neuron 0 has equal counts but a different raster
    assert c.trains == 2


def test_first_divergence_step_then_sample_then_neuron():
    d = m.first_divergence(REF, GOT)
    assert (d.step, d.sample, d.neuron) == (1, 0, 1)
    assert (d.ref, d.got) == (0.0, 1.0)
    assert m.first_divergence(REF, REF) is None
    a = torch.zeros(3, 2, 2, 2, dtype=torch.bool)
    b = a.clone()
    b[2, 0, 1, 1] = True
    b[2, 1, 0, 0] = True
    b[1, 1, 1, 0] = True
    d = m.first_divergence(a, b)
    assert (d.step, d.sample, d.neuron, d.index) == (1, 1, 2, (1, 0))


def test_first_divergence_analog_tolerance():
    a = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]], dtype=torch.float64)
    b = a + torch.tensor([[[1e-12, 0.0]], [[0.0, 0.5]]], dtype=torch.float64)
    assert m.first_divergence(a, b, atol=1e-9).step == 1
    assert m.first_divergence(a, b, atol=1.0) is None


def test_van_rossum_closed_form():
    ref = torch.zeros(3, 1, 1, dtype=torch.bool)
    got = ref.clone()
    got[0, 0, 0] = True
    tau = 2.0
    want = math.sqrt((1 + math.exp(-2 / tau) + math.exp(-4 / tau)) / tau)
    mean, mx = m.van_rossum(ref, got, tau)
    assert mean == pytest.approx(want) and mx == pytest.approx(want)
    long_ref = torch.zeros(400, 1, 1, dtype=torch.bool)
    long_got = long_ref.clone()
    long_got[0] = True
    d = m.van_rossum(long_ref, long_got, 50.0)[0]
    assert d ** 2 == pytest.approx(1 / (50 * (1 - math.exp(-2 / 50))), rel=1e-6)  # → 1/2 as tau grows
    assert m.van_rossum(REF, REF)[0] == 0.0


def test_cosine_activity():
    assert m.cosine_activity(REF, GOT) == pytest.approx(4 / (2 * math.sqrt(5)))  # counts [2,0] vs [2,1]
    z = torch.zeros(4, 1, 2, dtype=torch.bool)
    assert m.cosine_activity(z, z) == 1.0
    assert m.cosine_activity(z, GOT) == 0.0


def test_best_lag_detects_shift():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(30, 2, 5, generator=g) < 0.3
    late = torch.zeros_like(ref)
    late[2:] = ref[:-2]
    assert m.best_lag(ref, late) == (2, 1.0)
    assert m.best_lag(ref, ref)[0] == 0


def test_max_abs_difference():
    a = torch.tensor([0.0, 1.0, -2.0])
    assert m.max_abs_difference(a, a + torch.tensor([0.0, -0.25, 0.5])) == 0.5


def test_rate_decoding_eq7_and_ties():
    out = torch.zeros(4, 3, 3, dtype=torch.bool)
    out[:, 0, 2] = True  # sample 0: class 2 fires every step
    out[:2, 1, 0] = True
    out[:3, 1, 1] = True  # sample 1: class 1 (3 spikes) beats class 0 (2)
    out[0, 2, 1] = out[0, 2, 2] = True  # sample 2: tie between 1 and 2 → lowest index
    assert rate_predictions(out).tolist() == [2, 1, 1]
    assert rate_predictions(torch.zeros(3, 2, 4)).tolist() == [0, 0]


def test_accuracy_and_agreement():
    p = torch.tensor([0, 1, 2, 3])
    assert accuracy(p, torch.tensor([0, 1, 0, 0])) == 0.5
    assert agreement(p, torch.tensor([0, 1, 2, 0])) == 0.75
    mat = agreement_matrix({"a": p, "b": torch.tensor([0, 0, 0, 0])})
    assert mat["a"]["b"] == 0.25 and mat["b"]["b"] == 1.0
    with pytest.raises(ValueError):
        accuracy(p, torch.tensor([1]))
