"""Which runs a conformance check makes: backend specs (``"norse"``, ``"reference@reset=subtract"``) and running them.

A spec names a registered backend plus optional overrides after ``@`` joined by ``+``:
``reset=zero|subtract|none``, ``dt=<seconds>``, ``integration=euler|exact``, ``dtype=float32|float64``
(or bare ``float32``/``float64``), ``device=cpu|cuda|cuda:N`` (``snntorch@device=cuda``; only backends
whose ``compile`` takes ``device`` run on a GPU, see :func:`check_devices`).  ``reference@reset=subtract``
is how to plant a reset-semantics divergence from the command line.  Backends named ``*-upstream`` are audit
runs (the simulators' own NIR importers): reported, never counted as failures.  A :class:`BackendSpec` may
instead carry any ``runner(graph, x, dtype, **semantics) -> Recording`` callable (tests use this to plant divergences).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import torch

from snnbridge.bridge.recording import Recording
from snnbridge.bridge.semantics import SemanticsOverrides
from snnbridge.errors import BackendUnavailableError, SnnBridgeError

DTYPES = {"float32": torch.float32, "float64": torch.float64}
_KEYS = ("reset", "dt", "integration", "dtype", "device")

Runner = Callable[..., Recording]
"""``runner(graph, x [T, B, ...], dtype, **semantics) -> Recording``; ``graph`` is the ``nir.NIRGraph`` (or
``FlatGraph``) under check, ``semantics`` the ``dt``/``reset``/``integration`` overrides in force."""


@dataclass
class BackendSpec:
    """One run to compare with the reference.

    Attributes:
        name: display name (unique within a check), e.g. ``"norse"`` or ``"reference@reset=subtract"``.
        backend: registry name (``snnbridge.backends.get``); ``None`` when ``runner`` is given.
        overrides: ``reset``/``dt``/``integration`` passed to ``compile``, ``dtype`` (a ``torch.dtype``) and
            ``device`` (a device name, which wins over the check's ``device``).
        runner: a custom ``runner(graph, x, dtype, **semantics) -> Recording`` instead of a registered backend.
        audit: report only; a failure does not fail the check (default for ``*-upstream``).
        options: extra keyword arguments for the backend's ``compile`` (e.g. Brian2's ``target="numpy"``).
        native: for the user's own module run natively (``conform(..., original=module)``), the backend whose
            library it belongs to (``"snntorch"``, ``"norse"``); reported as ``<native>-native``.
    """

    name: str
    backend: str | None = None
    overrides: dict = field(default_factory=dict)
    runner: Runner | None = None
    audit: bool = False
    options: dict = field(default_factory=dict)
    native: str | None = None

    def __post_init__(self) -> None:
        if self.backend is None and self.runner is None:
            self.backend = self.name

    def dtype(self, default: torch.dtype) -> torch.dtype:
        return self.overrides.get("dtype", default)

    def device(self, default: str | torch.device | None = None) -> str:
        """The device this run uses: its own ``device`` override, else ``default`` (``None``: cpu).

        Custom runners (``runner=``, the user's ``original`` module) always get their inputs on the CPU.
        """
        if self.runner is not None:
            return "cpu"
        return str(self.overrides.get("device", default if default is not None else "cpu"))


def parse_spec(text: str) -> BackendSpec:
    """``"name"`` or ``"name@key=value+key=value"`` → :class:`BackendSpec`; raises :class:`SnnBridgeError`."""
    text = text.strip()
    if not text:
        raise SnnBridgeError("empty backend name")
    base, _, opts = text.partition("@")
    overrides: dict = {}
    for item in filter(None, opts.split("+")):
        key, eq, value = item.partition("=")
        if not eq and key in DTYPES:
            key, value = "dtype", key
        if key not in _KEYS or not value:
            raise SnnBridgeError(f"backend '{text}': bad option '{item}'; use {', '.join(k + '=…' for k in _KEYS)}")
        if key == "dtype":
            if value not in DTYPES:
                raise SnnBridgeError(f"backend '{text}': dtype must be float32 or float64, got '{value}'")
            overrides["dtype"] = DTYPES[value]
        elif key == "device":
            from snnbridge.backends.base import parse_device

            overrides["device"] = str(parse_device(value))
        elif key == "dt":
            try:
                overrides["dt"] = float(value)
            except ValueError:
                raise SnnBridgeError(f"backend '{text}': dt must be a number of seconds, got '{value}'") from None
        else:
            from snnbridge.bridge.semantics import INTEGRATIONS, RESET_MODES

            allowed = RESET_MODES if key == "reset" else INTEGRATIONS
            if value not in allowed:
                raise SnnBridgeError(f"backend '{text}': {key} must be one of {', '.join(allowed)}, got '{value}'")
            overrides[key] = value
    if "dt" in overrides and not overrides["dt"] > 0:
        raise SnnBridgeError(f"backend '{text}': dt must be > 0")
    return BackendSpec(text, base, overrides, audit=base.endswith("-upstream"))


def original_spec(module, name: str = "original") -> BackendSpec:
    """The spec that runs the user's own ``module`` natively (its library's ``run_native``), compared like a backend."""
    from snnbridge import backends

    lib = backends.native_library(module)

    def runner(graph, xb, dtype, **semantics):
        return backends.get(lib).run_native(module, xb, dtype=dtype)

    return BackendSpec(name, runner=runner, native=lib)


def check_devices(specs: list[BackendSpec], device: str | torch.device | None = None) -> None:
    """Refuse, before anything runs, a device a backend cannot run on or that this machine does not have.

    ``device`` is the check's default (a spec's ``@device=`` wins).  Backends that cannot be loaded are left to
    report themselves unavailable.  Raises :class:`SnnBridgeError` (one line, naming the backend).
    """
    from snnbridge.backends.base import devices_of, parse_device, resolve_device

    wanted = [(s, s.device(device)) for s in specs]
    gpu = [(s, dev) for s, dev in wanted if parse_device(dev).type != "cpu"]
    for s, dev in gpu:  # what a backend can never do first, whatever this machine has
        kinds = devices_of(s.backend) if s.backend else None
        if kinds is not None and parse_device(dev).type not in kinds:
            raise SnnBridgeError(f"backend '{s.backend}' runs on {' or '.join(kinds)} only, not on '{dev}'; "
                                 f"drop it or run it on the CPU with '{s.backend}@device=cpu'")
    for _, dev in gpu:
        resolve_device(dev)


def parse_specs(items) -> list[BackendSpec]:
    """A comma-separated string or a list of strings/specs → unique :class:`BackendSpec` list."""
    if isinstance(items, str):
        items = [s for s in items.split(",") if s.strip()]
    specs = [s if isinstance(s, BackendSpec) else parse_spec(s) for s in items]
    seen = set()
    for s in specs:
        if s.name in seen:
            raise SnnBridgeError(f"backend '{s.name}' is listed twice")
        seen.add(s.name)
    if not specs:
        raise SnnBridgeError("no backends to check")
    return specs


@dataclass
class RunOutcome:
    """What happened when running one spec: ``status`` is ``ok``, ``unavailable`` or ``error``."""

    spec: BackendSpec
    status: str
    recording: Recording | None = None
    reason: str = ""
    runtime_s: float = 0.0
    dtype: torch.dtype = torch.float64


def _chunks(B: int, size: int | None) -> list[slice]:
    size = B if not size or size <= 0 else size
    return [slice(i, min(B, i + size)) for i in range(0, B, size)]


def to_cpu(rec: Recording) -> Recording:
    """``rec`` with every trace ``[T, B, ...]`` on the CPU (itself when it already is)."""
    tensors = list(rec.outputs.values()) + list(rec.membranes.values())
    if all(t.device.type == "cpu" for t in tensors):
        return rec
    return Recording({k: v.cpu() for k, v in rec.outputs.items()}, {k: v.cpu() for k, v in rec.membranes.items()},
                     dict(rec.node_types), rec.dt, rec.backend, list(rec.order))


def compile_spec(spec: BackendSpec, graph, dtype: torch.dtype, semantics: SemanticsOverrides | dict,
                 device: str | torch.device | None = None, overrides: bool = True):
    """Compile ``spec`` once: ``(run, dtype)`` where ``run(x [T, b, ...]) -> Recording``, or the
    :class:`RunOutcome` (``unavailable``/``error``) saying why it cannot run.  Never raises for a failing backend.

    ``semantics``: the check's :class:`~snnbridge.bridge.semantics.SemanticsOverrides` (or a dict of them) for
    ``compile`` (``overrides``: the spec's own are added; pass ``False`` when ``graph`` is already prepared with
    them).
    """
    dt_ = spec.dtype(dtype)
    dev = spec.device(device)
    if not isinstance(semantics, SemanticsOverrides):
        semantics = SemanticsOverrides.of(semantics)
    kw = semantics.kwargs()
    if overrides:
        kw.update({k: v for k, v in spec.overrides.items() if k not in ("dtype", "device")})
    if dev != "cpu":
        kw["device"] = dev
    t0 = time.perf_counter()
    try:
        if spec.runner is not None:
            return (lambda xb: spec.runner(graph, xb, dt_, **kw)), dt_
        from snnbridge import backends

        return backends.get(spec.backend).compile(graph, dtype=dt_, **kw, **spec.options).run, dt_
    except (BackendUnavailableError, ImportError) as e:
        return RunOutcome(spec, "unavailable", reason=_one_line(e), dtype=dt_)
    except Exception as e:  # noqa: BLE001 - a backend that cannot compile is a reported failure
        return RunOutcome(spec, "error", reason=f"compile failed: {_one_line(e)}", dtype=dt_,
                          runtime_s=time.perf_counter() - t0)


def run_batch(compiled, x: torch.Tensor, device: str | torch.device | None = None,
              spec: BackendSpec | None = None) -> tuple[Recording | None, float, str]:
    """Run one batch ``x [T, b, ...]`` through a :func:`compile_spec` result: ``(recording on the CPU, seconds,
    error)``; ``error`` is ``""`` on success, else the one-line reason (never raises for a failing backend).

    On CUDA the batch runs in IEEE float32 (TF32 off, :func:`~snnbridge.backends.base.ieee_float32`).
    """
    from snnbridge.backends.base import ieee_float32

    run = compiled[0]
    dev = spec.device(device) if spec is not None else "cpu"
    t0 = time.perf_counter()
    try:
        with ieee_float32(dev):
            rec = run(x)
        if not isinstance(rec, Recording):
            raise TypeError(f"run() returned {type(rec).__name__}, not a Recording")
        rec = to_cpu(rec)
    except Exception as e:  # noqa: BLE001 - a crashing simulator is a reported failure, not a crash of the check
        return None, time.perf_counter() - t0, f"run failed: {_one_line(e)}"
    return rec, time.perf_counter() - t0, ""


def run_spec(spec: BackendSpec, graph, x: torch.Tensor, dtype: torch.dtype, semantics: SemanticsOverrides | dict,
             batch_size: int | None = None, progress: bool = False,
             device: str | torch.device | None = None) -> RunOutcome:
    """Compile and run ``spec`` on ``x [T, B, ...]`` in batches; never raises for a failing backend.

    ``semantics``: the check's ``dt``/``reset``/``integration`` overrides (the spec's own win).  ``device``: the
    check's device (``spec``'s ``@device=`` wins); each batch moves to it inside the backend's ``run`` and its
    recording comes back to the CPU before the next batch, so comparisons always happen on the CPU.  On CUDA,
    float32 runs in IEEE float32 (TF32 off, :func:`~snnbridge.backends.base.ieee_float32`).
    """
    from snnbridge.progress import progress_bar

    t0 = time.perf_counter()
    compiled = compile_spec(spec, graph, dtype, semantics, device)
    if isinstance(compiled, RunOutcome):
        return compiled
    dt_ = compiled[1]
    parts = []
    chunks = _chunks(x.shape[1], batch_size)
    for sl in progress_bar(chunks, desc=f"  {spec.name}", unit="batch", progress=progress and len(chunks) > 1,
                           leave=False):
        rec, _, error = run_batch(compiled, x[:, sl], device, spec)
        if error:
            return RunOutcome(spec, "error", reason=error, dtype=dt_, runtime_s=time.perf_counter() - t0)
        parts.append(rec)
    rec = parts[0] if len(parts) == 1 else Recording.concat(parts)
    return RunOutcome(spec, "ok", rec, runtime_s=time.perf_counter() - t0, dtype=dt_)


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    text = f"{type(e).__name__}: {msg[0] if msg else ''}".rstrip(": ")
    if not isinstance(e, SnnBridgeError):
        tb = traceback.extract_tb(e.__traceback__)
        if tb:
            last = tb[-1]
            text += f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
    return text[:500]
