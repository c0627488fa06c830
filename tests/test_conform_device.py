"""``device`` through conform(), backend specs, the CLI and ``Backend.compile``: GPU where CUDA is, one clear error
where it is not or where a backend cannot run on a GPU."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnbridge import backends
from snnbridge.backends.base import Backend, Simulation, devices_of, resolve_device
from snnbridge.cli import main
from snnbridge.errors import SnnBridgeError, UnsupportedNodeError
from snnbridge.validation import conform
from snnbridge.validation.runners import check_devices, parse_spec, parse_specs

CUDA = torch.cuda.is_available()
no_cuda = pytest.mark.skipif(CUDA, reason="checks the error on a machine without CUDA")
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


def mlp(seed: int = 0) -> nir.NIRGraph:
    """input(12) → fc1 → lif1(16) → fc2 → lif2(4) → output; weights that make both layers fire."""
    r = np.random.default_rng(seed)

    def lif(n):
        return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                       v_reset=np.zeros(n))

    nodes = {"input": nir.Input(input_type={"input": np.array([12])}),
             "fc1": nir.Linear(weight=r.normal(0.25, 0.5, (16, 12))), "lif1": lif(16),
             "fc2": nir.Affine(weight=r.normal(0.3, 0.6, (4, 16)), bias=r.normal(0, 0.05, 4)),
             "lif2": lif(4), "output": nir.Output(output_type={"output": np.array([4])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3, "reset": "zero", "integration": "euler"},
                        type_check=False)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    """``[T=20, B=9, 12]`` Bernoulli spikes."""
    return (torch.rand(20, 9, 12, generator=torch.Generator().manual_seed(1)) < 0.35).double()


def _timeless(d):
    """The JSON report without wall-clock fields (timings, creation time)."""
    if isinstance(d, dict):
        return {k: _timeless(v) for k, v in d.items() if k not in ("runtime_s", "created")}
    if isinstance(d, list):
        return [_timeless(v) for v in d]
    return d


def test_spec_device_option():
    s = parse_spec("snntorch@device=cuda+float32")
    assert s.backend == "snntorch" and s.overrides == {"device": "cuda", "dtype": torch.float32}
    assert s.device() == "cuda" and parse_spec("norse").device("cuda:1") == "cuda:1"
    assert parse_spec("norse@device=cpu").device("cuda") == "cpu"  # the spec's own device wins
    with pytest.raises(SnnBridgeError, match="not a device name"):
        parse_spec("norse@device=warp-drive")


def test_which_backends_run_on_a_gpu():
    for name in ("reference", "snntorch", "norse", "spikingjelly", "rockpool", "sinabs"):
        assert devices_of(name) == ("cpu", "cuda"), name
    for name in ("brian2", "snntorch-upstream", "norse-upstream"):
        assert devices_of(name) == ("cpu",), name


def test_cpu_only_backend_refuses_a_gpu_by_name_not_with_a_typeerror():
    """The refusal is generic (Backend), checked before CUDA's availability, for a direct compile and in conform."""
    with pytest.raises(SnnBridgeError, match="backend 'brian2' runs on cpu only, not on 'cuda'"):
        check_devices(parse_specs("reference,brian2"), "cuda")
    with pytest.raises(SnnBridgeError, match="backend 'snntorch-upstream' runs on cpu only"):
        conform(mlp(), torch.zeros(3, 2, 12), ["snntorch-upstream@device=cuda"])
    check_devices(parse_specs("brian2@device=cpu"), None)  # cpu is always fine
    be = backends.get("snntorch-upstream")
    with pytest.raises(UnsupportedNodeError, match="field 'device'.*snntorch-upstream"):
        be.compile(mlp(), device="cuda")
    assert isinstance(be.compile(mlp(), device="cpu"), Simulation)


def test_a_new_backend_gets_the_device_contract():
    class CpuOnly(Backend):
        name = "cpu-only"
        supported_nodes = frozenset({"Input", "Output", "Linear"})

        def compile(self, graph, dt=None, reset=None, integration=None, dtype=torch.float64, **options):
            return ("compiled", options)

    class Gpu(Backend):
        name = "gpu"

        def compile(self, graph, dt=None, reset=None, integration=None, dtype=torch.float64, device="cpu"):
            return device

    assert CpuOnly.devices == ("cpu",) and Gpu.devices == ("cpu", "cuda")
    assert CpuOnly().compile("g", device="cpu") == ("compiled", {})  # accepted and dropped
    with pytest.raises(UnsupportedNodeError, match="backend 'cpu-only' runs on cpu only"):
        CpuOnly().compile("g", device="cuda:0")


@no_cuda
def test_without_cuda_one_clear_error():
    with pytest.raises(SnnBridgeError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(SnnBridgeError, match="CUDA is not available"):
        conform(mlp(), torch.zeros(3, 2, 12), ["snntorch@device=cuda"])
    with pytest.raises(SnnBridgeError, match="CUDA is not available"):
        conform(mlp(), torch.zeros(3, 2, 12), ["reference", "norse"], device="cuda")


def test_cli_device(tmp_path, capsys):
    from snnbridge.bridge.io import write_graph

    path = tmp_path / "m.nir"
    write_graph(path, mlp())
    npz = tmp_path / "x.npz"
    np.savez(npz, x=(np.random.default_rng(0).random((4, 3, 12)) < 0.4).astype(np.float32))
    fast = ["--data", str(npz), "--samples", "3", "--no-progress"]
    assert main(["conform", str(path), "-b", "reference,brian2", "--device", "cuda", *fast]) == 2
    assert "backend 'brian2' runs on cpu only" in capsys.readouterr().err.replace("\n", " ")
    assert main(["conform", str(path), "-b", "reference", "--device", "tpu", *fast]) == 2
    assert main(["conform", str(path), "-b", "reference", "--device", "cpu", *fast]) == 0
    if not CUDA:
        assert main(["conform", str(path), "-b", "reference", "--device", "cuda", *fast]) == 2
        assert "CUDA is not available" in capsys.readouterr().err.replace("\n", " ")


def test_device_cpu_is_the_default(x):
    a = conform(mlp(), x, ["reference", "snntorch"]).to_dict()
    b = conform(mlp(), x, ["reference", "snntorch"], device="cpu").to_dict()
    assert _timeless(a) == _timeless(b)
    assert "device" not in a["backends"][0]  # cpu runs keep today's report unchanged


@needs_cuda
@pytest.mark.parametrize("profile", ["exact", "float32"])
def test_backends_on_cuda_conform(x, profile):
    specs = ["reference@device=cuda", "snntorch@device=cuda", "norse@device=cuda"]
    r = conform(mlp(), x, specs, profile=profile, batch_size=4)
    for s in specs:
        b = r.backends[s]
        assert b.device == "cuda" and b.status == "pass", (s, b.reason, b.failures)
        assert all(t.device.type == "cpu" for t in b.recording.outputs.values())  # back on the CPU
    assert r.to_dict()["backends"][0]["device"] == "cuda"
    assert r.yardstick.recording.outputs["lif1"].device.type == "cpu"


@needs_cuda
def test_global_device_and_per_spec_override(x):
    r = conform(mlp(), x, ["snntorch", "norse@device=cpu"], device="cuda")
    assert r.backends["snntorch"].device == "cuda" and r.backends["norse@device=cpu"].device == "cpu"
    assert r.passed
