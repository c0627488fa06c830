"""Export -> NIR file -> import: type-checked, metadata kept, graphs identical, spikes identical to the module."""

import json

import nir
import numpy as np
import pytest
import torch

from snnbridge.bridge import ReferenceExecutor, read_graph
from snnbridge.bridge.graph import prepare
from snnbridge.errors import SnnBridgeError
from snnbridge.models import TABLE1, TABLE1_INPUTS, Network
from snnbridge.models.export import export, network_from_nir, to_nir
from snnbridge.validation.node_suite import scale_to_fire

SMALL = ["mnist_mlp", "mnist_cnn", "nmnist_mlp"]


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _graph_dict(g: nir.NIRGraph) -> dict:
    d = g.to_dict()
    d["metadata"] = {k: (v.decode() if isinstance(v, bytes) else np.asarray(v).item() if not isinstance(v, str)
                         else v) for k, v in d.get("metadata", {}).items()}
    return d


def _net(key, **kw):
    torch.manual_seed(0)
    return Network(structure=TABLE1[key], input_shape=TABLE1_INPUTS[key], threshold=0.5, **kw).double()


@pytest.mark.parametrize("key", SMALL)
@pytest.mark.parametrize("opts", [dict(neuron="lif", reset="zero"), dict(neuron="if", reset="subtract"),
                                  dict(neuron="lif", pool="average", bias=True, integration="exact")])
def test_executor_spikes_equal_the_module(tmp_path, key, opts):
    net = _net(key, **opts)
    x = (torch.rand((10, 2) + TABLE1_INPUTS[key], generator=torch.Generator().manual_seed(1)) < 0.3).double()
    scale_to_fire(net, x)
    path = export(net, tmp_path / "m.nir", encoder="bernoulli")
    graph = nir.read(path, type_check=True)  # NIR's own reader and type check accept it
    with torch.no_grad():
        net(x, record=True)
    rec = ReferenceExecutor(graph).run(x)
    fired = 0
    for name, val in net.records.items():
        if name.endswith(".v"):
            assert torch.equal(rec.membrane(name[:-2]), val), name
        else:
            assert torch.equal(rec[name].double(), val.double()), name
            fired += int(val.sum() > 0) if rec[name].dtype == torch.bool else 0
    assert fired >= 2  # the comparison is not between silent layers


def test_float32_module_and_executor_agree():
    net = Network(structure="Input-64-10", input_shape=(20,), threshold=0.3)
    x = (torch.rand(12, 4, 20, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    with torch.no_grad():
        y = net(x)
    rec = ReferenceExecutor(to_nir(net), dtype=torch.float32).run(x)
    assert torch.equal(rec.output().float(), y)


def test_metadata_round_trip(tmp_path):
    net = _net("mnist_mlp", dt=5e-4, reset="subtract", integration="exact")
    g = read_graph(export(net, tmp_path / "m.nir", encoder="poisson"))
    fg = prepare(g)
    assert fg.semantics.dt == 5e-4 and fg.semantics.reset == "subtract" and fg.semantics.integration == "exact"
    assert fg.metadata["producer"] == "snnbridge" and fg.metadata["encoder"] == "poisson"
    assert fg.metadata["structure"] == "Input-512-10"
    assert json.loads(fg.metadata["network_config"])["dt"] == 5e-4
    # explicit arguments override the metadata
    assert prepare(g, dt=1e-3, reset="none").semantics == type(fg.semantics)(1e-3, "none", "exact")


@pytest.mark.parametrize("key", SMALL)
def test_export_import_export_is_identical(tmp_path, key):
    net = _net(key, bias=True)
    g1 = read_graph(export(net, tmp_path / "a.nir"))
    net2 = network_from_nir(g1).double()
    g2 = read_graph(export(net2, tmp_path / "b.nir"))
    assert _same(_graph_dict(g1), _graph_dict(g2))
    for a, b in zip(net.parameters(), net2.parameters()):
        assert torch.equal(a, b)


def test_ann_export_is_refused_with_a_reason():
    with pytest.raises(SnnBridgeError, match="ReLU"):
        to_nir(Network(structure="Input-16-10", input_shape=(8,), mode="ann"))


def test_network_checkpoint_round_trip(tmp_path):
    net = _net("mnist_mlp")
    net2 = Network.load(net.save(tmp_path / "ck.pt"))
    assert net2.config == net.config
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SnnBridgeError, match="junk.pt"):
        Network.load(tmp_path / "junk.pt")


def test_nested_graph_is_flattened():
    inner = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([3])}),
               "fc": nir.Linear(weight=np.eye(3)),
               "n": nir.IF(r=np.ones(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3)),
               "out": nir.Output(output_type={"output": np.array([3])})},
        edges=[("in", "fc"), ("fc", "n"), ("n", "out")])
    outer = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([3])}), "sub": inner,
               "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "sub"), ("sub", "output")])
    rec = ReferenceExecutor(outer).run(torch.ones(2, 1, 3))
    assert "sub.n" in rec and rec["output"].all()
