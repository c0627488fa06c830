"""The one small interface every simulator adapter implements, and the registry that finds them.

A :class:`Backend` compiles a NIR graph for a dt, precision and reset semantics
into a :class:`Simulation`; ``Simulation.run(inputs [T, B, ...])`` returns a
:class:`~snnbridge.bridge.recording.Recording` of every node, laid out exactly
as the reference executor's.  Adapters take every discrete-time constant from
:mod:`snnbridge.bridge.semantics` (via ``FlatGraph.coefficients``); they never
define their own.

Third-party backends register through the ``snnbridge.backends`` entry-point
group (value: a zero-argument callable returning a :class:`Backend`).

Devices: a backend whose ``compile`` takes ``device=`` runs on ``cpu`` and ``cuda`` (the torch backends and
the reference executor; inputs move to the device inside ``run``, recordings stay there until the caller
moves them).  Any other backend (Brian2, the upstream audit modes) accepts ``device="cpu"`` and refuses a
GPU with one :class:`~snnbridge.errors.UnsupportedNodeError` naming the backend (``field 'device'``);
:func:`resolve_device` refuses ``cuda`` on a machine without CUDA.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterable, Iterator

import nir
import torch

from snnbridge.bridge.graph import FlatGraph, prepare
from snnbridge.bridge.inputs import Inputs
from snnbridge.bridge.io import read_graph
from snnbridge.bridge.recording import Recording
from snnbridge.errors import BackendUnavailableError, NativeModelError, SnnBridgeError, UnsupportedNodeError

GPU_DEVICES = ("cpu", "cuda")
"""The device types of a backend whose ``compile`` takes ``device=``."""


def parse_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` (``None`` = cpu), without checking that it exists; one clear error."""
    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise SnnBridgeError(f"device '{device}' is not a device name; use cpu, cuda or cuda:N") from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``None`` = cpu) as a ``torch.device`` that exists here.

    Raises :class:`SnnBridgeError` with one line for a malformed name, for ``cuda`` on a machine (or a
    torch build) without CUDA, and for a CUDA index beyond the visible GPUs.
    """
    dev = parse_device(device)
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise SnnBridgeError(f"device '{device}': snnbridge runs on cpu or cuda, not {dev.type}")
    if not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise SnnBridgeError(f"device '{device}' requested but CUDA is not available ({why}; torch "
                             f"{torch.__version__}); use --device cpu")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SnnBridgeError(f"device '{device}': only {torch.cuda.device_count()} CUDA device(s) visible")
    return dev


@contextlib.contextmanager
def ieee_float32(device: str | torch.device | None) -> Iterator[None]:
    """On a CUDA ``device``, turn off TF32 (10-bit mantissa) in matmuls and convolutions for the block.

    PyTorch lets cuDNN convolutions use TF32 by default, which makes float32 results differ from IEEE float32
    by ~1e-3 relative (measured: 7.3e-4 on ``cnn_sinabs.nir``, beyond the ``float32`` profile's 1e-4); a
    conformance run wants the precision it names.  Restores the previous settings; a no-op on the CPU.
    """
    if parse_device(device).type != "cuda":
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class Simulation(ABC):
    """A graph compiled for one backend; run it as often as you like."""

    backend: str
    graph: FlatGraph
    dtype: torch.dtype

    @abstractmethod
    def run(self, inputs: Inputs, record: Iterable[str] | None = None, membranes: bool = True) -> Recording:
        """Run ``inputs`` ``[T, B, *shape]`` (or a dict by input name); record every node (or ``record``)."""


class Backend(ABC):
    """A simulator adapter.

    Attributes:
        name: registry name (``"snntorch"``).
        requires: Python packages it imports (checked before use).
        pip: the install command that provides them.
        supported_nodes: NIR node type names it can run.
        supported_resets / supported_integrations / supported_dtypes: options it can honour.
    """

    name: str = ""
    requires: tuple[str, ...] = ()
    pip: str = ""
    supported_nodes: frozenset[str] = frozenset()
    supported_resets: tuple[str, ...] = ("zero", "subtract", "none")
    supported_integrations: tuple[str, ...] = ("euler", "exact")
    supported_dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64)
    devices: tuple[str, ...] = ("cpu",)
    """Device types ``compile(device=...)`` can run on; ``("cpu", "cuda")`` when ``compile`` takes ``device``."""

    def __init_subclass__(cls, **kwargs) -> None:
        """Give every adapter the same ``device`` contract, whether or not its ``compile`` takes ``device``.

        A ``compile`` with a ``device`` parameter makes the class GPU-capable (unless it sets ``devices``
        itself); any other ``compile`` is wrapped so that ``device="cpu"`` is accepted and dropped and a GPU
        is refused by :meth:`check_device` (one clear error naming the backend, not a ``TypeError``).
        """
        super().__init_subclass__(**kwargs)
        compile_ = cls.__dict__.get("compile")
        if compile_ is None or getattr(compile_, "__isabstractmethod__", False):
            return
        if "device" in inspect.signature(compile_).parameters:
            if "devices" not in cls.__dict__:
                cls.devices = GPU_DEVICES
            return
        if "devices" not in cls.__dict__:
            cls.devices = ("cpu",)

        @functools.wraps(compile_)
        def compile_on_cpu(self, graph, *args, device: str | torch.device | None = None, **kw):
            if device is not None:
                self.check_device(device)
            return compile_(self, graph, *args, **kw)

        cls.compile = compile_on_cpu

    def check_device(self, device: str | torch.device | None) -> torch.device:
        """``device`` as a ``torch.device`` this backend can run on here, or one clear error.

        Raises :class:`UnsupportedNodeError` (``field 'device'``) naming the backend when it cannot run on that
        kind of device, :class:`SnnBridgeError` when the device does not exist on this machine.
        """
        if parse_device(device).type not in self.devices:
            raise UnsupportedNodeError(f"backend '{self.name}' runs on {' or '.join(self.devices)} only, not on "
                                       f"'{device}'; run it with device cpu (e.g. '{self.name}@device=cpu')",
                                       field="device")
        return resolve_device(device)

    def available(self) -> bool:
        return all(importlib.util.find_spec(p) is not None for p in self.requires)

    def ensure_available(self) -> None:
        missing = [p for p in self.requires if importlib.util.find_spec(p) is None]
        if missing:
            raise BackendUnavailableError(
                f"backend '{self.name}' needs {', '.join(missing)}, which is not installed; run: {self.pip}"
            )

    def prepare(self, graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None,
                reset: str | None = None, integration: str | None = None,
                dtype: torch.dtype = torch.float64) -> FlatGraph:
        """Load/check the graph and refuse, by name, any node or option this backend cannot honour."""
        self.ensure_available()
        if isinstance(graph, (str, Path)):
            graph = read_graph(graph)
        fg = graph if isinstance(graph, FlatGraph) else prepare(graph, dt=dt, reset=reset, integration=integration)
        for name in fg.order:
            kind = fg.type_of(name)
            if kind not in self.supported_nodes:
                raise UnsupportedNodeError(
                    f"backend '{self.name}' does not support NIR node type {kind} "
                    f"(supported: {', '.join(sorted(self.supported_nodes))})", node=name)
            if fg.node_reset[name] not in self.supported_resets and kind in ("LIF", "IF", "CubaLIF"):
                raise UnsupportedNodeError(f"backend '{self.name}' cannot do reset '{fg.node_reset[name]}'",
                                           node=name, field="reset")
        if fg.semantics.integration not in self.supported_integrations:
            raise UnsupportedNodeError(f"backend '{self.name}' cannot do integration "
                                       f"'{fg.semantics.integration}'", field="integration")
        if dtype not in self.supported_dtypes:
            raise UnsupportedNodeError(f"backend '{self.name}' cannot run in {dtype}", field="dtype")
        return fg

    @abstractmethod
    def compile(self, graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None,
                reset: str | None = None, integration: str | None = None,
                dtype: torch.dtype = torch.float64, **options) -> Simulation:
        """Compile ``graph``; ``dt``/``reset``/``integration`` override its metadata."""

    # ------------------------------------------------------------- native models (see docs/native.md)
    def from_native(self, module, input_shape, dt: float = 1e-3) -> nir.NIRGraph:
        """A NIR graph (with snnbridge metadata) that steps exactly as the simulator's own ``module`` does.

        ``input_shape`` is per sample (no time, no batch).  Raises :class:`~snnbridge.errors.NativeModelError`
        naming the layer path and class for anything it cannot carry over faithfully.
        """
        raise NativeModelError(f"backend '{self.name}' does not import native models")

    def to_native(self, graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None, **options):
        """The simulator's own object (a trainable ``torch.nn.Module``, a ``brian2.Network``) realising ``graph``."""
        raise NativeModelError(f"backend '{self.name}' does not export native models")

    def run_native(self, module, inputs: Inputs, dtype: torch.dtype = torch.float64,
                   dt: float | None = None) -> Recording:
        """Run a native ``module`` as its library runs it on ``inputs`` ``[T, B, *input_shape]``.

        Returns a :class:`Recording` of every spiking layer (and the output), keyed by the node names
        :meth:`from_native` gives the same module, so it compares node by node with any backend.  ``dt`` (s) only
        labels the recording (the library's own step decides the dynamics).
        """
        raise NativeModelError(f"backend '{self.name}' does not run native models")

    def run(self, graph, inputs: Inputs, dt: float | None = None, reset: str | None = None,
            integration: str | None = None, dtype: torch.dtype = torch.float64, **options) -> Recording:
        """``compile(...)`` then ``run(inputs)`` in one call."""
        return self.compile(graph, dt=dt, reset=reset, integration=integration, dtype=dtype, **options).run(inputs)


# --------------------------------------------------------------------------- registry

_FACTORIES: dict[str, Callable[[], Backend]] = {}


def register(name: str, factory: Callable[[], Backend]) -> None:
    """Add (or replace) a backend under ``name``."""
    _FACTORIES[name] = factory


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="snnbridge.backends"):
        if ep.name not in _FACTORIES:
            _FACTORIES[ep.name] = _entry_point_factory(ep)


def _entry_point_factory(ep) -> Callable[[], Backend]:
    """A factory that loads entry point ``ep`` when first used; a broken one is an unavailable backend, not a crash."""

    def factory() -> Backend:
        try:
            make = ep.load()
        except (ImportError, AttributeError) as e:
            raise BackendUnavailableError(f"backend '{ep.name}' (entry point {ep.value}) cannot be loaded: "
                                          f"{type(e).__name__}: {e}") from None
        return make()

    return factory


def names() -> list[str]:
    """Every registered backend name (installed or not)."""
    _load_entry_points()
    return list(_FACTORIES)


def get(name: str) -> Backend:
    """The backend called ``name``; raises :class:`BackendUnavailableError` with the pip command if missing."""
    _load_entry_points()
    if name not in _FACTORIES:
        raise BackendUnavailableError(f"unknown backend '{name}'; known: {', '.join(_FACTORIES)}")
    backend = _FACTORIES[name]()
    backend.ensure_available()
    return backend


def devices_of(name: str) -> tuple[str, ...] | None:
    """The device types backend ``name`` runs on, without requiring its simulator; ``None`` if it cannot load."""
    _load_entry_points()
    if name not in _FACTORIES:
        return None
    try:
        return tuple(_FACTORIES[name]().devices)
    except (ImportError, BackendUnavailableError):
        return None


NATIVE_LIBRARIES = ("snntorch", "norse", "spikingjelly", "sinabs", "rockpool", "spyx")
"""Libraries whose trained models ``from_native`` imports (each is also a backend name)."""


def native_library(module) -> str:
    """Which backend's library a native model belongs to (``"snntorch"``, ``"norse"``, ``"spikingjelly"``,
    ``"sinabs"``, ``"rockpool"``, ``"spyx"`` or ``"brian2"``), from its layers' classes (a ``brian2.Network`` is
    Brian2's; a flax nnx module's layers are walked with ``nnx.iter_modules``).

    Raises :class:`NativeModelError` when no layer comes from a supported library, or layers from both do.
    """
    if any(c.__module__.split(".")[0] == "brian2" for c in type(module).__mro__):
        return "brian2"
    libs = set()
    mods = [m for _, m in module.named_modules()] if hasattr(module, "named_modules") else [module]
    if not hasattr(module, "named_modules") and any(c.__module__.startswith("flax.") for c in type(module).__mro__):
        from flax import nnx

        mods = [m for _, m in nnx.iter_modules(module)]
    for mod in mods:  # named_modules: Rockpool's modules() is a dict of its own
        for cls in type(mod).__mro__:  # subclasses of a library's layers count as that library's
            root = cls.__module__.split(".")[0]
            if root in NATIVE_LIBRARIES:
                libs.add(root)
    if len(libs) != 1:
        found = ", ".join(sorted(libs)) or "none"
        raise NativeModelError(f"cannot tell which library {type(module).__name__} belongs to (layers from: "
                               f"{found}); name it (--library, or backends.get('snntorch' or 'norse'))")
    return libs.pop()


def status() -> dict[str, str]:
    """``name -> "available"`` or the install hint, for every registered backend."""
    out = {}
    for n in names():
        try:
            b = _FACTORIES[n]()
        except (ImportError, BackendUnavailableError) as e:  # the adapter module needs a missing package
            out[n] = f"unavailable: {type(e).__name__}: {e}"
            continue
        out[n] = "available" if b.available() else f"unavailable: {b.pip}"
    return out
