"""A pytest helper: ``assert_conformant(graph, inputs, backends=..., profile=...)`` with a readable diff.

Example::

    from snnbridge.validation import assert_conformant

    def test_my_model_on_norse():
        assert_conformant("model.nir", spikes, backends=["norse"], profile="exact")
"""

from __future__ import annotations

from snnbridge.validation.conformance import ConformanceResult, Profile, conform


def describe_failures(result: ConformanceResult, limit: int = 8) -> str:
    """A multi-line diff: per failing backend the first divergence and the nodes the profile rejects."""
    lines = [f"backends do not conform under profile '{result.profile.name}' "
             f"({result.meta['samples']} samples, T={result.meta['steps']}):"]
    for b in result.backends.values():
        if not b.counted or b.passed:
            continue
        lines.append(f"  {b.name} [{b.verdict}]")
        if b.status == "error":
            lines.append(f"    {b.reason}")
            continue
        fd = b.first_divergence
        if b.first_divergent_node:
            n = b.nodes[b.first_divergent_node]
            where = (f" at step {fd.step}, sample {fd.sample}, neuron {fd.neuron}"
                     f"{' ' + str(fd.index) if len(fd.index) > 1 else ''} "
                     f"(reference {fd.ref:g}, got {fd.got:g})") if fd else ""
            lines.append(f"    first divergence: node '{b.first_divergent_node}'{where}")
            lines.append(f"    why: {n.explanation.text}")
        for f in b.failures[:limit]:
            lines.append(f"    - {f}")
        if len(b.failures) > limit:
            lines.append(f"    ... and {len(b.failures) - limit} more")
    return "\n".join(lines)


def assert_conformant(graph, inputs, backends=("reference",), profile: str | Profile = "exact",
                      **kwargs) -> ConformanceResult:
    """Run :func:`~snnbridge.validation.conform` and raise ``AssertionError`` with a readable diff if a
    counted backend fails.

    A backend name that is not registered fails at once (a typo must never pass).  A registered backend whose
    simulator is not installed calls ``pytest.skip`` naming the pip command that installs it (outside pytest:
    ``AssertionError``), or fails with ``require_all=True``.  It never passes silently.  Returns the result.
    """
    from snnbridge import backends as registry
    from snnbridge.validation.runners import parse_specs

    require_all = kwargs.pop("require_all", False)
    known = set(registry.names())
    for spec in parse_specs(backends):
        if spec.runner is None and spec.backend not in known:
            raise AssertionError(f"backend '{spec.name}' is unavailable: unknown backend '{spec.backend}' "
                                 f"(registered: {', '.join(sorted(known))})")
    result = conform(graph, inputs, backends=backends, profile=profile, **kwargs)
    missing = [b for b in result.backends.values() if b.status == "unavailable" and not b.audit]
    if missing:
        why = "; ".join(f"{b.name}: {b.reason}" for b in missing)
        if require_all:
            raise AssertionError("backends unavailable: " + why)
        _skip("backends unavailable: " + why)
    if not result.passed:
        raise AssertionError(describe_failures(result))
    return result


def _skip(reason: str) -> None:
    try:
        import pytest
    except ImportError:  # pragma: no cover - outside a test run
        raise AssertionError(reason) from None
    pytest.skip(reason)
