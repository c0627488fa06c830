"""Classes 3-4 — malformed ``.nir`` files: random byte corruption of the real graphs, random HDF5-level
mutations (links, external storage, inflating datasets, deep or cyclic groups), FIFOs and devices."""

from __future__ import annotations

import os
import shutil
import threading

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from snnbridge.bridge.graph import prepare
from snnbridge.bridge.io import read_graph
from snnbridge.bridge.limits import ResourceLimitError, memory_budget
from snnbridge.errors import NIRFileError, SnnBridgeError
from tests.hostile.conftest import clean, cli, examples, max_rss_mib, one_line_error

# how many corruptions per graph (default profile): the small graphs are cheap, cnn_sinabs ~0.2 s a read
PER_GRAPH = {"lif_norse": 150, "braille_noDelay_bias_zero": 100, "braille_noDelay_noBias_subtract": 60,
             "cnn_sinabs": 40}


def _read_and_run(path):
    """The whole path a user's file takes: read, prepare, and a 2-step run of one sample on the reference."""
    from snnbridge.bridge.executor import ReferenceExecutor

    g = clean(read_graph, path)
    if g is None:
        return None
    fg = clean(prepare, g)
    if fg is None:
        return None
    x = {n: torch.zeros((2, 1) + tuple(fg.out_shapes[n]), dtype=torch.float64) for n in fg.inputs}
    if not x:
        return fg
    return clean(lambda: ReferenceExecutor(g).run(x))


corruption = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8)


@pytest.mark.parametrize("stem", sorted(PER_GRAPH))
def test_random_byte_corruption_of_real_graphs(stem, real_graphs, tmp_path_factory):
    src = next((p for p in real_graphs if p.stem == stem), None)
    if src is None:
        pytest.skip(f"{stem}.nir not in ../shared/nir-graphs")
    data = src.read_bytes()
    work = tmp_path_factory.mktemp("corrupt")
    rss0 = max_rss_mib()

    @examples(PER_GRAPH[stem])
    @given(flips=corruption, cut=st.one_of(st.none(), st.floats(0, 1)))
    def check(flips, cut):
        b = bytearray(data)
        for where, value in flips:
            b[int(where * len(b))] = value
        if cut is not None:
            b = b[: int(cut * len(b))]
        p = work / "g.nir"
        p.write_bytes(bytes(b))
        _read_and_run(p)
        assert sorted(x.name for x in work.iterdir()) == ["g.nir"]  # nothing written beside it

    check()
    assert max_rss_mib() - rss0 < 1024  # no corruption inflated memory


# --------------------------------------------------------------------------- HDF5-level mutations


def _datasets(path):
    out = []
    with h5py.File(path, "r") as f:
        f["node"].visititems(lambda n, o: out.append("node/" + n) if isinstance(o, h5py.Dataset) else None)
    return sorted(out)


def _mutate(path, kind, target, other):
    """Apply one HDF5-level mutation to ``target`` (a dataset path) of the file at ``path``."""
    with h5py.File(path, "a") as f:
        parent, name = target.rsplit("/", 1)
        g = f[parent]
        if kind == "external_link":
            del g[name]
            g[name] = h5py.ExternalLink(str(other), "/secret")
        elif kind == "soft_link":
            del g[name]
            g[name] = h5py.SoftLink("/node")
        elif kind == "external_storage":
            shape = g[name].shape or (1,)
            del g[name]
            g.create_dataset(name, shape=shape, dtype="f8", external=[(str(other) + ".raw", 0, h5py.h5f.UNLIMITED)])
        elif kind == "inflating":  # a compressed all-zero dataset that declares 16 GiB
            del g[name]
            g.create_dataset(name, shape=(1 << 16, 1 << 15), dtype="f8", chunks=(1024, 1024), compression="gzip",
                             fillvalue=0.0)
        elif kind == "deep":
            sub = g
            for i in range(40):
                sub = sub.create_group(f"d{i}")
        elif kind == "cycle":
            g[name + "_loop"] = f["node"]
        elif kind == "delete":
            del g[name]
        elif kind == "string":
            del g[name]
            g.create_dataset(name, data="not a number", dtype=h5py.string_dtype())
        elif kind == "reshape":
            a = np.asarray(g[name][()])
            del g[name]
            g.create_dataset(name, data=np.zeros((3, 7, 2), dtype=a.dtype) if a.dtype.kind in "fiub" else a)
        elif kind == "nan":
            a = np.asarray(g[name][()])
            if a.dtype.kind == "f" and a.size:
                a = a.copy()
                a.flat[0] = np.nan
                g[name][...] = a


MUTATIONS = ["external_link", "soft_link", "external_storage", "inflating", "deep", "cycle", "delete", "string",
             "reshape", "nan"]
MUST_REFUSE = {"external_link", "soft_link", "external_storage", "inflating", "cycle", "deep"}


def _mutation_check(real_graphs, tmp_path_factory, kinds, n):
    src = next(p for p in real_graphs if p.stem == "lif_norse")
    names = _datasets(src)
    work = tmp_path_factory.mktemp("mut")
    secret = work / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["secret"] = np.arange(4.0)
    (work / "secret.h5.raw").write_bytes(np.arange(64.0).tobytes())
    rss0 = max_rss_mib()

    @examples(n)
    @given(kind=st.sampled_from(kinds), target=st.sampled_from(names))
    def check(kind, target):
        p = work / "g.nir"
        shutil.copyfile(src, p)
        _mutate(p, kind, target, secret)
        with memory_budget("256MiB"):
            if kind in MUST_REFUSE:
                with pytest.raises(SnnBridgeError):
                    read_graph(p)
            else:
                _read_and_run(p)

    check()
    assert max_rss_mib() - rss0 < 1024


def test_random_hdf5_structure_mutations(real_graphs, tmp_path_factory):
    """Links, external storage, inflating, deep or cyclic groups, missing fields: refused, named, bounded."""
    _mutation_check(real_graphs, tmp_path_factory, sorted(MUST_REFUSE | {"delete"}), 150)


def test_random_hdf5_value_mutations(real_graphs, tmp_path_factory):
    _mutation_check(real_graphs, tmp_path_factory, ["string", "reshape", "nan"], 60)


def test_inflating_dataset_refused_by_declared_size(tmp_path, real_graphs):
    src = next(p for p in real_graphs if p.stem == "lif_norse")
    p = tmp_path / "g.nir"
    shutil.copyfile(src, p)
    _mutate(p, "inflating", _datasets(src)[0], None)
    assert p.stat().st_size < 2 * 1024 * 1024
    rss0 = max_rss_mib()
    with pytest.raises(ResourceLimitError, match="declared shape"):
        read_graph(p)
    assert max_rss_mib() - rss0 < 256


def test_external_link_names_node_and_field(tmp_path, real_graphs):
    src = next(p for p in real_graphs if p.stem == "lif_norse")
    p = tmp_path / "g.nir"
    shutil.copyfile(src, p)
    target = next(n for n in _datasets(src) if n.endswith("/weight"))
    _mutate(p, "external_link", target, tmp_path / "other.h5")
    with pytest.raises(NIRFileError, match="external link") as e:
        read_graph(p)
    node = target.split("/")[-2]
    assert f"node '{node}'" in str(e.value) and "field 'weight'" in str(e.value)
    one_line_error(cli("inspect", p))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("what", ["inspect", "compare", "conform", "export-checkpoint", "read_graph"])
def test_fifo_refused_not_hung(tmp_path, what):
    fifo = tmp_path / "x.nir"
    os.mkfifo(fifo)
    if what == "read_graph":
        done = []
        t = threading.Thread(target=lambda: done.append(clean(read_graph, fifo) is None), daemon=True)
        t.start()
        t.join(10)
        assert done == [True], "read_graph hung or accepted a FIFO"
        return
    args = {"inspect": ("inspect", fifo), "compare": ("compare", fifo, fifo),
            "conform": ("conform", fifo, "-b", "reference", "--samples", 2),
            "export-checkpoint": ("export", fifo, "-o", tmp_path / "o.nir")}[what]
    one_line_error(cli(*args))


def test_device_refused():
    r = cli("inspect", "/dev/zero")
    one_line_error(r)
    assert "device" in r.stderr
