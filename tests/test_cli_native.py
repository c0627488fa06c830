"""``snnbridge from-native``: a user's snnTorch/Norse model file → a checked .nir file; bad models exit 2 by name."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import nir
import pytest
import torch

pytest.importorskip("snntorch")

MODEL_PY = textwrap.dedent('''
    import torch
    from torch import nn
    import snntorch as snn

    def mlp():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(20, 16), snn.Leaky(beta=0.9, init_hidden=True),
                            nn.Linear(16, 4), snn.Leaky(beta=0.8, init_hidden=True, output=True))
        with torch.no_grad():
            net[0].weight.mul_(4.0)
            net[2].weight.mul_(4.0)
        return net

    def with_lstm():
        return nn.Sequential(nn.Linear(20, 8), snn.Leaky(beta=0.9, init_hidden=True), nn.LSTM(8, 8))

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(20, 8)
            self.b = nn.Linear(20, 8)
            self.lif = snn.Leaky(beta=0.9, init_hidden=True)

        def forward(self, x):
            return self.lif(self.a(x) + self.b(x))

    def nan_weights():
        net = mlp()
        with torch.no_grad():
            net[2].weight[0, 0] = float("nan")
        return net

    def norse_mlp():
        import norse.torch as norse
        torch.manual_seed(1)
        return norse.SequentialState(nn.Linear(20, 10), norse.LIFBoxCell())
''')


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """In a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "snnbridge.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def _main(capsys, *args: str) -> subprocess.CompletedProcess:
    """In this process (faster): the same entry point and error boundary."""
    from snnbridge.cli import main

    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    p = tmp_path / "my_models.py"
    p.write_text(MODEL_PY)
    return p


def test_from_native_writes_a_checked_graph(model_file, tmp_path, capsys):
    out = tmp_path / "mlp.nir"
    r = _main(capsys, "from-native", f"{model_file}:mlp", "--input-shape", "20", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "reproduces the original snntorch module spike for spike" in " ".join(r.stdout.split())
    g = nir.read(out, type_check=True)
    assert {"input", "output"} <= set(g.nodes)
    # the file is not replaced without --overwrite
    again = _main(capsys, "from-native", f"{model_file}:mlp", "--input-shape", "20", "-o", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_weights_are_loaded_without_running_code(model_file, tmp_path, capsys):
    sys.path.insert(0, str(tmp_path))
    try:
        import my_models  # noqa: PLC0415 - the user's file written by the fixture

        net = my_models.mlp()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_models", None)
    with torch.no_grad():
        net[0].weight.mul_(0.5)
    good = tmp_path / "w.pt"
    torch.save(net.state_dict(), good)
    out = tmp_path / "w.nir"
    r = _cli("from-native", f"{model_file}:mlp", "--input-shape", "20", "--weights", str(good), "-o", str(out),
             "--check-samples", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    g = nir.read(out)
    w = [n for n in g.nodes.values() if isinstance(n, (nir.Affine, nir.Linear))][0].weight
    assert torch.allclose(torch.as_tensor(w).float(), net[0].weight.detach())

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.write_text, (marker, "x"))

    evil = tmp_path / "evil.pt"
    torch.save({"0.weight": Evil()}, evil)
    r = _main(capsys, "from-native", f"{model_file}:mlp", "--input-shape", "20", "--weights", str(evil), "-o",
              str(tmp_path / "e.nir"))
    assert r.returncode == 2 and not marker.exists() and not (tmp_path / "e.nir").exists()
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("factory,shape,needle", [
    ("with_lstm", "20", "LSTM"),
    ("Branchy", "20", "chain"),
    ("mlp", "21", "input"),
    ("nan_weights", "20", "NaN"),
])
def test_bad_models_exit_2_naming_the_layer(model_file, tmp_path, factory, shape, needle, capsys):
    out = tmp_path / f"{factory}.nir"
    r = _main(capsys, "from-native", f"{model_file}:{factory}", "--input-shape", shape, "-o", str(out))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle.lower() in r.stderr.lower() and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1
    assert not out.exists()


def test_norse_models_import_too(model_file, tmp_path, capsys):
    pytest.importorskip("norse")
    out = tmp_path / "n.nir"
    r = _main(capsys, "from-native", f"{model_file}:norse_mlp", "--input-shape", "20", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert nir.read(out, type_check=True) is not None
