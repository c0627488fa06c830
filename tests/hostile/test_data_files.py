"""Classes 5-6 — dataset files: random corruption of N-MNIST ``.bin``, MNIST IDX and ``.npz`` files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from snnbridge.data.errors import DataError
from snnbridge.data.nmnist import read_nmnist_file, write_nmnist_file
from snnbridge.errors import InputError
from tests.hostile.conftest import clean, cli, examples, one_line_error

edits = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6)
cut = st.one_of(st.none(), st.floats(0, 1))


def _corrupt(data: bytes, flips, cut_at, extra: bytes = b"") -> bytes:
    b = bytearray(data)
    for where, value in flips:
        if b:
            b[int(where * len(b))] = value
    if cut_at is not None:
        b = b[: int(cut_at * len(b))]
    return bytes(b) + extra


def _events(n: int, seed: int = 0) -> np.ndarray:
    from snnbridge.data.events import make_events

    r = np.random.default_rng(seed)
    return make_events(r.integers(0, 34, n), r.integers(0, 34, n), np.sort(r.integers(0, 2 ** 23, n)),
                       r.integers(0, 2, n))


def test_random_nmnist_bin_corruption(tmp_path):
    good = write_nmnist_file(tmp_path / "g.bin", _events(50)).read_bytes()

    @examples(600)
    @given(flips=edits, cut_at=cut, extra=st.binary(max_size=7))
    def check(flips, cut_at, extra):
        p = tmp_path / "x.bin"
        data = _corrupt(good, flips, cut_at, extra)
        p.write_bytes(data)
        ev = clean(read_nmnist_file, p)
        assert (ev is None) == (len(data) % 5 != 0)
        if ev is not None:
            assert len(ev) == len(data) // 5 and ev["x"].max(initial=0) < 256 and ev["t"].min(initial=0) >= 0

    check()


def test_truncated_bin_in_a_dataset_is_one_line(tmp_path):
    root = tmp_path / "NMNIST" / "Test" / "3"
    root.mkdir(parents=True)
    write_nmnist_file(root / "a.bin", _events(20))
    (root / "b.bin").write_bytes(write_nmnist_file(tmp_path / "c.bin", _events(9)).read_bytes()[:-2])
    from snnbridge.data.nmnist import load_nmnist

    with pytest.raises(DataError, match="truncated"):
        load_nmnist(tmp_path, train=False)


def _idx(kind: str, n: int = 12) -> bytes:
    r = np.random.default_rng(1)
    if kind == "images":
        return (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28)) + \
            r.integers(0, 256, n * 784, dtype=np.uint8).tobytes()
    return (2049).to_bytes(4, "big") + n.to_bytes(4, "big") + r.integers(0, 10, n, dtype=np.uint8).tobytes()


def test_random_idx_corruption(tmp_path):
    from snnbridge.data.static import check_idx_file

    files = {"images": _idx("images"), "labels": _idx("labels")}

    @examples(400)
    @given(which=st.sampled_from(sorted(files)), flips=edits, cut_at=cut,
           head=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 255)), max_size=3))
    def check(which, flips, cut_at, head):
        b = bytearray(_corrupt(files[which], flips, cut_at))
        for i, v in head:  # the header is where the interesting corruptions are
            if i < len(b):
                b[i] = v
        p = tmp_path / "f-idx-ubyte"
        p.write_bytes(bytes(b))
        magic, ndim = (2051, 3) if which == "images" else (2049, 1)
        shape = clean(check_idx_file, p, magic, ndim)
        if shape is not None:
            assert len(b) >= 4 + 4 * ndim + int(np.prod(shape))

    check()


def test_mnist_wrong_magic_is_one_line(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(_idx("labels"))  # swapped: a label file's magic
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(_idx("labels"))
    from snnbridge.data.static import load_mnist

    with pytest.raises(DataError, match="magic number 2049"):
        load_mnist(tmp_path)
    one_line_error(cli("conform", "/nonexistent.nir", "--data", tmp_path))  # model first: still one line


def test_random_npz_corruption(tmp_path):
    from snnbridge.validation.sources import DataRequest, resolve

    buf = tmp_path / "g.npz"
    np.savez_compressed(buf, x=np.random.default_rng(0).random((6, 1, 4, 4)).astype(np.float32),
                        y=np.arange(6) % 3)
    good = buf.read_bytes()

    @examples(400)
    @given(flips=edits, cut_at=cut)
    def check(flips, cut_at):
        p = tmp_path / "x.npz"
        p.write_bytes(_corrupt(good, flips, cut_at))
        d = clean(resolve, str(p), DataRequest((1, 4, 4), 4, 3, 0))
        if d is not None:
            assert d.x.shape[2:] == (1, 4, 4) and d.x.shape[1] <= 4

    check()


def test_empty_and_inflating_npz(tmp_path):
    from snnbridge.validation.sources import DataRequest, resolve

    np.savez(tmp_path / "e.npz", x=np.zeros((0, 1, 4, 4), np.float32))
    with pytest.raises(InputError, match="empty"):
        resolve(str(tmp_path / "e.npz"), DataRequest((1, 4, 4), 4, 3, 0))
    import zipfile

    with zipfile.ZipFile(tmp_path / "big.npz", "w", zipfile.ZIP_DEFLATED) as z:  # declares 32 GiB of zeros
        with z.open("x.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (1 << 16, 1 << 16)})
            f.write(b"\0" * (1 << 20))
    from snnbridge.bridge.limits import ResourceLimitError

    with pytest.raises(ResourceLimitError, match="declared shape"):
        resolve(str(tmp_path / "big.npz"), DataRequest((1, 4, 4), 4, 3, 0))
