"""Spike pattern → image conversions (paper Fig. 4c/4d) on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from snnbridge.data import binary_image, intensity_image


def _frames():
    # B=1, T=5, loc = (2, 2): four locations
    f = torch.zeros(1, 5, 2, 2)
    f[0, 0, 0, 0] = 1
    f[0, 1, 0, 0] = 3  # counts > 1 still mark a binary 1
    f[0, 3, 1, 1] = 1
    f[0, 4, 0, 1] = 1
    return f


def test_binary_image_unfolds_locations_against_time():
    img = binary_image(_frames())
    assert img.shape == (1, 1, 4, 5)
    want = torch.zeros(4, 5)
    want[0, 0] = want[0, 1] = want[3, 3] = want[1, 4] = 1
    assert torch.equal(img[0, 0], want)


def test_binary_image_aggregation_window():
    img = binary_image(_frames(), window=2)  # windows {0,1}, {2,3}, {4}
    want = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=torch.float32)
    assert torch.equal(img[0, 0], want)


def test_intensity_image_counts_and_normalises():
    img = intensity_image(_frames())
    assert img.shape == (1, 2, 2)
    assert torch.allclose(img[0], torch.tensor([[1.0, 0.25], [0.0, 0.25]]))
    assert torch.allclose(intensity_image(_frames(), norm="T")[0], torch.tensor([[0.8, 0.2], [0.0, 0.2]]))
    assert intensity_image(torch.zeros(2, 3, 4)).abs().sum() == 0  # silent sample stays zero


def test_bad_arguments():
    with pytest.raises(ValueError, match="window"):
        binary_image(_frames(), window=0)
    with pytest.raises(ValueError, match="norm"):
        intensity_image(_frames(), norm="sum")
    with pytest.raises(ValueError, match=r"\[B, T"):
        binary_image(torch.zeros(3))
