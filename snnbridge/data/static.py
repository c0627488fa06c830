"""ANN-oriented datasets on disk: MNIST and CIFAR10 through torchvision, never downloading (``download=False``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snnbridge.data.errors import DataError, DatasetNotFoundError

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

_HINT = {
    "MNIST": "put the four IDX files (train-images-idx3-ubyte, ...) in {root}/MNIST/raw/, or download them once "
             "with torchvision.datasets.MNIST(root='{root}', download=True) on a machine with network access",
    "CIFAR10": "extract cifar-10-python.tar.gz so that {root}/cifar-10-batches-py/ exists, or download it once "
               "with torchvision.datasets.CIFAR10(root='{root}', download=True) on a machine with network access",
}


def _subset(x: torch.Tensor, y: torch.Tensor, limit: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if limit is None or limit >= len(y):
        return x, y
    idx = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(len(y))[:limit]))
    return x[idx], y[idx]


def _open(name: str, root: str | Path, train: bool):
    import torchvision

    cls = getattr(torchvision.datasets, name)
    try:
        return cls(root=str(root), train=train, download=False)
    except (RuntimeError, FileNotFoundError, OSError) as e:
        raise DatasetNotFoundError(f"{name} not found under {root} ({str(e).splitlines()[0] if str(e) else e}); "
                                   + _HINT[name].format(root=root)) from None


def mnist_available(root: str | Path) -> bool:
    """Whether ``root/MNIST/raw`` holds the four MNIST IDX files."""
    raw = Path(root) / "MNIST" / "raw"
    return all((raw / f).exists() or (raw / (f + ".gz")).exists() for f in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


def cifar10_available(root: str | Path) -> bool:
    """Whether ``root/cifar-10-batches-py`` holds the CIFAR10 batches."""
    d = Path(root) / "cifar-10-batches-py"
    return (d / "data_batch_1").exists() and (d / "test_batch").exists()


def load_mnist(root: str | Path, train_limit: int | None = None, test_limit: int | None = None, seed: int = 0
               ) -> Split:
    """MNIST from ``root/MNIST/raw`` as ``(x_train [N,1,28,28], y_train [N], x_test, y_test)``, pixels in [0, 1].

    ``train_limit``/``test_limit`` take a seeded random subset (``None``: all 60,000 / 10,000).
    Raises :class:`DatasetNotFoundError` (with where to put the files) when they are missing.
    """
    check_mnist_files(root)
    out = []
    for train, limit in ((True, train_limit), (False, test_limit)):
        try:
            ds = _open("MNIST", root, train)
        except (AssertionError, KeyError, IndexError, ValueError, RuntimeError) as e:  # torchvision's IDX parser
            raise DataError(f"MNIST under {root}: IDX files cannot be read ({type(e).__name__}: {e})") from None
        x = ds.data.to(torch.float32).div_(255.0).unsqueeze(1)
        out.extend(_subset(x, ds.targets.to(torch.int64), limit, seed))
    return out[0], out[1], out[2], out[3]


_IDX = {"train-images-idx3-ubyte": (2051, 3), "train-labels-idx1-ubyte": (2049, 1),
        "t10k-images-idx3-ubyte": (2051, 3), "t10k-labels-idx1-ubyte": (2049, 1)}


def check_idx_file(path: str | Path, magic: int, ndim: int) -> tuple[int, ...]:
    """Check an (uncompressed) MNIST IDX file's magic number, dimensions and size; returns its shape.

    Raises :class:`DataError` naming the file for a wrong magic number (e.g. images and labels swapped), a
    truncated file, or a FIFO/device; the declared size is checked against the memory budget.
    """
    from snnbridge.bridge import limits
    from snnbridge.fileio import check_input_file

    path = check_input_file(path, "an MNIST IDX file", DataError)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
    if len(head) < 4:
        raise DataError(f"{path}: truncated IDX file ({size} bytes)")
    got = int.from_bytes(head[:4], "big")
    if got != magic:
        raise DataError(f"{path}: wrong IDX magic number {got} (0x{got:08x}); expected {magic} for a "
                        f"{ndim}-D unsigned-byte {'label' if ndim == 1 else 'image'} file")
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({size} bytes)")
    shape = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    need = 4 + 4 * ndim + limits.numel(shape)
    limits.check_bytes(limits.numel(shape) * 4, f"reading {path}", f"declared shape {list(shape)}")
    if size < need:
        raise DataError(f"{path}: truncated IDX file: declares shape {list(shape)} ({need:,} bytes), has {size:,}")
    return shape


def check_mnist_files(root: str | Path) -> None:
    """:func:`check_idx_file` for each uncompressed MNIST file under ``root/MNIST/raw``, and matching counts."""
    raw = Path(root) / "MNIST" / "raw"
    shapes = {}
    for name, (magic, ndim) in _IDX.items():
        if (raw / name).exists() or (raw / name).is_symlink():
            shapes[name] = check_idx_file(raw / name, magic, ndim)
    for split in ("train", "t10k"):
        im, lab = shapes.get(f"{split}-images-idx3-ubyte"), shapes.get(f"{split}-labels-idx1-ubyte")
        if im is not None and lab is not None:
            if im[0] != lab[0]:
                raise DataError(f"{raw}: {split} has {im[0]} images but {lab[0]} labels")
            if im[0] == 0:
                raise DataError(f"{raw}: {split} IDX files hold no samples (empty dataset)")


def load_cifar10(root: str | Path, train_limit: int | None = None, test_limit: int | None = None, seed: int = 0
                 ) -> Split:
    """CIFAR10 from ``root/cifar-10-batches-py`` as ``(x_train [N,3,32,32], y_train, x_test, y_test)`` in [0, 1]."""
    out = []
    for train, limit in ((True, train_limit), (False, test_limit)):
        ds = _open("CIFAR10", root, train)
        x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        out.extend(_subset(x, torch.as_tensor(ds.targets, dtype=torch.int64), limit, seed))
    return out[0], out[1], out[2], out[3]
