"""Classes 4-5 — resource limits decided before allocation, size arguments, and the one CLI error boundary."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import prepare
from snnbridge.bridge.limits import (
    ResourceLimitError,
    get_memory_budget,
    memory_budget,
    parse_size,
    run_bytes,
    set_memory_budget,
)
from tests.hostile.conftest import clean, cli, examples, max_rss_mib, one_line_error


def _delay_graph(delay: float, n: int = 4) -> nir.NIRGraph:
    nodes = {"input": nir.Input(input_type={"input": np.array([n])}),
             "d": nir.Delay(delay=np.full(n, delay)),
             "output": nir.Output(output_type={"output": np.array([n])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "d"), ("d", "output")],
                        metadata={"dt": 1e-3})


def test_budget_parsing_and_overrides(monkeypatch):
    assert parse_size("4GiB") == 4 * 1024 ** 3 and parse_size("512MB") == 512e6 and parse_size("0") == float("inf")
    monkeypatch.setenv("SNNBRIDGE_MEMORY_BUDGET", "3GiB")
    assert get_memory_budget() == 3 * 1024 ** 3
    with memory_budget("1MiB"):
        assert get_memory_budget() == 1024 ** 2
    set_memory_budget("5GiB")
    assert get_memory_budget() == 5 * 1024 ** 3
    set_memory_budget(None)
    monkeypatch.setenv("SNNBRIDGE_MEMORY_BUDGET", "lots")
    with pytest.raises(ResourceLimitError, match="SNNBRIDGE_MEMORY_BUDGET"):
        get_memory_budget()


def test_huge_delay_refused_before_allocation():
    g = _delay_graph(1e6)  # 1e9 steps of buffer
    rss0 = max_rss_mib()
    with pytest.raises(ResourceLimitError, match="node 'd'"):
        ReferenceExecutor(g).run(torch.zeros(3, 2, 4, dtype=torch.float64))
    assert max_rss_mib() - rss0 < 256


def test_conv_declaring_huge_input_refused_by_numbers():
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 40000, 40000])}),
             "c": nir.Conv2d(input_shape=(40000, 40000), weight=np.zeros((2, 1, 3, 3)), stride=1, padding=0,
                             dilation=1, groups=1, bias=np.zeros(2)),
             "output": nir.Output(output_type={"output": np.array([2, 39998, 39998])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "c"), ("c", "output")], type_check=False)
    rss0 = max_rss_mib()
    with pytest.raises(ResourceLimitError, match="node 'c'.*GiB"):
        prepare(g)
    assert max_rss_mib() - rss0 < 256


def test_absurd_T_refused():
    g = _delay_graph(1e-3, n=1000)
    x = torch.zeros(1, 1, 1000).expand(10 ** 6, 1000, 1000)  # a view: no memory until the run would copy it
    with pytest.raises(ResourceLimitError, match="T=1000000"):
        ReferenceExecutor(g).run(x)


def test_random_runs_refused_or_within_budget():
    """Random delays, widths, T and B under a small budget: refused with the numbers, or run — never more."""

    @examples(150)
    @given(delay=st.floats(0, 5e-2), n=st.integers(1, 64), T=st.integers(1, 64), B=st.integers(1, 16))
    def check(delay, n, T, B):
        g = _delay_graph(delay, n)
        with memory_budget("256KiB"):
            need, _ = run_bytes(prepare(g), T, B, 8)
            rec = clean(lambda: ReferenceExecutor(g).run(torch.zeros(T, B, n, dtype=torch.float64)))
        assert (rec is None) == (need > 256 * 1024)

    check()


@pytest.mark.parametrize("args", [
    ("reproduce", "--workers", 0, "--preset", "test", "--out", "{tmp}/o"),
    ("reproduce", "--workers", -3, "--preset", "test", "--out", "{tmp}/o"),
    ("conform", "{model}", "-b", "reference", "--samples", -1),
    ("conform", "{model}", "-b", "reference", "--T", 0),
    ("conform", "{model}", "-b", "reference", "--T", 10 ** 12),
    ("conform", "{model}", "-b", "reference", "--batch-size", -2),
    ("costs", "Input-10", "--input-shape", "4", "--T", -1),
    ("export", "Input-10", "--input-shape", "0,4", "-o", "{tmp}/m.nir"),
    ("export", "Input-10", "--input-shape", "100000,100000,100", "-o", "{tmp}/m.nir"),
    ("data", "emulate", "--out", "{tmp}/e", "--limit", 0),
])
def test_size_arguments_refused(args, tmp_path):
    from snnbridge.models import Network
    from snnbridge.models.export import export

    model = export(Network(structure="Input-8-3", input_shape=(1, 4, 4)), tmp_path / "m0.nir")
    args = [str(a).format(tmp=tmp_path, model=model) for a in args]
    one_line_error(cli(*args))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0.nir"]


def _report(tmp_path, name: str) -> str:
    """A valid report.json whose backend is called ``name`` (made by a real conform run, then edited)."""
    from snnbridge.models import Network
    from snnbridge.models.export import export

    torch.manual_seed(0)
    model = export(Network(structure="Input-8-3", input_shape=(1, 4, 4)), tmp_path / "m.nir")
    r = cli("conform", model, "-b", "reference", "--samples", 2, "--T", 2, "--no-progress", "--report",
            tmp_path / "rep")
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    doc["backends"][0]["name"] = name
    p = tmp_path / "evil.json"
    p.write_text(json.dumps(doc))
    return str(p)


def test_markup_and_escape_sequences_from_a_report_are_neutralised(tmp_path):
    evil = "[bold red]x[/]\x1b[2J\x1b]0;pwned\x07\x1b[31mred"
    p = _report(tmp_path, evil)
    for extra in ((), ("--markdown",)):
        r = cli("compare", p, p, *extra)
        assert r.returncode == 0, r.stderr
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout
        assert "[bold" in r.stdout  # the markup is shown literally, not interpreted
    one_line_error(cli("conform", tmp_path / "m.nir", "-b", "[bold]nosuch[/]\x1b[2J", "--samples", 2))


def test_unexpected_error_is_one_line_with_bug_hint_and_debug_shows_traceback(monkeypatch):
    def boom(*a, **k):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr("snnbridge.validation.report.load_report", boom)
    r = cli("compare", "a", "b")
    assert r.returncode == 3 and "Traceback" not in r.stderr and "bug" in r.stderr and "--debug" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cli("--debug", "compare", "a", "b")
    assert r.returncode == 3 and "Traceback" in r.stderr and "planted" in r.stderr
