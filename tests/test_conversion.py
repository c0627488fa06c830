"""ANN → SNN conversion (Model-2): data-based normalisation on a tiny model, IF neurons, NIR export, accuracy."""

from __future__ import annotations

import pytest
import torch

from snnbridge.bridge.export import to_nir
from snnbridge.errors import SnnBridgeError
from snnbridge.models.conversion import activation_scales, check_convertible, constrained_ann, convert_to_snn
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


def test_weights_are_normalised_and_scaled_by_the_threshold():
    x = torch.tensor([[0.2, 0.4], [0.8, 0.0]])
    snn = convert_to_snn(_tiny(), x, threshold=2.0)
    assert snn.is_snn and snn.config.neuron == "if" and snn.config.threshold == 2.0 and not snn.config.bias
    # W1' = W1 * u_th * 1 / 0.8 ; W2' = W2 * u_th * 0.8 / 1.6
    assert torch.allclose(snn.synapses["fc1"].weight, torch.tensor([[2.5, 0.0], [1.25, 1.25]]))
    assert torch.allclose(snn.synapses["fc2"].weight, torch.tensor([[2.0, 0.0], [0.0, -1.0]]))
    assert snn.config.extra["normalisation"]["lambda"] == pytest.approx({"fc1": 0.8, "fc2": 1.6})


def test_pooling_neurons_gain_is_made_up_for():
    torch.manual_seed(0)
    ann = constrained_ann("Input-2C3-AP2-3", (1, 4, 4))
    x = torch.rand(5, 1, 4, 4)
    lam = activation_scales(ann, x)
    snn = convert_to_snn(ann, x, threshold=2.0)
    # conv: u_th * 1 / λ1 ; classifier after the pooling neurons (gain 1/u_th): u_th * λ1 / (λ3 / u_th)
    assert torch.allclose(snn.synapses["conv1"].weight, ann.synapses["conv1"].weight * 2.0 / lam["conv1"])
    assert torch.allclose(snn.synapses["fc3"].weight, ann.synapses["fc3"].weight * 2.0 * lam["conv1"] / lam["fc3"]
                          * 2.0)
    assert "if2" in snn.neurons  # pooling units are IF neurons (paper §4.1)


def test_only_constrained_anns_convert():
    with pytest.raises(SnnBridgeError, match="bias"):
        check_convertible(Network(structure="Input-3-2", input_shape=(2,), mode="ann", bias=True))
    with pytest.raises(SnnBridgeError, match="ANN-mode"):
        check_convertible(Network(structure="Input-3-2", input_shape=(2,)))


def test_converted_snn_keeps_the_accuracy_and_exports():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 1, 4, 4, generator=g)
    y = (x[:, 0, :2].sum((1, 2)) > x[:, 0, 2:].sum((1, 2))).long()
    torch.manual_seed(0)
    ann = constrained_ann("Input-16-2", (1, 4, 4))
    train(ann, x, y, epochs=15, batch_size=20, lr=1e-2, progress=False)
    acc_ann = evaluate(ann, x, y)
    snn = convert_to_snn(ann, x[:100], threshold=2.0)
    acc_snn = evaluate(snn, x[:150], y[:150], T=80)
    assert acc_ann > 0.85 and acc_snn > acc_ann - 0.08
    graph = to_nir(snn)
    assert type(graph.nodes["if1"]).__name__ == "IF"
