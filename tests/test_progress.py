"""Progress output: bars on a terminal, plain periodic lines (never a carriage return) in logs and files,
nothing with ``progress=False``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import torch

from snnbridge.progress import PlainProgress, progress_bar

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from snnbridge.cli import main; main()"]


def test_plain_lines_in_a_file():
    buf = io.StringIO()
    bar = progress_bar(range(5), desc="epoch 1/2", unit="batch", file=buf, interval=0)
    assert isinstance(bar, PlainProgress)
    for _ in bar:
        bar.set_postfix(loss=0.5)
    text = buf.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 5 and lines[-1].startswith("epoch 1/2: 5/5 batch (100%)") and "loss=0.5" in lines[-1]


def test_plain_lines_are_periodic_not_per_step():
    buf = io.StringIO()
    bar = progress_bar(total=1000, desc="cells", file=buf)  # default interval: seconds, not steps
    for _ in range(1000):
        bar.update(1)
    bar.close()
    bar.close()
    assert buf.getvalue().splitlines() == [buf.getvalue().splitlines()[-1]] and "1000/1000" in buf.getvalue()


def test_off_writes_nothing(capsys):
    for _ in progress_bar(range(3), progress=False, desc="x"):
        pass
    for _ in progress_bar(range(3), progress=True, desc="y", file=io.StringIO()):
        pass
    assert capsys.readouterr().err == ""


def test_terminal_gets_a_real_bar():
    """On a tty (a pseudo-terminal here) the bar is tqdm's, redrawn in place."""
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w") as tty:
            bar = progress_bar(range(3), desc="tty", file=tty)
            assert type(bar).__name__ == "tqdm"
            list(bar)
        out = os.read(master, 4096).decode()
    finally:
        os.close(master)
    assert "\r" in out and "tty" in out


def test_batched_backend_run_logs_plain_lines(capfd):
    """A conformance run split into batches reports progress as lines when stderr is not a terminal."""
    from snnbridge.models import Network
    from snnbridge.models.export import to_nir
    from snnbridge.validation.runners import parse_spec, run_spec

    g = to_nir(Network(structure="Input-8-4", input_shape=(1, 4, 4), decay=0.25, threshold=0.5))
    x = (torch.rand(5, 6, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    out = run_spec(parse_spec("reference"), g, x, torch.float64, {}, batch_size=2, progress=True)
    assert out.status == "ok" and out.recording.batch_size == 6
    err = capfd.readouterr().err
    assert "\r" not in err and "reference: 3/3 batch (100%)" in err


def test_cli_log_has_no_carriage_returns(tmp_path):
    """``snnbridge conform`` with progress on (the CLI default) and stdout/stderr redirected, as in a CI log."""
    nir_path = tmp_path / "m.nir"
    env = {**os.environ, "SNNBRIDGE_PROGRESS": ""}
    subprocess.run([*CLI, "export", "Input-16-10", "--input-shape", "1,8,8", "-o", str(nir_path)], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    proc = subprocess.run([*CLI, "conform", str(nir_path), "--backends", "reference,reference@reset=subtract",
                           "--data", "digits", "--samples", "6", "--batch-size", "2"], cwd=ROOT, env=env,
                          capture_output=True, timeout=300)  # bytes: text mode would turn "\r" into "\n"
    log = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert proc.returncode in (0, 1), log[-2000:]
    assert "reference@reset=subtract" in log
    assert "\r" not in log, [ln for ln in log.split("\n") if "\r" in ln][:5]
