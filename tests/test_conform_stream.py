"""Conformance at dataset scale: streamed batches give exactly the unstreamed result, inputs are encoded batch by
batch, and a check prepares its graph once."""

from __future__ import annotations

import math

import pytest
import torch

from snnbridge.validation import conform
from snnbridge.validation.sources import DataRequest, EncodedImages, resolve
from snnbridge.validation.stream import ExactSum, TensorSource

from .test_validation_conformance import mlp  # noqa: E402 - the same small graphs


def timeless(d):
    """A JSON report without wall-clock fields (run times, creation time)."""
    if isinstance(d, dict):
        return {k: timeless(v) for k, v in d.items() if k not in ("runtime_s", "created")}
    if isinstance(d, list):
        return [timeless(v) for v in d]
    return d


def planted(graph, xb, dtype, **semantics):
    """A custom runner: the reference with one hidden neuron's spikes dropped after step 10 (sample-local)."""
    from snnbridge.bridge.executor import ReferenceExecutor

    rec = ReferenceExecutor(graph, dtype=dtype, **semantics).run(xb)
    rec.outputs["lif1"] = rec.outputs["lif1"].clone()
    rec.outputs["lif1"][10:, :, 3] = False
    return rec


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(3)
    return (torch.rand(25, 15, 12, generator=g) < 0.35).double(), torch.arange(15) % 4


@pytest.mark.parametrize("profile", ["exact", "float32"])
def test_streamed_equals_unstreamed(data, profile):
    """The JSON result (timings aside) is identical for batches of 1, 7 and all 15 samples — passing backends,
    a planted reset divergence (explained on re-run), a float32 run, and a custom runner."""
    from snnbridge.validation import BackendSpec

    x, y = data
    specs = ["reference", "snntorch", "norse", "reference@reset=subtract", "reference@float32",
             BackendSpec("planted", runner=planted)]
    docs = {bs: timeless(conform(mlp(), x, specs, profile=profile, labels=y, batch_size=bs).to_dict())
            for bs in (None, 1, 7)}
    assert docs[1] == docs[None] and docs[7] == docs[None]
    b = {d["name"]: d for d in docs[None]["backends"]}
    assert b["reference@reset=subtract"]["classification"] == "reset"
    assert b["planted"]["first_divergent_node"] == "lif1" and b["snntorch"]["status"] == "pass"


def test_first_batch_kept_for_figures(data, tmp_path):
    x, y = data
    r = conform(mlp(), x, ["reference", "reference@reset=subtract"], labels=y, batch_size=4)
    assert r.meta["samples"] == 15 and r.inputs.shape[1] == 4
    assert r.yardstick.recording.batch_size == 4 and r.backends["reference"].recording.batch_size == 4
    assert len(r.yardstick.predictions) == 15
    pytest.importorskip("matplotlib")
    pytest.importorskip("jsonschema")  # the report validates its JSON (the GPU machine has neither)
    from snnbridge.validation.report import write_report

    paths = write_report(r, tmp_path / "rep")
    assert paths.html.exists()
    # a divergence that first shows after the kept batch: the figures fall back to a kept sample
    from snnbridge.validation import BackendSpec

    x2 = x.clone()
    x2[:, :4] = 0  # silent first batch: nothing for the planted runner to drop there
    r2 = conform(mlp(), x2, ["reference", BackendSpec("planted", runner=planted)], batch_size=4)
    fd = r2.backends["planted"].first_divergence
    assert fd is not None and fd.sample >= 4
    assert write_report(r2, tmp_path / "rep2").html.exists()


def test_source_batches_do_not_depend_on_the_split():
    images = torch.rand(9, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    src = EncodedImages(images, T=6, seed=2)
    whole = src.batch(0, 9)
    assert whole.shape == (6, 9, 1, 4, 4) and set(whole.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(torch.cat([src.batch(0, 4), src.batch(4, 5), src.batch(5, 9)], 1), whole)
    assert torch.equal(src.shard(3, 7).batch(4, 6), whole[:, 4:6])
    d = resolve("digits", DataRequest((1, 8, 8), samples=5, T=4))
    assert d.samples == 5 and d.x.shape == (4, 5, 1, 8, 8) and torch.equal(d.source.batch(2, 4), d.x[:, 2:4])


def test_exact_sum_is_order_free():
    vals = [1e16, 1.0, -1e16, 1e-3, 3.3, 0.1] * 50
    a, b, c = ExactSum(), ExactSum(), ExactSum()
    a.add_many(vals)
    b.add_many(reversed(vals))
    c.add_many(vals[:100])
    rest = ExactSum()
    rest.add_many(vals[100:])
    c.merge(rest)
    assert a.value() == b.value() == c.value() == math.fsum(vals)  # exact, unlike sum() (220.05 vs 199.4)


def test_graph_prepared_once(monkeypatch, data):
    """One prepare per check (every backend gets the prepared FlatGraph); counted at every module that calls it."""
    import snnbridge.backends.base as base
    import snnbridge.bridge.executor as executor
    import snnbridge.bridge.graph as graph_mod
    import snnbridge.validation.conformance as conformance

    calls = []
    original = graph_mod.prepare

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    for mod in (graph_mod, conformance, base, executor):
        monkeypatch.setattr(mod, "prepare", counting)
    x, y = data
    r = conform(mlp(), TensorSource(x), ["reference", "snntorch", "norse", "snntorch@device=cpu"], labels=y,
                batch_size=5)
    assert r.passed and len(calls) == 1
    calls.clear()
    conform(mlp(), x, ["reference", "reference@reset=subtract"], labels=y)
    assert len(calls) >= 2  # a different semantics is another graph (and explaining it re-runs reset variants)


def test_specs_with_the_same_semantics_share_one_prepared_graph(monkeypatch, data):
    """Backends whose own overrides give the same semantics compile one graph prepared once for them; the matrix
    hands conform the graph it prepared."""
    import snnbridge.backends.base as base
    import snnbridge.bridge.executor as executor
    import snnbridge.bridge.graph as graph_mod
    import snnbridge.validation.conformance as conformance

    seen = []
    original = graph_mod.prepare

    def counting(*args, **kwargs):
        seen.append(tuple(sorted(kwargs.items())))
        return original(*args, **kwargs)

    for mod in (graph_mod, conformance, base, executor):
        monkeypatch.setattr(mod, "prepare", counting)
    x, y = data
    r = conform(mlp(), x, ["reference@reset=zero", "snntorch@reset=zero", "norse"], labels=y, dt=1e-3)
    assert r.passed
    # the check's graph (dt given) and one more for reset=zero on top of it, shared by both specs
    assert sorted(seen) == sorted([(("dt", 1e-3),), (("dt", 1e-3), ("reset", "zero"))])


def test_semantics_overrides():
    from snnbridge.bridge.semantics import SemanticsOverrides

    o = SemanticsOverrides(dt=1e-3)
    assert o and o.kwargs() == {"dt": 1e-3} and not SemanticsOverrides()
    assert SemanticsOverrides.of({"reset": "zero", "dtype": "float32", "dt": None}) == SemanticsOverrides(reset="zero")
    both = o.then(SemanticsOverrides(dt=2e-3, reset="subtract"))
    assert both == SemanticsOverrides(2e-3, "subtract") and both.without_reset() == SemanticsOverrides(dt=2e-3)
    assert len({both, SemanticsOverrides(2e-3, "subtract")}) == 1  # hashable: one prepared graph per distinct value
