"""Recording: every node's output (and membrane) over time, the common result of all backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch


@dataclass
class Recording:
    """Per-node traces of one run.

    Attributes:
        outputs: node name -> output ``[T, B, *shape]``; spike-valued nodes are ``torch.bool``.
        membranes: neuron node name -> membrane ``[T, B, *shape]`` as compared with the threshold
            (after integration, before reset); empty for nodes that were not recorded.
        node_types: node name -> NIR type name (``"LIF"``, ``"Affine"``, ...).
        dt: step in seconds.
        backend: who produced it (``"reference"``, ``"snntorch"``, ...).
        order: node names in evaluation order.
    """

    outputs: dict[str, torch.Tensor]
    membranes: dict[str, torch.Tensor] = field(default_factory=dict)
    node_types: dict[str, str] = field(default_factory=dict)
    dt: float = 1e-4
    backend: str = "reference"
    order: list[str] = field(default_factory=list)

    # ----------------------------------------------------------------- access
    @property
    def nodes(self) -> list[str]:
        """Recorded node names, in evaluation order."""
        return [n for n in self.order if n in self.outputs] or list(self.outputs)

    @property
    def spiking_nodes(self) -> list[str]:
        """Nodes whose output is spikes (bool)."""
        return [n for n in self.nodes if self.outputs[n].dtype == torch.bool]

    @property
    def steps(self) -> int:
        return next(iter(self.outputs.values())).shape[0]

    @property
    def batch_size(self) -> int:
        return next(iter(self.outputs.values())).shape[1]

    def shape(self, name: str) -> tuple[int, ...]:
        """Per-sample shape of node ``name`` (time and batch excluded)."""
        return tuple(self[name].shape[2:])

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(f"node '{name}' was not recorded; recorded: {', '.join(self.nodes)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.outputs

    def spikes(self, name: str) -> torch.Tensor:
        """Spikes of node ``name``, ``bool [T, B, *shape]``."""
        out = self[name]
        if out.dtype != torch.bool:
            raise ValueError(f"node '{name}' ({self.node_types.get(name, '?')}) does not emit spikes")
        return out

    def membrane(self, name: str) -> torch.Tensor:
        """Membrane of neuron node ``name``, ``[T, B, *shape]``."""
        try:
            return self.membranes[name]
        except KeyError:
            raise KeyError(f"no membrane recorded for node '{name}'") from None

    def numpy(self, name: str, kind: str = "output") -> np.ndarray:
        """``kind`` = ``"output"`` or ``"membrane"`` of node ``name`` as a numpy array."""
        t = self[name] if kind == "output" else self.membrane(name)
        return t.detach().cpu().numpy()

    def output(self) -> torch.Tensor:
        """The graph's (single) Output node, ``[T, B, *shape]``."""
        outs = [n for n in self.nodes if self.node_types.get(n) == "Output"]
        if len(outs) != 1:
            raise ValueError(f"graph has {len(outs)} Output nodes; index by name instead")
        return self[outs[0]]

    def spike_counts(self, name: str) -> torch.Tensor:
        """Spikes per neuron summed over time, ``[B, *shape]``."""
        return self.spikes(name).sum(0)

    def select(self, samples: Iterable[int] | slice) -> "Recording":
        """The same recording restricted to some batch entries."""
        idx = samples if isinstance(samples, slice) else torch.as_tensor(list(samples), dtype=torch.long)
        return Recording(
            {k: v[:, idx] for k, v in self.outputs.items()},
            {k: v[:, idx] for k, v in self.membranes.items()},
            dict(self.node_types), self.dt, self.backend, list(self.order),
        )

    @staticmethod
    def concat(parts: list["Recording"]) -> "Recording":
        """Join recordings of consecutive batches along the batch axis."""
        first = parts[0]
        return Recording(
            {k: torch.cat([p.outputs[k] for p in parts], 1) for k in first.outputs},
            {k: torch.cat([p.membranes[k] for p in parts], 1) for k in first.membranes},
            dict(first.node_types), first.dt, first.backend, list(first.order),
        )

    # ----------------------------------------------------------------- files
    def save(self, path: str | Path) -> None:
        """Write all traces to one ``.npz`` file."""
        arrays = {f"out/{k}": v.cpu().numpy() for k, v in self.outputs.items()}
        arrays.update({f"mem/{k}": v.cpu().numpy() for k, v in self.membranes.items()})
        meta = {"dt": self.dt, "backend": self.backend, "order": self.order, "node_types": self.node_types}
        import json

        np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Recording":
        import json

        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            outs = {k[4:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("out/")}
            mems = {k[4:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("mem/")}
        return cls(outs, mems, meta["node_types"], meta["dt"], meta["backend"], meta["order"])

    def __repr__(self) -> str:
        lines = [f"Recording(backend={self.backend!r}, dt={self.dt:g}, T={self.steps}, B={self.batch_size})"]
        for n in self.nodes:
            t = self[n]
            extra = f", {int(t.sum())} spikes" if t.dtype == torch.bool else ""
            lines.append(f"  {n}: {self.node_types.get(n, '?')} {tuple(t.shape[2:])}{extra}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter rich display: one row per node (type, shape, spikes, rate, membrane recorded)."""
        return recording_html(self)


def recording_html(rec: Recording) -> str:
    """Jupyter's view of a recording (a scoped HTML fragment): one row per node with its type, per-sample
    shape, spikes (total and per neuron per step) and whether its membrane was recorded."""
    from snnbridge.html_fragment import escape, wrap

    rows = []
    T, B = rec.steps, rec.batch_size
    for n in rec.nodes:
        t = rec[n]
        shape = tuple(t.shape[2:])
        neurons = max(1, int(torch.tensor(shape).prod().item()) if shape else 1)
        if t.dtype == torch.bool:
            total = int(t.sum())
            spikes = f"{total}"
            rate = f"{total / (T * B * neurons):.3f}"
        else:
            spikes, rate = "values", "—"
        mem = "yes" if n in rec.membranes else ""
        rows.append(f"<tr><td class='mono'>{escape(n)}</td><td>{escape(rec.node_types.get(n, '?'))}</td>"
                    f"<td class='mono'>{escape('×'.join(map(str, shape)) or '1')}</td><td class='num'>{spikes}</td>"
                    f"<td class='num'>{rate}</td><td>{mem}</td></tr>")
    body = (f"<div class='head'><b>Recording</b> <span class='mono'>{escape(rec.backend)}</span> · T = {T} steps × "
            f"B = {B} samples · dt = {rec.dt:g} s · {len(rec.nodes)} nodes</div>"
            "<table><thead><tr><th>node</th><th>type</th><th>shape</th><th class='num'>spikes</th>"
            "<th class='num'>spikes / neuron / step</th><th>membrane</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
    return wrap(body)
