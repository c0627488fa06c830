"""The paper's structure notation (Deng et al. 2020, Table 1), e.g. ``Input-32C3-AP2-32C3-AP2-128FC-10``.

Tokens, separated by ``-``:

* ``Input`` — the first token (optional).
* ``nCk`` — convolution, ``n`` output maps, ``k x k`` kernel, padding ``(k-1)//2``
  ("same", the paper's padding 1 for 3x3), stride 1 unless ``conv_stride`` says
  otherwise or the token ends with ``s<stride>`` (``64C3s2``).
* ``APk`` — ``k x k`` average pooling, stride ``k``.
* ``nFC`` or a bare ``n`` — fully connected layer with ``n`` outputs.

The last layer is the classifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from snnbridge.errors import NotationError


@dataclass(frozen=True)
class Conv:
    """``nCk``: 2-D convolution; shapes ``[C, H, W] -> [out_channels, H', W']``."""

    out_channels: int
    kernel: int
    stride: int = 1
    padding: int | None = None

    @property
    def pad(self) -> int:
        return (self.kernel - 1) // 2 if self.padding is None else self.padding

    def out_shape(self, s: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = s
        f = lambda n: (n + 2 * self.pad - self.kernel) // self.stride + 1  # noqa: E731
        return (self.out_channels, f(h), f(w))

    def __str__(self) -> str:
        return f"{self.out_channels}C{self.kernel}" + (f"s{self.stride}" if self.stride != 1 else "")


@dataclass(frozen=True)
class AvgPool:
    """``APk``: ``k x k`` average pooling with stride ``k``; ``[C, H, W] -> [C, H//k, W//k]``."""

    kernel: int

    def out_shape(self, s: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = s
        return (c, h // self.kernel, w // self.kernel)

    def __str__(self) -> str:
        return f"AP{self.kernel}"


@dataclass(frozen=True)
class FC:
    """``nFC``: fully connected, ``[N] -> [out_features]`` (inputs with more dims are flattened first)."""

    out_features: int

    def out_shape(self, s: tuple[int, ...]) -> tuple[int, ...]:
        return (self.out_features,)

    def __str__(self) -> str:
        return f"{self.out_features}FC"


Layer = Union[Conv, AvgPool, FC]

_CONV = re.compile(r"^(\d+)C(\d+)(?:s(\d+))?$", re.IGNORECASE)
_POOL = re.compile(r"^AP(\d+)$", re.IGNORECASE)
_FC = re.compile(r"^(\d+)(?:FC)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Structure:
    """A parsed structure: ``layers`` in order; ``text`` the normalised notation."""

    layers: tuple[Layer, ...]

    @property
    def text(self) -> str:
        def tok(i: int, layer: Layer) -> str:
            # the paper writes hidden FC layers as 'nFC' in CNNs and as bare 'n' in MLPs
            if isinstance(layer, FC) and (i + 1 == len(self.layers) or not self.is_cnn):
                return str(layer.out_features)
            return str(layer)

        return "-".join(["Input"] + [tok(i, layer) for i, layer in enumerate(self.layers)])

    @property
    def is_cnn(self) -> bool:
        return any(isinstance(x, Conv) for x in self.layers)

    @property
    def num_classes(self) -> int:
        return self.layers[-1].out_features  # type: ignore[union-attr]

    def shapes(self, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Output shape of every layer for a per-sample ``input_shape`` (``(C, H, W)`` or ``(N,)``)."""
        s = tuple(input_shape)
        out = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, (Conv, AvgPool)) and len(s) != 3:
                raise NotationError(f"layer {i + 1} '{layer}' needs a [C, H, W] input, gets {s}")
            s = layer.out_shape(s)
            if min(s) <= 0:
                raise NotationError(f"layer {i + 1} '{layer}' shrinks the input to {s}")
            out.append(s)
        return out

    def __str__(self) -> str:
        return self.text


def parse_structure(spec: str | Structure, conv_stride: int = 1) -> Structure:
    """Parse ``Input-32C3-AP2-32C3-AP2-128FC-10`` into a :class:`Structure`.

    ``conv_stride`` is the stride of convolutions whose token has no ``s`` suffix.
    Raises :class:`NotationError` naming the bad token and its position (1-based).
    """
    if isinstance(spec, Structure):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise NotationError("empty structure string")
    tokens = [t.strip() for t in spec.strip().split("-")]
    if tokens[0].lower() == "input":
        tokens = tokens[1:]
        offset = 2
    else:
        offset = 1
    if not tokens:
        raise NotationError(f"structure '{spec}' has no layers")
    layers: list[Layer] = []
    for i, tok in enumerate(tokens):
        pos = i + offset
        if m := _CONV.match(tok):
            n, k, s = int(m[1]), int(m[2]), int(m[3]) if m[3] else conv_stride
            if n == 0 or k == 0 or s == 0:
                raise NotationError(f"token {pos} '{tok}': channels, kernel and stride must be > 0")
            layers.append(Conv(n, k, s))
        elif m := _POOL.match(tok):
            if int(m[1]) == 0:
                raise NotationError(f"token {pos} '{tok}': pooling size must be > 0")
            layers.append(AvgPool(int(m[1])))
        elif m := _FC.match(tok):
            if int(m[1]) == 0:
                raise NotationError(f"token {pos} '{tok}': layer size must be > 0")
            layers.append(FC(int(m[1])))
        else:
            hint = " ('Input' may only come first)" if tok.lower() == "input" else ""
            raise NotationError(
                f"unknown token '{tok}' at position {pos} of '{spec}'{hint}; "
                "expected nCk (conv), APk (average pool), nFC or n (fully connected)"
            )
    if not isinstance(layers[-1], FC):
        raise NotationError(f"structure '{spec}' must end with a fully connected (classifier) layer")
    return Structure(tuple(layers))


TABLE1 = {
    "mnist_mlp": "Input-512-10",
    "mnist_cnn": "Input-32C3-AP2-32C3-AP2-128FC-10",
    "cifar10_cnn": "Input-64C3-AP2-128C3-128C3-AP2-256FC-10",
    "nmnist_mlp": "Input-512-512-10",
    "nmnist_cnn": "Input-64C3-128C3-AP2-128C3-AP2-256FC-10",
    "dvscifar10_cnn": "Input-64C3-AP2-128C3-AP2-256FC-10",
}
"""Every structure of the paper's Table 1, by workload."""

TABLE1_INPUTS = {
    "mnist_mlp": (784,),
    "mnist_cnn": (1, 28, 28),
    "cifar10_cnn": (3, 32, 32),
    "nmnist_mlp": (2 * 34 * 34,),
    "nmnist_cnn": (2, 34, 34),
    "dvscifar10_cnn": (2, 42, 42),
}
"""The per-sample input shape each Table-1 structure is used with (Models 1-3, 5, 6).  DVS-CIFAR10's 128×128
recordings are downsampled to 42×42 frames, as in Wu et al. 2019 which the paper follows (event coordinates
scaled by 42/128 and binned: :func:`snnbridge.data.dvs_cifar10.downsample_events`); its cost table only fits
42×42 (3.35 M weights; 33.6 M at 128×128).  :data:`DVS_CIFAR10_FULL_INPUT` is the sensor-size option."""

DVS_CIFAR10_FULL_INPUT = (2, 128, 128)
"""DVS-CIFAR10 at the sensor's full resolution (``load_dvs_cifar10(..., size=128)``)."""

BINARY_IMAGE_COLUMNS = 100
"""Columns (time windows) of Model-4's binary image (Fig. 4c): the recording cut into 100 windows (≈ 3 ms on
N-MNIST's ≈ 300 ms), the width the paper's cost table fits."""


def model4_input(key: str) -> tuple[int, int, int]:
    """Model-4's per-sample input ``[1, P·H·W, columns]`` (the unfolded binary image) for Table-1 ``key``."""
    return (1, int(_prod(TABLE1_INPUTS[key])), BINARY_IMAGE_COLUMNS)


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for v in shape:
        n *= int(v)
    return n


def model4_structure(key: str) -> str:
    """The Table-1 structure of ``key`` as Model-4 runs it: every convolution with stride 2 (§4.1)."""
    return "-".join(f"{t}s2" if _CONV.match(t) and "s" not in t.lower() else t for t in TABLE1[key].split("-"))
