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
    counted backend fails.  Unavailable backends are skipped unless ``require_all=True``.  Returns the result."""
    require_all = kwargs.pop("require_all", False)
    result = conform(graph, inputs, backends=backends, profile=profile, **kwargs)
    missing = [b for b in result.backends.values() if b.status == "unavailable" and not b.audit]
    if require_all and missing:
        raise AssertionError("backends unavailable: " + "; ".join(f"{b.name}: {b.reason}" for b in missing))
    if not result.passed:
        raise AssertionError(describe_failures(result))
    return result
