"""Eq. 6's surrogate gradient and §3.4's loss, value by value (STBP training, Models 3 and 6)."""

from __future__ import annotations

import pytest
import torch

from snnbridge.models.network import RectangularSurrogate
from snnbridge.models.training import paper_loss


@pytest.mark.parametrize("a", [0.25, 0.5])
def test_surrogate_gradient_is_1_over_a_inside_the_window(a):
    # x = u - u_th; Eq. 6: do/du ≈ (1/a)·sign(|u - u_th| < a/2): 1/a strictly inside, 0 at ±a/2 and beyond
    eps = 1e-6
    x = torch.tensor([-a, -a / 2 - eps, -a / 2, -a / 2 + eps, 0.0, a / 2 - eps, a / 2, a / 2 + eps, a],
                     dtype=torch.float64, requires_grad=True)
    out = RectangularSurrogate.apply(x, a)
    out.backward(torch.ones_like(x))
    expect = torch.tensor([0, 0, 0, 1 / a, 1 / a, 1 / a, 0, 0, 0], dtype=torch.float64)
    assert torch.equal(x.grad, expect)
    # the forward pass stays the step function (strict: x > 0 fires)
    assert out.detach().tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_surrogate_gradient_scales_the_incoming_gradient():
    x = torch.tensor([0.1, 0.3], requires_grad=True)
    RectangularSurrogate.apply(x, 0.5).backward(torch.tensor([3.0, 5.0]))
    assert x.grad.tolist() == [pytest.approx(6.0), 0.0]  # 3 · (1/0.5); 0.3 is outside |x| < 0.25


def test_snn_loss_sums_over_classes_and_averages_over_the_batch():
    rates = torch.tensor([[0.5, 0.25, 0.0], [0.0, 1.0, 0.5]])  # (1/T)·Σ_t O^t per sample
    labels = torch.tensor([0, 2])
    # sample 0: (1-0.5)² + 0.25² + 0 = 0.3125; sample 1: 0 + 1 + (1-0.5)² = 1.25; mean = 0.78125
    assert paper_loss(rates, labels, 3, snn=True).item() == pytest.approx(0.78125)
    # the ANN loss of Eq. 3 carries the 1/2
    assert paper_loss(rates, labels, 3, snn=False).item() == pytest.approx(0.390625)


def test_loss_gradient_is_the_per_sample_error_over_the_batch():
    rates = torch.tensor([[0.5, 0.25, 0.0], [0.0, 1.0, 0.5]], requires_grad=True)
    paper_loss(rates, torch.tensor([0, 2]), 3).backward()
    # dL/dr = 2·(r − y)/B
    assert torch.allclose(rates.grad, torch.tensor([[-0.5, 0.25, 0.0], [0.0, 1.0, -0.5]]))
