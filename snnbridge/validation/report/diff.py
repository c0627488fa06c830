"""What changed between two conformance reports (``report.json``): verdicts, accuracy, prediction agreement,
costs.

A *regression* is a counted backend that passed in the old report and does not pass in the new one
(``snnbridge diff`` then exits 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Change:
    """One backend across two reports (``None`` where a report lacks it or the number)."""

    name: str
    old_status: str | None
    new_status: str | None
    old_accuracy: float | None
    new_accuracy: float | None
    old_agreement: float | None
    new_agreement: float | None
    old_adds: float | None
    new_adds: float | None
    old_spikes: float | None
    new_spikes: float | None
    old_memory: float | None
    new_memory: float | None
    old_divergence: str | None
    new_divergence: str | None
    audit: bool = False

    @property
    def regressed(self) -> bool:
        """A counted backend that passed before and does not pass now."""
        return not self.audit and self.old_status == "pass" and self.new_status not in ("pass", None)

    @property
    def fixed(self) -> bool:
        """A backend that did not pass before and passes now."""
        return self.old_status not in ("pass", None) and self.new_status == "pass"

    @staticmethod
    def delta(old: float | None, new: float | None) -> float | None:
        """``new - old``, or ``None`` where either is missing."""
        return None if old is None or new is None else new - old


def _entry(doc: dict) -> dict[str, dict]:
    out = {"yardstick": doc["reference"]}
    out.update({b["name"]: b for b in doc["backends"]})
    return out


def _where(b: dict | None) -> str | None:
    if b is None:
        return None
    if b["status"] in ("unavailable", "error"):
        return b["status"]
    if not b["first_divergent_node"]:
        return "—"
    return f"{b['first_divergent_node']} ({b['classification']})"


def _cost(b: dict | None, key: str) -> float | None:
    return None if b is None or not b.get("costs") else b["costs"].get(key)


def diff_reports(old: dict, new: dict) -> list[Change]:
    """Per backend (the yardstick first, then in the new report's order) what changed from ``old`` to ``new``."""
    a, b = _entry(old), _entry(new)
    names = list(b) + [n for n in a if n not in b]
    out = []
    for n in names:
        x, y = a.get(n), b.get(n)
        out.append(Change(
            n, x and x["status"], y and y["status"], x and x["accuracy"], y and y["accuracy"],
            x and x["prediction_agreement"], y and y["prediction_agreement"], _cost(x, "adds"), _cost(y, "adds"),
            _cost(x, "spikes"), _cost(y, "spikes"), _cost(x, "memory_bits"), _cost(y, "memory_bits"),
            _where(x), _where(y), bool((y or x)["audit"])))
    return out


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _signed(v: float | None, scale: float = 1.0, unit: str = "", digits: int = 3) -> str:
    if v is None:
        return ""
    if v == 0:
        return "±0"
    return f"{v * scale:+.{digits}g}{unit}"


def rows(changes: list[Change]) -> list[list[str]]:
    """Text cells: backend, verdict old → new, accuracy (Δ pp), agreement (Δ pp), #Add (Δ%), #S (Δ), divergence."""
    from snnbridge.validation.report.render import si

    out = []
    for c in changes:
        verdict = f"{(c.old_status or 'absent').upper()} → {(c.new_status or 'absent').upper()}"
        if c.regressed:
            verdict += "  REGRESSION"
        elif c.fixed:
            verdict += "  fixed"
        d_acc = Change.delta(c.old_accuracy, c.new_accuracy)
        d_agr = Change.delta(c.old_agreement, c.new_agreement)
        d_add = Change.delta(c.old_adds, c.new_adds)
        rel = None if d_add is None or not c.old_adds else d_add / c.old_adds
        d_s = Change.delta(c.old_spikes, c.new_spikes)
        out.append([
            c.name + (" (audit)" if c.audit else ""), verdict,
            f"{_pct(c.new_accuracy)} ({_signed(d_acc, 100, ' pp')})" if d_acc is not None else _pct(c.new_accuracy),
            f"{_pct(c.new_agreement)} ({_signed(d_agr, 100, ' pp')})" if d_agr is not None else _pct(c.new_agreement),
            f"{si(c.new_adds)} ({_signed(rel, 100, '%')})" if rel is not None else si(c.new_adds),
            f"{si(c.new_spikes)} ({_signed(d_s)})" if d_s is not None else si(c.new_spikes),
            f"{c.old_divergence or 'absent'} → {c.new_divergence or 'absent'}" if c.old_divergence != c.new_divergence
            else (c.new_divergence or "—"),
        ])
    return out


HEADERS = ["backend", "verdict (old → new)", "accuracy (Δ)", "agrees with ref (Δ)", "#Add (Δ)", "#S (Δ)",
           "first divergence"]


def markdown(changes: list[Change]) -> str:
    """The changes as a Markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows(changes):
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in r) + " |")
    return "\n".join(lines)
