"""Training: BP/STBP determinism, checkpoints and resume, the SGD schedule, data-based firing initialisation."""

from __future__ import annotations

import pytest
import torch

from snnbridge.errors import SnnBridgeError
from snnbridge.models.network import Network
from snnbridge.models.training import batch_input, evaluate, init_firing, load_checkpoint, train


def _data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    y = (x[:, 0, :2].sum((1, 2)) > x[:, 0, 2:].sum((1, 2))).long()
    return x, y


def _snn(seed=0, **kw):
    torch.manual_seed(seed)
    return Network(structure="Input-12-2", input_shape=(1, 4, 4), threshold=0.3, **kw)


def _weights(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def test_same_seed_same_weights():
    x, y = _data()
    a, b = _snn(), _snn()
    train(a, x, y, epochs=2, batch_size=16, lr=1e-2, T=5, progress=False)
    train(b, x, y, epochs=2, batch_size=16, lr=1e-2, T=5, progress=False)
    assert torch.equal(_weights(a), _weights(b))
    c = _snn()
    train(c, x, y, epochs=2, batch_size=16, lr=1e-2, T=5, seed=1, progress=False)
    assert not torch.equal(_weights(a), _weights(c))


def test_resume_equals_uninterrupted(tmp_path):
    x, y = _data()
    full = _snn()
    h_full = train(full, x, y, epochs=3, batch_size=16, lr=1e-2, T=5, progress=False)
    ck = tmp_path / "run.ckpt"
    part = _snn()
    train(part, x, y, epochs=1, batch_size=16, lr=1e-2, T=5, progress=False, checkpoint=ck)
    resumed = _snn(seed=99)  # different init: everything must come from the checkpoint
    h = train(resumed, x, y, epochs=3, batch_size=16, lr=1e-2, T=5, progress=False, checkpoint=ck)
    assert torch.equal(_weights(resumed), _weights(full))
    assert h.loss == pytest.approx(h_full.loss) and len(h.loss) == 3
    net, meta = load_checkpoint(ck)
    assert meta["epoch"] == 3 and torch.equal(_weights(net), _weights(full))
    with pytest.raises(SnnBridgeError, match="other settings"):
        train(_snn(), x, y, epochs=4, batch_size=8, lr=1e-2, T=5, progress=False, checkpoint=ck)


def test_sgd_step_schedule_and_ann_bp():
    x, y = _data()
    torch.manual_seed(0)
    ann = Network(structure="Input-8-2", input_shape=(1, 4, 4), mode="ann", bias=True)
    h = train(ann, x, y, epochs=5, batch_size=10, lr=0.1, optimizer="sgd", lr_step=2, lr_gamma=0.1,
              progress=False, x_test=x, y_test=y)
    assert h.lr == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    assert len(h.test_accuracy) == 5 and h.loss[-1] < h.loss[0]
    assert evaluate(ann, x, y) == pytest.approx(h.test_accuracy[-1])


def test_frames_input_is_time_major():
    net = _snn()
    xb = torch.arange(2 * 3 * 16, dtype=torch.float32).reshape(2, 3, 1, 4, 4)  # [B, T, ...]
    inp = batch_input(net, xb, 2, "frames", 0)
    assert inp.shape == (2, 2, 1, 4, 4) and torch.equal(inp[1, 0], xb[0, 1])


def test_stbp_learns_a_separable_task():
    x, y = _data(200)
    net = _snn()
    train(net, x, y, epochs=8, batch_size=20, lr=2e-2, T=8, encoder="layer", progress=False)
    assert evaluate(net, x, y, T=8, encoder="layer") > 0.8


def test_init_firing_wakes_a_silent_cnn():
    torch.manual_seed(0)
    net = Network(structure="Input-4C3-AP2-4C3-AP2-10", input_shape=(1, 8, 8), threshold=0.8)
    x = (torch.rand(6, 5, 1, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    with torch.no_grad():
        net(x, record=True)
    assert float(net.records["lif2"].mean()) < 0.02  # silent before
    rates = init_firing(net, x)
    assert set(rates) == {"conv1", "conv3"} and all(0.05 <= r <= 0.3 for r in rates.values())
    with torch.no_grad():
        net(x, record=True)
    assert 0.05 <= float(net.records["lif2"].mean()) <= 0.3  # the pooling neurons fire

