"""The ``--data`` resolver: turn a data argument into inputs ``[T, B, *input_shape]`` and labels for a check.

Images are rate-coded batch by batch when a check reads them (:class:`EncodedImages`), each sample with its own
seeded generator, so a check of 10,000 samples holds the images (3 MB per 1,000 MNIST digits) and one batch of
spikes, never all ``[T, N, ...]`` spikes at once — and any batching gives the same spikes.

Built in, tried in order:

``digits``
    the embedded scikit-learn digits (test split), Bernoulli rate-coded (paper §3.1); resized to the
    graph's input (``(1, 8, 8)``, ``(64,)``, ``(1, 28, 28)`` framed like MNIST, ``(1, s, s)``).
``*.npz``
    ``x`` as spikes/values ``[T, B, *input_shape]``, or images ``[N, *input_shape]`` in ``[0, 1]``
    (Bernoulli-coded here); optional ``y`` ``[B]`` labels.
an N-MNIST folder
    ``{Train,Test}/<digit>/*.bin`` (the test recordings, 3 ms binary frames as in the paper).
an MNIST folder
    torchvision's ``MNIST/raw`` layout (the test images, Bernoulli-coded).

Add a source with :func:`register_source`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from snnbridge.errors import InputError, SnnBridgeError


@dataclass
class DataRequest:
    """What the check needs: per-sample ``input_shape``, at most ``samples`` samples, ``T`` steps, a ``seed``."""

    input_shape: tuple[int, ...]
    samples: int
    T: int
    seed: int = 0


class Data:
    """Resolved inputs and labels: ``source`` serves ``[T, b, *input_shape]`` batches, ``y`` ``[B]`` or ``None``.

    ``x`` is every sample at once (``[T, B, *input_shape]``, encoded on first use: prefer ``source`` for
    large checks).
    """

    def __init__(self, x: torch.Tensor | None, y: torch.Tensor | None, description: str, source=None) -> None:
        from snnbridge.validation.stream import TensorSource

        if x is None and source is None:
            raise ValueError("Data needs x or a source")
        self._x = x
        self.y = y
        self.description = description
        self.source = source if source is not None else TensorSource(x)

    @property
    def x(self) -> torch.Tensor:
        if self._x is None:
            self._x = self.source.batch(0, self.source.samples)
        return self._x

    @property
    def samples(self) -> int:
        return int(self.source.samples)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.source.sample_shape)


class EncodedImages:
    """Images ``[N, *shape]`` in ``[0, 1]``, Bernoulli rate-coded (paper §3.1) per batch: ``batch(a, b)`` is
    ``[T, b - a, *shape]`` float32 0/1 spikes, ``P(1) = intensity``; sample ``i`` draws its ``[T, *shape]``
    uniforms from its own generator, ``numpy.random.default_rng([seed, i])``, so every split of the samples gives
    the same spikes."""

    def __init__(self, images: torch.Tensor, T: int, seed: int = 0, offset: int = 0, total: int | None = None
                 ) -> None:
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise InputError(f"images must be intensities in [0, 1] to be rate-coded, got range "
                             f"[{float(images.min()):.3g}, {float(images.max()):.3g}]")
        self.images, self.T, self.seed = images.float(), int(T), int(seed)
        self.offset = int(offset)
        self.total = int(images.shape[0]) + self.offset if total is None else int(total)

    @property
    def samples(self) -> int:
        return self.total

    def shard(self, start: int, stop: int) -> EncodedImages:
        """Only samples ``start .. stop - 1`` (what one worker of a cluster needs), same indices and spikes."""
        return EncodedImages(self.images[start - self.offset:stop - self.offset].clone(), self.T, self.seed, start,
                             self.total)

    @property
    def steps(self) -> int:
        return self.T

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def batch(self, start: int, stop: int) -> torch.Tensor:
        if start < self.offset or stop > self.offset + self.images.shape[0]:
            raise IndexError(f"samples {start}..{stop - 1} are not held here ({self.offset}.."
                             f"{self.offset + self.images.shape[0] - 1})")
        shape = (self.T,) + self.sample_shape
        u = np.empty((stop - start,) + shape, dtype=np.float32)
        for j, i in enumerate(range(start, stop)):
            u[j] = np.random.default_rng([self.seed % (1 << 63), i]).random(shape, dtype=np.float32)
        img = self.images[start - self.offset:stop - self.offset].clamp(0, 1)
        out = (torch.from_numpy(u) < img.unsqueeze(1)).float().transpose(0, 1).contiguous()
        return out


Matcher = Callable[[str], bool]
Loader = Callable[[str, DataRequest], Data]
_SOURCES: list[tuple[str, Matcher, Loader]] = []


def register_source(name: str, matches: Matcher, load: Loader, first: bool = False) -> None:
    """Add a data source: ``matches(spec)`` says whether it handles ``spec``; ``load(spec, request)`` loads it."""
    entry = (name, matches, load)
    if first:
        _SOURCES.insert(0, entry)
    else:
        _SOURCES.append(entry)


def sources() -> list[str]:
    """Names of the registered data sources, in the order they are tried."""
    return [n for n, _, _ in _SOURCES]


def resolve(spec: str, request: DataRequest) -> Data:
    """Load ``spec`` for ``request``; raises :class:`InputError` with what was expected."""
    if request.samples <= 0:
        raise InputError(f"--samples must be > 0, got {request.samples}")
    if request.T <= 0:
        raise InputError(f"--T must be > 0, got {request.T}")
    first_error: InputError | None = None
    for _, matches, load in _SOURCES:  # a folder may hold several datasets: the first that fits the model wins
        if matches(spec):
            try:
                data = load(spec, request)
            except InputError as e:
                first_error = first_error or e
                continue
            want = tuple(request.input_shape)
            if data.sample_shape == want:
                return data
            first_error = first_error or InputError(f"data '{spec}' gives samples of shape "
                                                    f"{list(data.sample_shape)}, the model expects {list(want)}")
    if first_error is not None:
        raise first_error
    raise InputError(f"--data '{spec}': not a known source; use one of: 'digits', 'random' (or 'random:P'), an .npz "
                     "file with x [T, B, ...] or [N, ...] (and optional y), an N-MNIST or MNIST folder")


# --------------------------------------------------------------------------- helpers


def _fit_images(images: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """Images ``[N, C, H, W]`` reshaped to ``[N, *shape]`` (flattened for an MLP) or an error."""
    n = images.shape[0]
    if tuple(images.shape[1:]) == shape:
        return images
    if int(np.prod(images.shape[1:])) == int(np.prod(shape)):
        return images.reshape((n,) + shape)
    raise InputError(f"{what} images are {list(images.shape[1:])}, which does not fit the model input {list(shape)}")


def _encode(images: torch.Tensor, req: DataRequest) -> EncodedImages:
    """Images ``[N, ...]`` in ``[0, 1]``, Bernoulli-coded per batch when read (:class:`EncodedImages`)."""
    return EncodedImages(images, req.T, req.seed)


# --------------------------------------------------------------------------- digits


def _load_digits(spec: str, req: DataRequest) -> Data:
    from snnbridge.data import digits as dg

    shape = tuple(req.input_shape)
    n = int(np.prod(shape))
    side = int(round(n ** 0.5))
    if len(shape) == 3 and shape[0] != 1 or side * side != n:
        raise InputError(f"the digits are 1-channel square images; the model expects input {list(shape)}")
    if side == 28 and hasattr(dg, "load_digits_mnist_like"):
        _, _, x, y = dg.load_digits_mnist_like()
        how = "20x20 in 28x28"
    else:
        _, _, x, y = dg.load_digits(size=side)
        how = f"{side}x{side}"
    x, y = x[: req.samples], y[: req.samples]
    x = _fit_images(x, shape, "digits")
    return Data(None, y, f"digits test split ({how}), {len(y)} samples, Bernoulli T={req.T}, seed {req.seed}",
                _encode(x, req))


# --------------------------------------------------------------------------- npz


def _load_npz(spec: str, req: DataRequest) -> Data:
    from snnbridge.fileio import check_input_file

    path = Path(spec)
    if not path.exists():
        raise InputError(f"--data {spec}: no such file")
    check_input_file(path, "an .npz file", InputError)  # a FIFO or device would hang
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise InputError(f"{spec}: a bare .npy array, not an .npz archive with 'x' (and optional 'y')")
            if "x" not in z.files:
                raise InputError(f"{spec}: needs an array 'x' (has {', '.join(z.files) or 'nothing'})")
            _check_npz_sizes(z, spec)
            x = np.asarray(z["x"])
            y = np.asarray(z["y"]) if "y" in z.files else None
    except SnnBridgeError:
        raise
    except Exception as e:  # noqa: BLE001 - zip, zlib, header and pickle errors of a corrupt file: one line
        raise InputError(f"{spec}: not a readable .npz file ({type(e).__name__}: {str(e)[:200]})") from None
    if x.ndim < 2 or 0 in x.shape:
        raise InputError(f"{spec}: x has shape {list(x.shape)}; the dataset is empty or not [N, ...] / [T, B, ...]")
    if x.dtype.kind not in "biuf":
        raise InputError(f"{spec}: x has dtype {x.dtype}, expected numbers")
    shape = tuple(req.input_shape)
    xt = torch.from_numpy(x.astype(np.float32))
    if not torch.isfinite(xt).all():
        raise InputError(f"{spec}: x contains NaN or Inf")
    n = int(np.prod(shape))
    sequence = tuple(xt.shape[2:]) == shape or (xt.dim() == 3 and xt.shape[2] == n)  # [T, B, ...]
    images = tuple(xt.shape[1:]) == shape or (xt.dim() == 2 and xt.shape[1] == n)  # [N, ...]
    enc = None
    if sequence:
        xt = xt[:, : req.samples].reshape(xt.shape[:1] + (min(req.samples, xt.shape[1]),) + shape)
        how = f"[T={xt.shape[0]}, B, ...] as given"
    elif images:
        enc = _encode(xt[: req.samples].reshape((-1,) + shape), req)
        how = f"images, Bernoulli T={req.T}, seed {req.seed}"
    else:
        raise InputError(f"{spec}: x has shape {list(x.shape)}; expected [T, B, {', '.join(map(str, shape))}] or "
                         f"[N, {', '.join(map(str, shape))}]")
    n = xt.shape[1] if enc is None else enc.samples
    labels = None
    if y is not None:
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise InputError(f"{spec}: y must be a 1-D integer array of labels, got {y.dtype} {list(y.shape)}")
        labels = torch.from_numpy(y.astype(np.int64))[:n]
        if len(labels) != n:
            raise InputError(f"{spec}: {len(y)} labels for {n} samples")
    return Data(xt if enc is None else None, labels, f"{path.name}: {n} samples, {how}", enc)


def _check_npz_sizes(z, spec: str) -> None:
    """Each member's declared shape x item size against the memory budget, before it is decompressed."""
    from snnbridge.bridge import limits

    for name in ("x", "y"):
        if name not in z.files:
            continue
        with z.zip.open(name + ".npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        limits.check_bytes(limits.numel(shape) * max(dtype.itemsize, 1), f"{spec}: array '{name}'",
                           f"declared shape {list(shape)}, dtype {dtype}")


# --------------------------------------------------------------------------- folders


def _is_nmnist(spec: str) -> bool:
    try:
        from snnbridge.data.nmnist import nmnist_available
    except ImportError:
        return False
    return Path(spec).is_dir() and nmnist_available(spec)


def _load_nmnist(spec: str, req: DataRequest) -> Data:
    from snnbridge.data.nmnist import load_nmnist

    ds = load_nmnist(spec, train=False, limit=req.samples, seed=req.seed)
    frames = ds.frames(T=req.T, dt_us=3000.0, mode="binary")  # [N, T, P, H, W]
    x = frames.transpose(0, 1).contiguous()
    shape = tuple(req.input_shape)
    x = x.reshape(x.shape[:2] + shape) if int(np.prod(x.shape[2:])) == int(np.prod(shape)) else x
    return Data(x, torch.from_numpy(ds.labels), f"N-MNIST test ({spec}), {x.shape[1]} samples, 3 ms binary "
                                                f"frames, T={req.T}")


def _is_mnist(spec: str) -> bool:
    try:
        from snnbridge.data.static import mnist_available
    except ImportError:
        return False
    return Path(spec).is_dir() and mnist_available(spec)


def _load_mnist(spec: str, req: DataRequest) -> Data:
    from snnbridge.data.static import load_mnist

    _, _, x, y = load_mnist(spec, train_limit=1, test_limit=req.samples, seed=req.seed)
    x = _fit_images(x, tuple(req.input_shape), "MNIST")
    return Data(None, y, f"MNIST test ({spec}), {len(y)} samples, Bernoulli T={req.T}, seed {req.seed}",
                _encode(x, req))


def is_random(spec: str) -> bool:
    """``random`` or ``random:P`` (and no file or folder of that name)."""
    s = spec.strip().lower()
    return (s == "random" or s.startswith("random:")) and not Path(spec).exists()


def random_spikes(spec: str, input_shape: tuple[int, ...], samples: int, T: int, seed: int) -> Data:
    """``random`` / ``random:P``: seeded Bernoulli spikes ``[T, samples, *input_shape]`` (float64, probability ``P``,
    default 0.2, no labels) — for a model whose data is not at hand.  The memory is checked before drawing."""
    from snnbridge.bridge import limits

    _, _, p = spec.partition(":")
    try:
        prob = float(p) if p else 0.2
    except ValueError:
        raise InputError(f"--data '{spec}': the spike probability must be a number in [0, 1]") from None
    if not 0.0 <= prob <= 1.0:
        raise InputError(f"--data '{spec}': the spike probability must be in [0, 1], got {prob}")
    limits.check_shape((T, samples, *input_shape), 8, f"--data '{spec}'")
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((T, samples, *input_shape), generator=g, dtype=torch.float64) < prob).double()
    return Data(x, None, f"random Bernoulli spikes p={prob:g} (seed {seed})")


def _load_random(spec: str, req: DataRequest) -> Data:
    return random_spikes(spec.strip(), tuple(req.input_shape), req.samples, req.T, req.seed)


register_source("random", is_random, _load_random)
register_source("digits", lambda s: s.strip().lower() == "digits", _load_digits)
register_source("npz", lambda s: s.lower().endswith(".npz"), _load_npz)
register_source("nmnist", _is_nmnist, _load_nmnist)
register_source("mnist", _is_mnist, _load_mnist)
