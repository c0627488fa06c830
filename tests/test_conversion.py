"""ANN → SNN conversion (Model-2): data-based normalisation on a tiny model, IF neurons, NIR export, accuracy."""

from __future__ import annotations

import pytest
import torch

from snnbridge.errors import SnnBridgeError
from snnbridge.models.conversion import (
    accuracy_vs_T,
    activation_scales,
    check_convertible,
    constrained_ann,
    convert_to_snn,
    tune_threshold,
)
from snnbridge.models.export import to_nir
from snnbridge.models.network import Network
from snnbridge.models.training import evaluate, train


def _tiny():
    ann = constrained_ann("Input-2-2", (2,))
    with torch.no_grad():
        ann.synapses["fc1"].weight.copy_(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        ann.synapses["fc2"].weight.copy_(torch.tensor([[2.0, 0.0], [0.0, -1.0]]))
    return ann


def test_lambda_is_the_max_activation():
    x = torch.tensor([[0.2, 0.4], [0.8, 0.0]])
    # hidden ReLU: [[0.2, 0.3], [0.8, 0.4]] -> 0.8; output: [[0.4, -0.3], [1.6, -0.4]] -> positive max 1.6
    assert activation_scales(_tiny(), x) == pytest.approx({"fc1": 0.8, "fc2": 1.6})
    assert activation_scales(_tiny(), x, percentile=50)["fc1"] == pytest.approx(0.35)


def test_weights_are_normalised_independently_of_the_threshold():
    x = torch.tensor([[0.2, 0.4], [0.8, 0.0]])
    snn = convert_to_snn(_tiny(), x, threshold=2.0)
    assert snn.is_snn and snn.config.neuron == "if" and snn.config.threshold == 2.0 and not snn.config.bias
    # W1' = W1 * 1 / 0.8 ; W2' = W2 * 0.8 / 1.6 — the threshold is tuned afterwards, it does not scale W
    assert torch.allclose(snn.synapses["fc1"].weight, torch.tensor([[1.25, 0.0], [0.625, 0.625]]))
    assert torch.allclose(snn.synapses["fc2"].weight, torch.tensor([[1.0, 0.0], [0.0, -0.5]]))
    assert snn.config.extra["normalisation"]["lambda"] == pytest.approx({"fc1": 0.8, "fc2": 1.6})
    old = convert_to_snn(_tiny(), x, threshold=2.0, threshold_scaled_weights=True)  # u_th cancels out there
    assert torch.allclose(old.synapses["fc1"].weight, torch.tensor([[2.5, 0.0], [1.25, 1.25]]))


def test_pooling_neurons_share_the_threshold():
    torch.manual_seed(0)
    ann = constrained_ann("Input-2C3-AP2-3", (1, 4, 4))
    x = torch.rand(5, 1, 4, 4)
    lam = activation_scales(ann, x)
    snn = convert_to_snn(ann, x, threshold=2.0)
    assert torch.allclose(snn.synapses["conv1"].weight, ann.synapses["conv1"].weight / lam["conv1"])
    assert torch.allclose(snn.synapses["fc3"].weight, ann.synapses["fc3"].weight * lam["conv1"] / lam["fc3"])
    assert "if2" in snn.neurons and snn.config.threshold == 2.0  # pooling units are IF neurons (paper §4.1)
    old = convert_to_snn(ann, x, threshold=2.0, threshold_scaled_weights=True)  # gain 1/u_th made up for
    assert torch.allclose(old.synapses["fc3"].weight, ann.synapses["fc3"].weight * 4.0 * lam["conv1"] / lam["fc3"])


def test_the_threshold_changes_the_spikes_and_the_rate():
    """One hidden IF neuron driven by 0.45 per step (reset to zero): threshold 1 fires every 3rd step, threshold 2
    every 5th (0.45 keeps the membrane off the threshold itself, where strict and inclusive firing differ)."""
    ann = constrained_ann("Input-1-1", (1,))
    with torch.no_grad():
        ann.synapses["fc1"].weight.fill_(1.0)
        ann.synapses["fc2"].weight.fill_(1.0)
    x = torch.ones(1, 1)
    for th, count in ((1.0, 4), (2.0, 2)):  # in 12 steps
        snn = convert_to_snn(ann, x, threshold=th)  # λ = 1: W' = W
        with torch.no_grad():
            snn.synapses["fc1"].weight.fill_(0.45)
            spikes = snn(torch.ones(12, 1, 1), record=True)
        assert int(snn.records["if1"].sum()) == count
        assert spikes.shape == (12, 1, 1)


@pytest.fixture(scope="module")
def trained():
    """A constrained ANN trained on a separable toy task: (ann, x [300, 1, 4, 4], y [300])."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 1, 4, 4, generator=g)
    y = (x[:, 0, :2].sum((1, 2)) > x[:, 0, 2:].sum((1, 2))).long()
    torch.manual_seed(0)
    ann = constrained_ann("Input-16-2", (1, 4, 4))
    train(ann, x, y, epochs=15, batch_size=20, lr=1e-2, progress=False)
    return ann, x, y


def test_threshold_tuning_and_accuracy_vs_T(trained):
    ann, x, y = trained
    best, acc = tune_threshold(ann, x[:100], x[100:200], y[100:200], (1.0, 8.0), T=20)
    assert set(acc) == {1.0, 8.0} and acc[best] == max(acc.values())
    assert acc[1.0] > acc[8.0]  # u_th matters: at 8 the 2-layer net barely reaches its outputs in 20 steps
    snn = convert_to_snn(ann, x[:100], threshold=best)
    curve = accuracy_vs_T(snn, x[200:], y[200:], (2, 10, 40))
    assert list(curve) == [2, 10, 40] and curve[40] > curve[2]  # Fig. 9b: a short window loses accuracy


def test_only_constrained_anns_convert():
    with pytest.raises(SnnBridgeError, match="bias"):
        check_convertible(Network(structure="Input-3-2", input_shape=(2,), mode="ann", bias=True))
    with pytest.raises(SnnBridgeError, match="ANN-mode"):
        check_convertible(Network(structure="Input-3-2", input_shape=(2,)))


def test_converted_snn_keeps_the_accuracy_and_exports(trained):
    ann, x, y = trained
    acc_ann = evaluate(ann, x, y)
    snn = convert_to_snn(ann, x[:100], threshold=1.0)
    acc_snn = evaluate(snn, x[:150], y[:150], T=80)
    assert acc_ann > 0.85 and acc_snn > acc_ann - 0.08
    graph = to_nir(snn)
    assert type(graph.nodes["if1"]).__name__ == "IF"
