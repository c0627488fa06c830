"""Every use of a Brian2 private (or of the layout of Brian2's generated code) in one place, version-guarded.

The Brian2 backend is faster with a few changes to Brian2's behaviour that no public API offers:

* :func:`reuse_code_objects` — later runs of a network skip code generation (``CodeRunner.create_code_objects``
  replaced by a no-op once the objects exist; Brian2 regenerates every code object on each ``run``);
* :func:`skip_gc_collect` — ``Network.run`` starts with ``gc.collect()`` (``brian2.core.network.gc``), tens of
  ms with torch loaded;
* :func:`write_only` — the ``cpp_standalone`` binary writes only the monitors' arrays at exit (a rewrite of
  ``_write_arrays()`` in the generated ``objects.cpp``);
* :func:`skip_static_load` — the ``cpp_standalone`` binary does not read the build-time values of the TimedArrays
  every run sets as run arguments (a rewrite of ``_load_arrays()`` in ``objects.cpp``);
* :func:`spike_space` — the ``_spikespace`` array of a group, which a native network carries from one run to
  the next (Brian2 clears it at the end of a run, which would cut recurrent edges at run boundaries);
* :func:`store_without` — ``Network.store`` without the arrays no run changes (synaptic indices, constant weights:
  ``Group._full_state`` replaced for the call), half the memory of a stored network and no copy per ``restore``.

Each was checked against the Brian2 versions in :data:`CHECKED`.  On another version the speed-ups fall back
to Brian2's public behaviour (slower, same results) and :func:`spike_space`, which results depend on, raises
:class:`Brian2VersionError` naming the installed and the checked versions.  ``SNNBRIDGE_BRIAN2_PATCHES=0``
turns every patch off (the public fallbacks) on any version.
"""

from __future__ import annotations

import contextlib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator

CHECKED = ("2.9",)
"""Brian2 ``major.minor`` versions these patches were read against (the private names they touch exist there)."""

ENV_VAR = "SNNBRIDGE_BRIAN2_PATCHES"


class Brian2VersionError(RuntimeError):
    """A feature needs a Brian2 private that was not checked against the installed Brian2 version."""


@lru_cache(maxsize=1)
def brian2_version() -> str:
    """The installed Brian2 version (distribution metadata; ``"0"`` when Brian2 is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("brian2")
    except PackageNotFoundError:
        return "0"


def is_checked(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed one) is a ``major.minor`` listed in :data:`CHECKED`."""
    v = brian2_version() if version is None else version
    return ".".join(v.split(".")[:2]) in CHECKED


def enabled(version: str | None = None) -> bool:
    """Patches apply: the version is checked and ``SNNBRIDGE_BRIAN2_PATCHES`` is not ``0``/``off``/``false``."""
    if os.environ.get(ENV_VAR, "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    return is_checked(version)


def require(feature: str, version: str | None = None) -> None:
    """Raise :class:`Brian2VersionError` unless ``feature``'s private access was checked on ``version``."""
    v = brian2_version() if version is None else version
    if not is_checked(v):
        raise Brian2VersionError(
            f"{feature} uses a Brian2 private that snnbridge checked on Brian2 {', '.join(CHECKED)}.x only; "
            f"installed: Brian2 {v}. Install a checked version (pip install 'brian2=={CHECKED[-1]}.*') or run "
            "without this feature.")


def reuse_code_objects(net) -> bool:
    """Make later runs of ``net`` skip Brian2's code generation; ``False`` (nothing done) when patches are off.

    The generated code depends only on the network's structure, which never changes after building; the data
    it touches (state variables, monitors, TimedArrays filled in place) is looked up when the code runs.  Each
    object's ``before_run`` still runs (spike queues re-initialised, monitors resized).
    """
    if not enabled():
        return False
    from brian2.groups.group import CodeRunner

    for obj in net.sorted_objects:
        if isinstance(obj, CodeRunner) and obj.code_objects:
            obj.create_code_objects = lambda run_namespace: None
    return True


@contextlib.contextmanager
def skip_gc_collect() -> Iterator[None]:
    """Within the block, ``Network.run`` skips its initial full ``gc.collect()`` (when patches are on)."""
    if not enabled():
        yield
        return
    from brian2.core import network

    real = network.gc

    class _NoCollect:
        def __getattr__(self, item):
            return getattr(real, item)

        @staticmethod
        def collect(*args, **kwargs) -> int:
            return 0

    network.gc = _NoCollect()
    try:
        yield
    finally:
        network.gc = real


def store_without(net, name: str, skip: dict[object, set[str]]) -> bool:
    """``net.store(name)`` leaving out the variables ``skip[obj]`` of each object ``obj`` (``False``: patches are off,
    everything was stored).

    For arrays no run changes — a simulation network's synaptic indices and constant weights — the stored copy is
    pure cost: as many bytes again per synapse, and a copy back at every ``restore``.  ``Network.restore`` sets only
    the variables a state holds, so the left-out ones keep their values.  Replaces ``Group._full_state`` of those
    objects (an ``ArrayVariable`` owned by the object, copied with its size, as Brian2 2.9 does) during the call.
    """
    if not enabled():
        net.store(name)
        return False
    from brian2.core.variables import ArrayVariable
    from brian2.groups.group import Group

    def lean(obj, names: set[str]):
        def _full_state():
            state = {}
            for var in obj.variables.values():
                if (isinstance(var, ArrayVariable) and var.owner is not None and var.owner.name == obj.name
                        and var.name not in names):
                    state[var.name] = (var.get_value().copy(), var.size)
            return state
        return _full_state

    patched = [obj for obj in skip if type(obj)._full_state is Group._full_state]  # e.g. Synapses (not pathways)
    for obj in patched:
        obj._full_state = lean(obj, skip[obj])
    try:
        net.store(name)
    finally:
        for obj in patched:
            del obj._full_state
    return True


_RESULT_FILE = re.compile(r'results_dir \+ "([^"]+)"')


def write_only(objects_cpp: Path, keep: list[str]) -> bool:
    """Make a standalone binary write only the arrays in ``keep`` at exit (Brian2 writes every array).

    Every other ``results_dir + "<file>"`` in ``_write_arrays()`` of the generated ``objects.cpp`` is pointed at
    ``/dev/null``.  Returns ``False`` (file untouched: every array is written, slower) when patches are off or
    the generated code does not have the expected shape.
    """
    if not enabled():
        return False
    src = objects_cpp.read_text()
    start = src.find("void _write_arrays()")
    end = src.find("\nvoid ", start + 1) if start >= 0 else -1
    if start < 0 or end < 0 or not _RESULT_FILE.search(src[start:end]):
        return False
    keep_set = set(keep) | {"last_run_info.txt", "profiling_info.txt"}

    def sub(m: re.Match) -> str:
        return m.group(0) if m.group(1) in keep_set else 'std::string("/dev/null")'

    objects_cpp.write_text(src[:start] + _RESULT_FILE.sub(sub, src[start:end]) + src[end:])
    return True


def skip_static_load(objects_cpp: Path, names: list[str]) -> bool:
    """Make a standalone binary skip reading the static files of the arrays ``names`` at start-up (TimedArray values
    that every run passes as run arguments: Brian2 reads the build-time zeros first, as large as the inputs).

    Comments out ``f<name>.read(...)`` in ``_load_arrays()`` of the generated ``objects.cpp`` (the array is still
    allocated; the run argument fills it).  Returns ``False`` (file untouched: both are read, slower) when patches
    are off or the generated code does not have the expected shape.
    """
    if not enabled() or not names:
        return False
    src = objects_cpp.read_text()
    start = src.find("void _load_arrays()")
    end = src.find("\nvoid ", start + 1) if start >= 0 else -1
    if start < 0 or end < 0:
        return False
    body = src[start:end]
    for name in names:
        pattern = re.compile(rf"^(\s*)(f{re.escape(name)}\.read\(.*\);)$", re.MULTILINE)
        if len(pattern.findall(body)) != 1:
            return False
        body = pattern.sub(r"\1// snnbridge: set by a run argument at every run  \2", body)
    objects_cpp.write_text(src[:start] + body + src[end:])
    return True


def spike_space(group):
    """The ``_spikespace`` array of a runtime ``NeuronGroup`` (this step's spikes and their count), writable.

    Raises :class:`Brian2VersionError` on a Brian2 version that was not checked (results depend on it).
    """
    require("carrying spikes across runs of a native Brian2 network")
    return group.variables["_spikespace"].get_value()


def has_spike_space(group) -> bool:
    """Whether ``group`` has a spike space (a group with a threshold)."""
    return "_spikespace" in group.variables
