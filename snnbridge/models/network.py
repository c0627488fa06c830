"""One structure, two modes: the paper's ANN (ReLU) and SNN (iterative LIF/IF, Eq. 4) as torch modules.

SNN neurons step through :func:`snnbridge.bridge.semantics.neuron_step` with the
NIR parameters they export, so a network and its exported graph compute the
same numbers.  The paper's decay factor ``k`` (its ``τ`` in Tables 2-3) maps to
NIR as ``tau = dt/(1-k)``, ``r = tau/dt`` (unit input gain), ``v_leak = 0``;
IF neurons (``k = 1``) export as ``nir.IF(r=1)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

from snnbridge.bridge import semantics as sem
from snnbridge.models.notation import FC, AvgPool, Conv, Structure, parse_structure


class RectangularSurrogate(torch.autograd.Function):
    """Heaviside forward (strict ``x > 0``); backward ``1/a`` where ``|x| < a/2`` (paper Eq. 6)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, width: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.width = width
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() < ctx.width / 2).to(grad.dtype) / ctx.width, None


def rectangular(width: float) -> sem.SpikeFn:
    """Spike function with the paper's rectangular surrogate gradient of width ``a``."""
    return lambda x: RectangularSurrogate.apply(x, width)


@dataclass
class NetworkConfig:
    """Everything besides the weights that defines a network.

    Attributes:
        structure: paper notation, e.g. ``"Input-32C3-AP2-32C3-AP2-128FC-10"``.
        input_shape: per-sample input, ``(C, H, W)`` or ``(N,)``.
        mode: ``"ann"`` (ReLU) or ``"snn"``.
        neuron: ``"lif"`` (Eq. 4) or ``"if"`` (k = 1, converted models).
        decay: the paper's decay factor ``k`` (``τ`` in Tables 2-3), LIF only.
        threshold: firing threshold ``u_th``.
        surrogate_width: ``a`` of Eq. 6.
        pool: ``"neuron"`` (each pooling unit is a spiking neuron, paper §4.1) or ``"average"``
            (spikes are averaged and passed on).
        bias: use biases in synaptic layers.
        conv_stride: default stride of convolutions.
        dt: step in seconds written to NIR.
        reset: ``"zero"`` (Eq. 4) or ``"subtract"``.
        integration: ``"euler"`` or ``"exact"``.
        threshold_compare: ``"strict"`` (``u > u_th``, as snnTorch/Norse/Sinabs fire) or ``"inclusive"``
            (``u >= u_th``, the paper's Eq. 4 ``f(x) = 1 for x >= 0``); written to the graph's metadata.
    """

    structure: str
    input_shape: tuple[int, ...]
    mode: str = "snn"
    neuron: str = "lif"
    decay: float = 0.25
    threshold: float = 0.5
    surrogate_width: float = 0.5
    pool: str = "neuron"
    bias: bool = False
    conv_stride: int = 1
    dt: float = 1e-3
    reset: str = "zero"
    integration: str = "euler"
    extra: dict[str, Any] = field(default_factory=dict)
    threshold_compare: str = "strict"

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(x) for x in self.input_shape)
        checks = {"mode": ("ann", "snn"), "neuron": ("lif", "if"), "pool": ("neuron", "average"),
                  "reset": sem.RESET_MODES, "integration": sem.INTEGRATIONS,
                  "threshold_compare": sem.THRESHOLD_COMPARES}
        for k, allowed in checks.items():
            if getattr(self, k) not in allowed:
                raise ValueError(f"{k} must be one of {allowed}, got {getattr(self, k)!r}")
        if self.neuron == "lif" and not 0 <= self.decay < 1:
            raise ValueError(f"decay must be in [0, 1) for LIF neurons, got {self.decay}")

    @property
    def semantics(self) -> sem.Semantics:
        return sem.Semantics(self.dt, self.reset, self.integration, self.threshold_compare)


class SpikingNeurons(nn.Module):
    """A layer of LIF or IF neurons of shape ``shape``; forward ``[T, B, *shape] -> spikes [T, B, *shape]``."""

    def __init__(self, shape: tuple[int, ...], cfg: NetworkConfig) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.kind = cfg.neuron
        self.reset_mode = cfg.reset
        self.spike_fn = rectangular(cfg.surrogate_width)
        self.nir_node = self._nir(cfg)
        self.coeff = sem.neuron_coefficients(self.nir_node, cfg.semantics)
        self.last_v: torch.Tensor | None = None

    def _nir(self, cfg: NetworkConfig) -> nir.NIRNode:
        full = lambda v: np.full(self.shape, v, dtype=np.float64)  # noqa: E731
        if self.kind == "if":
            return nir.IF(r=full(1.0), v_threshold=full(cfg.threshold), v_reset=full(0.0))
        tau = cfg.dt / (1.0 - cfg.decay) if cfg.decay > 0 else cfg.dt
        # decay 0: memoryless; dt/tau = 1 gives decay exactly 0 under Euler
        return nir.LIF(tau=full(tau), r=full(tau / cfg.dt), v_leak=full(0.0), v_threshold=full(cfg.threshold),
                       v_reset=full(0.0))

    def forward(self, x: torch.Tensor, keep_v: bool = False) -> torch.Tensor:
        c = sem.TensorCoefficients.of(self.coeff, x.dtype, x.device)
        v0 = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
        state = sem.NeuronState(v0)
        outs, vs = [], []
        for t in range(x.shape[0]):
            s, state, v = sem.neuron_step(state, x[t], c, self.reset_mode, self.spike_fn)
            outs.append(s)
            if keep_v:
                vs.append(v)
        self.last_v = torch.stack(vs) if keep_v else None
        return torch.stack(outs)

    def extra_repr(self) -> str:
        return f"{self.kind}, shape={self.shape}, reset={self.reset_mode}"


class TimeDistributed(nn.Module):
    """Apply a per-frame module to ``[T, B, ...]`` by folding time into the batch."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.module(x.reshape((T * B,) + tuple(x.shape[2:])))
        return y.reshape((T, B) + tuple(y.shape[1:]))


class Network(nn.Module):
    """A network built from the paper's notation, in ANN or SNN mode.

    ANN mode: input ``[B, *input_shape]`` → output ``[B, classes]`` (no activation on the last layer).
    SNN mode: input ``[T, B, *input_shape]`` → output spikes ``[T, B, classes]``; decode with
    :meth:`rates` (paper Eq. 7).

    Layers are named as in the exported NIR graph: ``flatten``, ``conv1``, ``pool2``, ``fc3``
    (synapses, by 1-based position in the structure) and ``lif1``/``if1`` (their neurons).
    """

    def __init__(self, config: NetworkConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = config or NetworkConfig(**kwargs)
        self.config = cfg
        self.structure: Structure = parse_structure(cfg.structure, cfg.conv_stride)
        shapes = self.structure.shapes(cfg.input_shape)
        self.synapses = nn.ModuleDict()
        self.neurons = nn.ModuleDict()
        self.plan: list[tuple[str, str | None]] = []  # (synapse name, neuron name or None)
        s = cfg.input_shape
        n = len(self.structure.layers)
        for i, (layer, out) in enumerate(zip(self.structure.layers, shapes), start=1):
            if isinstance(layer, FC) and len(s) > 1:
                self.synapses["flatten"] = nn.Flatten()
                self.plan.append(("flatten", None))
                s = (int(np.prod(s)),)
            if isinstance(layer, Conv):
                name = f"conv{i}"
                self.synapses[name] = nn.Conv2d(s[0], layer.out_channels, layer.kernel, layer.stride, layer.pad,
                                                bias=cfg.bias)
            elif isinstance(layer, AvgPool):
                name = f"pool{i}"
                self.synapses[name] = nn.AvgPool2d(layer.kernel, layer.kernel)
            else:
                name = f"fc{i}"
                self.synapses[name] = nn.Linear(s[0], layer.out_features, bias=cfg.bias)
            spiking_here = not isinstance(layer, AvgPool) or cfg.pool == "neuron"
            neuron = None
            if cfg.mode == "snn" and spiking_here:
                neuron = f"{cfg.neuron}{i}"
                self.neurons[neuron] = SpikingNeurons(out, cfg)
            elif cfg.mode == "ann" and i < n and not isinstance(layer, AvgPool):
                neuron = f"relu{i}"
                self.neurons[neuron] = nn.ReLU()
            self.plan.append((name, neuron))
            s = out
        self.records: dict[str, torch.Tensor] = {}

    @property
    def is_snn(self) -> bool:
        return self.config.mode == "snn"

    def forward(self, x: torch.Tensor, record: bool = False) -> torch.Tensor:
        """ANN: ``[B, ...] -> [B, classes]``; SNN: ``[T, B, ...] -> spikes [T, B, classes]``.

        With ``record=True`` every layer's output is kept in :attr:`records` (SNN membranes in
        ``records['<neuron>.v']``).
        """
        want = len(self.config.input_shape) + (2 if self.is_snn else 1)
        if x.dim() != want or tuple(x.shape[-len(self.config.input_shape):]) != self.config.input_shape:
            layout = "[T, B, " if self.is_snn else "[B, "
            raise ValueError(f"expected input {layout}{', '.join(map(str, self.config.input_shape))}], "
                             f"got {list(x.shape)}")
        self.records = {}
        for syn, neu in self.plan:
            mod = self.synapses[syn]
            x = TimeDistributed(mod)(x) if self.is_snn else mod(x)
            if record:
                self.records[syn] = x
            if neu is not None:
                nm = self.neurons[neu]
                x = nm(x, keep_v=record) if isinstance(nm, SpikingNeurons) else nm(x)
                if record:
                    self.records[neu] = x
                    if isinstance(nm, SpikingNeurons):
                        self.records[neu + ".v"] = nm.last_v
        return x

    @staticmethod
    def rates(spikes: torch.Tensor) -> torch.Tensor:
        """Firing rates ``[B, classes]`` of output spikes ``[T, B, classes]`` (paper Eq. 7)."""
        return spikes.float().mean(0) if spikes.dtype == torch.bool else spikes.mean(0)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class per sample, ``[B]`` (argmax of activations or of rates, Eq. 7)."""
        with torch.no_grad():
            y = self(x)
        return (self.rates(y) if self.is_snn else y).argmax(-1)

    # ----------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        """Checkpoint: config + weights (``torch.save``), reloadable with :meth:`load`."""
        from snnbridge.fileio import save_tensors

        return save_tensors(Path(path), {"format": "snnbridge-network/1", "config": asdict(self.config),
                                         "state_dict": self.state_dict()})

    @classmethod
    def load(cls, path: str | Path) -> "Network":
        """Rebuild a network saved by :meth:`save`; never executes code from the file (``weights_only``)."""
        from snnbridge.errors import SnnBridgeError
        from snnbridge.fileio import load_tensors

        ck = load_tensors(path, "an snnbridge network checkpoint")
        if not isinstance(ck, dict) or ck.get("format") != "snnbridge-network/1":
            found = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
            raise SnnBridgeError(f"{path}: not an snnbridge network checkpoint (format {found!r}, expected "
                                 "'snnbridge-network/1')")
        return _rebuild(cls, ck.get("config"), ck.get("state_dict"), path)


def _rebuild(cls, config, state_dict, path) -> "Network":
    """A :class:`Network` from a checkpoint's config and weights, with one clear error for a bad or foreign file."""
    from snnbridge.errors import SnnBridgeError

    if not isinstance(config, dict) or not isinstance(state_dict, dict):
        raise SnnBridgeError(f"{path}: checkpoint lacks a 'config' dict or a 'state_dict'")
    try:
        net = cls(NetworkConfig(**config))
    except (TypeError, ValueError) as e:
        raise SnnBridgeError(f"{path}: checkpoint config is not valid ({e})") from None
    if not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise SnnBridgeError(f"{path}: checkpoint 'state_dict' holds values that are not tensors")
    try:
        net.load_state_dict(state_dict)
    except (RuntimeError, KeyError, TypeError) as e:
        raise SnnBridgeError(f"{path}: weights do not fit the checkpoint's config ({str(e).splitlines()[0]})") from None
    return net
