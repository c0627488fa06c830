"""The event-camera emulator: format, determinism, N-MNIST-like statistics, and the comparison with real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnbridge.data import (
    EVENT_DTYPE,
    EmulatorConfig,
    emulate_dataset,
    emulate_events,
    event_statistics,
    load_digits_mnist_like,
    load_nmnist,
    paired_event_statistics,
)
from snnbridge.data.errors import DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="module")
def digits():
    xtr, ytr, _, _ = load_digits_mnist_like()
    return xtr[:30], ytr[:30]


@pytest.fixture(scope="module")
def emulated(digits):
    return emulate_dataset(*digits, seed=0)


def test_format_and_sensor(emulated):
    ev = emulated.events[0]
    assert ev.dtype == EVENT_DTYPE
    assert emulated.sensor_size == (34, 34, 2)
    for e in emulated.events:
        assert np.all(np.diff(e["t"]) >= 0)
        assert e["x"].min() >= 0 and e["x"].max() < 34 and e["y"].min() >= 0 and e["y"].max() < 34
        assert set(np.unique(e["p"])) <= {0, 1}
        assert e["t"].min() >= 0 and e["t"].max() < EmulatorConfig().duration_us


def test_deterministic(digits):
    a = emulate_events(digits[0][:3], seed=7)
    b = emulate_events(digits[0][:3], seed=7)
    c = emulate_events(digits[0][:3], seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_statistics_are_nmnist_like(emulated):
    s = event_statistics(emulated)
    assert 1000 < s["events_mean"] < 8000  # real N-MNIST: ~4,000 per recording
    assert 0.45 < s["on_fraction"] < 0.55  # ON/OFF balanced
    assert 290 < s["duration_ms"] < 316  # three ~105 ms saccades
    for k in (1, 2, 3):
        assert 0.2 < s[f"saccade{k}_fraction"] < 0.5
    assert 5 <= s["x_p5"] and s["x_p95"] <= 30


def test_motion_moves_the_digit():
    img = torch.zeros(1, 1, 28, 28)
    img[0, 0, 10:18, 10:18] = 1.0  # a bright square
    ev = emulate_events(img, EmulatorConfig(noise_hz=0.0), seed=0)[0]
    early, late = ev[ev["t"] < 20_000], ev[(ev["t"] > 85_000) & (ev["t"] < 105_000)]
    # saccade 1 moves the image by (+3.5, +7): events drift down-right
    assert late["y"].mean() > early["y"].mean() + 3
    assert late["x"].mean() > early["x"].mean() + 1


def test_blank_image_gives_only_noise():
    ev = emulate_events(torch.zeros(2, 28, 28), EmulatorConfig(noise_hz=0.0))
    assert all(len(e) == 0 for e in ev)
    with pytest.raises(DataError, match="empty"):
        emulate_events(torch.zeros(0, 28, 28))


@pytest.mark.shared
def test_comparison_with_real_nmnist(emulated):
    if not (SHARED / "data" / "NMNIST").is_dir():
        pytest.skip("../shared/data/NMNIST not available")
    real = load_nmnist(SHARED / "data", train=True, limit=60)
    cmp = paired_event_statistics(emulated, real)
    assert 0.3 < cmp["events_mean"]["ratio"] < 3.0
    assert abs(cmp["on_fraction"]["emulated"] - cmp["on_fraction"]["real"]) < 0.05
    assert abs(cmp["duration_ms"]["ratio"] - 1) < 0.1
    assert cmp["x_max"]["real"] == 33 and cmp["x_max"]["emulated"] == 33
