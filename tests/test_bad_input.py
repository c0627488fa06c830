"""Every kind of bad input gets one clear error naming the node or field; the CLI exits 2 without a traceback."""

import shutil
import subprocess
import sys

import h5py
import nir
import numpy as np
import pytest
import torch

from snnbridge.bridge import ReferenceExecutor, read_graph
from snnbridge.bridge.graph import prepare
from snnbridge.errors import GraphError, InputError, NIRFileError
from snnbridge.validation.node_suite import chain


def _lif(n=3):
    return nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                   v_reset=np.zeros(n))


def _good(n=3):
    return chain([("fc", nir.Affine(weight=np.eye(n), bias=np.zeros(n))), ("lif", _lif(n))], (n,), (n,))


@pytest.fixture
def good_file(tmp_path):
    p = tmp_path / "good.nir"
    nir.write(p, _good())
    return p


def test_non_hdf5_file(tmp_path):
    p = tmp_path / "x.nir"
    p.write_text("this is not HDF5")
    with pytest.raises(NIRFileError, match="not an HDF5 file"):
        read_graph(p)


def test_missing_file(tmp_path):
    with pytest.raises(NIRFileError, match="no such file"):
        read_graph(tmp_path / "nope.nir")


def test_truncated_file(tmp_path, good_file):
    data = good_file.read_bytes()
    p = tmp_path / "cut.nir"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(NIRFileError, match="cut.nir"):
        read_graph(p)


def test_hdf5_that_is_not_nir(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(NIRFileError, match="no 'node' group"):
        read_graph(p)


def test_unknown_node_type_in_file(tmp_path, good_file):
    p = tmp_path / "unk.nir"
    shutil.copy(good_file, p)
    with h5py.File(p, "a") as f:
        del f["node/nodes/lif/type"]
        f.create_dataset("node/nodes/lif/type", data="Izhikevich", dtype=h5py.string_dtype())
    with pytest.raises(GraphError, match="node 'lif'.*unknown node type 'Izhikevich'"):
        read_graph(p)


def test_missing_parameter_in_file(tmp_path, good_file):
    p = tmp_path / "miss.nir"
    shutil.copy(good_file, p)
    with h5py.File(p, "a") as f:
        del f["node/nodes/lif/tau"]
    with pytest.raises(GraphError, match="node 'lif'.*missing parameter 'tau'"):
        read_graph(p)


def test_unknown_node_type_in_memory():
    class Izhikevich(nir.NIRNode):
        def __init__(self) -> None:
            self.metadata = {}

    g = _good()
    g.nodes["lif"] = Izhikevich()
    with pytest.raises(GraphError, match="node 'lif'.*unknown node type Izhikevich"):
        prepare(g)


def test_missing_parameter_in_memory():
    g = _good()
    g.nodes["lif"].v_threshold = None
    with pytest.raises(GraphError, match="node 'lif', field 'v_threshold': missing parameter"):
        prepare(g)


def test_edge_to_missing_node():
    g = _good()
    g.edges.append(("lif", "ghost"))
    with pytest.raises(GraphError, match="node 'ghost'.*missing node"):
        prepare(g)


def test_shape_mismatch_names_node_and_field():
    g = _good()
    g.nodes["fc"] = nir.Affine(weight=np.ones((3, 5)), bias=np.zeros(3))
    with pytest.raises(GraphError, match="node 'fc', field 'weight'.*input size 5"):
        prepare(g)
    g = _good()
    g.nodes["lif"].tau = np.full(4, 0.01)
    with pytest.raises(GraphError, match="node 'lif', field 'tau'"):
        prepare(g)


@pytest.mark.parametrize("bad,word", [(np.nan, "NaN"), (np.inf, "Inf")])
def test_nan_inf_parameters(bad, word):
    g = _good()
    g.nodes["fc"].weight[1, 2] = bad
    with pytest.raises(GraphError, match=f"node 'fc', field 'weight': contains {word}"):
        prepare(g)


def test_non_positive_time_constant():
    g = _good()
    g.nodes["lif"].tau[0] = 0.0
    with pytest.raises(GraphError, match="field 'tau'"):
        prepare(g)


def test_bad_metadata():
    g = _good()
    g.metadata = {"reset": "bogus"}
    with pytest.raises(GraphError, match="metadata"):
        prepare(g)


@pytest.mark.parametrize("x,msg", [
    (torch.zeros(5, 2, 4), r"expected shape \[T, B, 3\]"),
    (torch.zeros(5, 3), r"expected shape"),
    (torch.zeros(0, 2, 3), "empty"),
    (torch.full((2, 1, 3), float("nan")), "NaN"),
    (np.array([[["a", "b", "c"]]]), "not numeric"),
    (np.zeros(4, dtype=[("x", int), ("y", int), ("t", int), ("p", int)]), "event"),
])
def test_wrong_run_time_input(x, msg):
    ex = ReferenceExecutor(_good())
    with pytest.raises(InputError, match=msg):
        ex.run(x)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "snnbridge.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_cli_inspect_bad_file_exits_2_without_traceback(tmp_path, content):
    p = tmp_path / "bad.nir"
    p.write_bytes(content)
    r = _cli("inspect", str(p))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "error:" in r.stderr


def test_cli_inspect_unknown_node_names_it(tmp_path, good_file):
    p = tmp_path / "unk.nir"
    shutil.copy(good_file, p)
    with h5py.File(p, "a") as f:
        del f["node/nodes/lif/type"]
        f.create_dataset("node/nodes/lif/type", data="Foo", dtype=h5py.string_dtype())
    r = _cli("inspect", str(p))
    assert r.returncode == 2 and "lif" in r.stderr and "Foo" in r.stderr and "Traceback" not in r.stderr


def test_cli_export_bad_spec_writes_nothing(tmp_path):
    out = tmp_path / "m.nir"
    r = _cli("export", "Input-32C3-XP2-10", "-o", str(out))
    assert r.returncode == 2 and "XP2" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_export_bad_checkpoint_writes_nothing(tmp_path):
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"junk")
    out = tmp_path / "m.nir"
    r = _cli("export", str(ck), "-o", str(out))
    assert r.returncode == 2 and "checkpoint" in r.stderr and not out.exists()


def test_cli_inspect_and_export_work(tmp_path):
    out = tmp_path / "m.nir"
    r = _cli("export", "Input-8C3-AP2-10", "--input-shape", "1,8,8", "-o", str(out))
    assert r.returncode == 0, r.stderr
    r = _cli("inspect", str(out))
    assert r.returncode == 0 and "Conv2d" in r.stdout and "AvgPool2d" in r.stdout and "producer" in r.stdout
