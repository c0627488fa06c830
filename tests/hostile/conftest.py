"""Hostile-input suite: hypothesis profiles and the contract every hostile input must meet.

Profiles: ``default`` (the suite run: > 2,000 corruptions in total, under 2 minutes on 2 cores, derandomized so
a run is reproducible) and ``long`` (``pytest tests/hostile --hypothesis-profile=long``: 10x the examples,
random seeds).  The contract (:func:`clean`): a hostile input gives a :class:`SnnBridgeError` or a correct run —
never another exception, never memory over the budget.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from snnbridge.errors import SnnBridgeError

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                      HealthCheck.data_too_large])
settings.register_profile("default", max_examples=100, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("long", max_examples=1000, **_COMMON)
settings.load_profile(settings._current_profile or "default")  # re-activate ours; keep --hypothesis-profile

SCALE = {"default": 1, "long": 10}


def examples(n: int) -> settings:
    """``@examples(n)``: n examples in the default profile, 10 n in ``long``."""
    return settings(max_examples=n * SCALE.get(settings._current_profile, 1))


ROOT = Path(__file__).resolve().parents[2]


def clean(fn, *args, **kwargs):
    """Call ``fn``: its result, or ``None`` when it refused with a :class:`SnnBridgeError` (the contract);
    any other exception propagates and fails the test."""
    try:
        return fn(*args, **kwargs)
    except SnnBridgeError as e:
        msg = str(e)
        assert msg and "Traceback" not in msg
        return None


def max_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Result:
    """What a CLI run gave: ``returncode``, ``stdout``, ``stderr`` (like :class:`subprocess.CompletedProcess`)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(*args) -> Result:
    """``snnbridge ARGS`` in this process through the real entry point (:func:`snnbridge.cli.main`), capturing
    stdout/stderr at the file-descriptor level (no subprocess: torch imports once)."""
    import io
    import os
    import tempfile

    from snnbridge.cli import main

    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    saved = os.dup(1), os.dup(2)
    so, se = sys.stdout, sys.stderr
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), write_through=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(2), "wb"), write_through=True)
        rc = main([str(a) for a in args])
    finally:
        for s in (sys.stdout, sys.stderr):
            s.flush()
            s.close()
        sys.stdout, sys.stderr = so, se
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    out.seek(0)
    err.seek(0)
    return Result(rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def cli_process(*args, cwd=None, timeout=120, env=None) -> subprocess.CompletedProcess:
    """``snnbridge ARGS`` in a fresh process (for signals and hangs)."""
    return subprocess.run([sys.executable, "-m", "snnbridge.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def one_line_error(r: subprocess.CompletedProcess, code: int = 2) -> None:
    """The CLI contract for bad input: exit ``code``, one ``error:`` line on stderr, no traceback."""
    assert r.returncode == code, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr and "error:" in r.stderr, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1, r.stderr


@pytest.fixture
def real_graphs():
    """The four real graphs of ../shared/nir-graphs (skips when absent)."""
    from tests.conftest import NIR_GRAPHS

    files = sorted(NIR_GRAPHS.glob("*.nir")) if NIR_GRAPHS.is_dir() else []
    if not files:
        pytest.skip(f"{NIR_GRAPHS} not available (needs ../shared)")
    return files
