"""A NIR graph as a plain ``brian2.Network`` the user keeps working with (``Brian2Backend.to_native``).

The network is built by the same compiler as the Brian2 backend (:mod:`~snnbridge.backends.brian2.plan`,
:mod:`~snnbridge.backends.brian2.build`), with the same same-step schedule, so its spikes equal the
reference executor's; but everything runs inside Brian2 — the inputs too (no current precomputed in torch).

**Names.**  Brian2 names must be identifiers: a node name becomes :func:`brian2_identifier` of it (every
character other than ``A-Z a-z 0-9 _`` → ``_``; a leading digit gets the prefix ``n``; ``"lif1.lif"`` →
``lif1_lif``, ``"0"`` → ``n0``; a clash gets ``_2``, ``_3``, ... in graph order).  With ``G`` = that name:

* ``G`` — one ``NeuronGroup`` per neuron node (LIF, IF, CubaLIF, LI, I, CubaLI) and ``Threshold`` node;
  one per ``Input`` node: a ``SpikeGeneratorGroup`` (``inputs="spikes"``) or a ``NeuronGroup`` with
  ``x : 1`` read from the TimedArray ``G_values`` (``inputs="analog"``).  ``net.snnbridge_groups[node]``.
* variables of a neuron group: ``v`` (membrane), ``isyn`` (synaptic current, Cuba nodes), ``I_in``
  (spike input of this step + constant drive), ``I_a0, I_a1, ...`` (analog inputs), constants
  ``decay, gain, bias, thr, vr, syn_decay, syn_gain, b0, v0, i0`` (the reference's constants per neuron,
  from ``FlatGraph.coefficients``), ``r`` (the reset flag of a delayed / rechecked reset).
* ``S_to_D`` (``S_to_D_lag<k>`` for a total lag of ``k`` steps: a recurrent edge, a Delay) — one
  ``Synapses`` per pair of groups, every path of stateless nodes (Affine, Linear, Conv, pooling, Flatten,
  Scale, Delay) between them composed into one sparse weight ``w`` (a plain variable: change it between
  runs, or make it plastic with ``plasticity``).  Spike sources deliver ``I_in_post += w``; analog sources
  use ``I_a<m>_post = w*v_pre`` (summed).  ``net.snnbridge_synapses[(src_node, dst_node, lag)]``.
* ``G_update`` (the step: ``v = decay*v + (gain*drive + bias)`` etc.), ``G_recheck`` (carried state of an
  ``immediate_rechecked`` reset), ``G_in`` (analog input) — ``run_regularly`` operations.

**Batch.**  ``batch_size`` independent copies of every group: sample ``b``, flat per-sample index ``k``
(C order of the node shape) is neuron ``b*size + k``.  :func:`unflatten` turns a group's per-neuron values
``[..., batch*size]`` into ``[..., batch, *shape]``.

**Inputs.**  ``net.set_inputs(x)`` with ``x`` ``[T, B, *input_shape]`` (or a dict by Input node name)
schedules the next ``T`` steps from the network's current time ``net.t``: spikes (0/1) into the
SpikeGeneratorGroup, analog values into the TimedArray (zero after the last step).  Then
``net.run(T * dt * second)``.  Calling both again continues in time: running ``x[:T1]`` then ``x[T1:]``
equals one run of ``x`` (the network carries the last step's spikes from one run into the next: Brian2
itself clears them at the end of a run, which would cut every recurrent edge at a run boundary).

**Schedule.**  Everything that makes the step happens in Brian2's ``synapses`` slot, one ``order`` number
per object, groups in the graph's topological order (see :mod:`snnbridge.backends.brian2.build`).
``net.snnbridge_slots[node]`` is the order right after the group's threshold and before its reset:
a ``StateMonitor(G, 'v', when='synapses', order=net.snnbridge_slots[node])`` records the membrane the
reference records (compared with the threshold, before the reset) — :meth:`membrane_monitor` makes one.
A ``SpikeMonitor(G)`` follows the group's threshold by itself.  A ``StateMonitor`` with Brian2's default
``when='start'`` records the state carried into the step (after the previous step's reset).

**Plasticity.**  ``plasticity={(src_node, dst_node): {"model": ..., "on_pre": ..., "on_post": ...,
"namespace": {...}}}`` adds Brian2 code to that pair's Synapses (spike sources only): ``on_pre`` runs after
the delivery ``I_in_post += w`` (so a weight change acts from the next spike on), ``on_post`` right after the
target's threshold in the same step.

**Running.**  ``net.run`` sets snnbridge's code-generation preferences around Brian2's own run (target
``numpy`` or ``cython``, gcc without ``-ffast-math`` and FMA contraction, so float64 is bit-exact); the
network's float type (float64 or float32) is fixed when it is built.  ``net.record(x)`` (also
``Brian2Backend.run_native(net, x)``) sets the inputs, runs them with its own temporary monitors and
returns a :class:`~snnbridge.bridge.recording.Recording` of every group (spikes, membranes; analog
neurons' membranes as outputs) and of every Output node a group feeds through pass-through nodes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import brian2 as b2
import numpy as np
import torch

from snnbridge.backends.brian2 import patches
from snnbridge.backends.brian2.build import Layout, Names, brian2_prefs, build, spikes_from_events
from snnbridge.backends.brian2.plan import GroupSpec, Plan, make_plan
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.recording import Recording
from snnbridge.errors import InputError, UnsupportedNodeError

INPUT_MODES = ("spikes", "analog")


def brian2_identifier(name: str) -> str:
    """The Brian2 name of NIR node ``name``: non-identifier characters → ``_``, a leading digit → ``n`` prefix."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not out or out[0].isdigit():
        out = "n" + out
    return out


class NativeNames(Names):
    """Documented, unique Brian2 names (see the module docstring), decided once for the whole plan."""

    def __init__(self, plan: Plan) -> None:
        self.taken: set[str] = set()
        self.by_node: dict[str, str] = {}
        for node in plan.graph.order:
            if node in plan.groups:
                self.by_node[node] = self._unique(brian2_identifier(node))

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def group(self, g: GroupSpec) -> str:
        return self.by_node[g.node]

    def synapses(self, src: GroupSpec, dst: GroupSpec, lag: int) -> str:
        base = f"{self.group(src)}_to_{self.group(dst)}" + (f"_lag{lag}" if lag else "")
        return self._unique(base)

    def input_array(self, g: GroupSpec) -> str:
        return self._unique(f"{self.group(g)}_values")

    def operation(self, g: GroupSpec, what: str) -> str:
        return self._unique(f"{self.group(g)}_{what}")


class SnnbridgeNetwork(b2.Network):
    """A ``brian2.Network`` built from a NIR graph, with the handles documented in the module docstring.

    Attributes:
        graph: the prepared graph (:class:`~snnbridge.bridge.graph.FlatGraph`).
        batch_size: parallel copies of every group.
        dt: step in seconds (float).
        snnbridge_groups: node name -> group; snnbridge_synapses: ``(src, dst, lag)`` -> Synapses;
        snnbridge_slots: node name -> ``order`` after its threshold (``when='synapses'``);
        snnbridge_names: node name -> Brian2 name.
    """

    def __init__(self, *objects, graph: FlatGraph, plan: Plan, built, batch_size: int, target: str,
                 dtype: torch.dtype, input_modes: dict[str, str], cache_dir: Path, name: str = "snnbridge_native"):
        super().__init__(*objects, name=name)
        self.graph = graph
        self.plan = plan
        self.batch_size = batch_size
        self.dt = float(graph.semantics.dt)
        self.target = target
        self.dtype = dtype
        self.input_modes = input_modes
        self.cache_dir = cache_dir
        self.snnbridge_groups: dict[str, object] = dict(built.groups)
        self.snnbridge_synapses: dict[tuple[str, str, int], object] = dict(built.synapses)
        self.snnbridge_slots: dict[str, int] = dict(built.slots)
        self.snnbridge_names: dict[str, str] = {n: g.name for n, g in built.groups.items()}
        self._input_arrays = dict(built.input_arrays)

    # ----------------------------------------------------------------- running
    def run(self, duration, report=None, report_period=10 * b2.second, namespace=None, profile=None, level=0):
        """Brian2's ``Network.run`` under snnbridge's code-generation preferences (see the module docstring)."""
        with brian2_prefs(self.target, self.dtype, self.cache_dir / "cython"):
            return super().run(duration, report=report, report_period=report_period, namespace=namespace,
                               profile=profile, level=level + 1)

    def after_run(self) -> None:
        """Keep each group's last spikes: Brian2 clears the spike space at the end of a run, but a pathway that
        runs before its source within a step (a recurrent edge) reads the previous step's spikes from it."""
        self._carried_spikes = [(g, patches.spike_space(g).copy()) for g in self._recurrent_sources()]
        super().after_run()

    def before_run(self, run_namespace) -> None:
        super().before_run(run_namespace)
        for g, saved in getattr(self, "_carried_spikes", []):
            patches.spike_space(g)[:] = saved  # runtime targets: the array itself

    def _recurrent_sources(self) -> list:
        """Spiking groups whose previous-step spikes a pathway reads (it runs before its source in a step)."""
        plan = self.plan
        late = {p.src for p in plan.projections
                if not plan.groups[p.src].analog and plan.position(p.src) >= plan.position(p.dst)}
        return [g for n, g in self.snnbridge_groups.items()
                if n in late and isinstance(g, b2.NeuronGroup) and patches.has_spike_space(g)]

    @property
    def step(self) -> int:
        """The number of steps run so far (``net.t / dt``)."""
        return int(round(float(self.t_) / self.dt))

    def set_inputs(self, inputs: torch.Tensor | np.ndarray | Mapping[str, torch.Tensor | np.ndarray]) -> int:
        """Schedule ``inputs`` ``[T, B, *input_shape]`` (``B`` = ``batch_size``) for the next ``T`` steps from
        ``net.t``; returns ``T``.  A dict gives the values by Input node name."""
        fg = self.graph
        if not isinstance(inputs, Mapping):
            if len(fg.inputs) != 1:
                raise InputError(f"graph has {len(fg.inputs)} inputs; pass a dict by input name")
            inputs = {fg.inputs[0]: inputs}
        steps = set()
        start = self.step
        for name, x in inputs.items():
            if name not in fg.inputs:
                raise InputError(f"'{name}' is not an Input node of the graph (inputs: {fg.inputs})")
            x = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
            shape = (self.batch_size,) + tuple(fg.out_shapes[name])
            if x.ndim < 2 or tuple(x.shape[1:]) != shape:
                raise InputError(f"input '{name}' must be [T, {', '.join(map(str, shape))}], got {list(x.shape)}")
            if not np.all(np.isfinite(x)):
                raise InputError(f"input '{name}' contains NaN or Inf")
            steps.add(x.shape[0])
            flat = x.reshape(x.shape[0], -1)
            if name not in self.snnbridge_groups:
                continue  # an Input nothing reads from
            grp = self.snnbridge_groups[name]
            if self.input_modes[name] == "spikes":
                if not np.all((flat == 0) | (flat == 1)):
                    raise InputError(f"input '{name}' is not 0/1 spikes; build the network with inputs='analog'")
                t_idx, n_idx = np.nonzero(flat)
                grp.set_spikes(n_idx, (start + t_idx) * self.dt * b2.second, sorted=True)
            else:
                ta_name = self._input_arrays[name]
                values = np.concatenate([flat, np.zeros((1, flat.shape[1]))])  # zero after the last step
                grp.namespace[ta_name] = b2.TimedArray(values, dt=self.dt * b2.second, name=ta_name)
                grp.namespace["t_in"] = start * self.dt * b2.second
        if len(steps) != 1:
            raise InputError(f"inputs have different numbers of steps: {sorted(steps)}")
        return steps.pop()

    def membrane_monitor(self, node: str, variables: str | list[str] = "v", **kwargs):
        """A ``StateMonitor`` of ``node``'s group recording ``variables`` after the threshold, before the reset
        (the reference's membrane); added to the network.  ``kwargs`` go to ``StateMonitor`` (default
        ``record=True``)."""
        kwargs.setdefault("record", True)
        mon = b2.StateMonitor(self.snnbridge_groups[node], variables, when="synapses",
                              order=self.snnbridge_slots[node], **kwargs)
        self.add(mon)
        return mon

    def record(self, inputs, membranes: bool = True) -> Recording:
        """Run ``inputs`` ``[T, B, *shape]`` from the current time (continuing the state) and return the
        :class:`Recording` of every group and Output node (``[T, B, *shape]``, node names as in the graph)."""
        fg = self.graph
        T = self.set_inputs(inputs)
        start = self.step
        mons: dict[str, object] = {}
        vmons: dict[str, object] = {}
        for node, grp in self.snnbridge_groups.items():
            g = self.plan.groups[node]
            if g.is_input:
                continue
            if g.spiking:
                mons[node] = b2.SpikeMonitor(grp, record=True)
            if g.analog or (membranes and g.kind in sem.NEURON_TYPES):
                vmons[node] = b2.StateMonitor(grp, "v", record=True, when="synapses", order=self.snnbridge_slots[node])
        extra = list(mons.values()) + list(vmons.values())
        self.add(*extra)
        try:
            self.run(T * self.dt * b2.second, namespace={})
            B = self.batch_size
            layout = Layout(T, B, 1)
            outs: dict[str, torch.Tensor] = {}
            mems: dict[str, torch.Tensor] = {}
            for node, m in mons.items():
                t = np.asarray(m.t_[:], dtype=np.float64) - start * self.dt
                outs[node] = spikes_from_events(np.asarray(m.i[:]), t, self.dt, layout, B, fg.in_shapes[node])
            for node, m in vmons.items():
                v = torch.from_numpy(np.ascontiguousarray(m.v_[:].T)).to(self.dtype)  # [T, B*size]
                v = v.reshape((T, B) + tuple(fg.in_shapes[node]))
                if self.plan.groups[node].analog:
                    outs[node] = v
                if membranes and fg.type_of(node) in sem.NEURON_TYPES:
                    mems[node] = v
        finally:
            self.remove(*extra)
        for node in fg.order:  # Output nodes fed by a group through pass-through nodes
            if fg.type_of(node) == "Output":
                src = _pass_through_source(fg, node)
                if src in outs:
                    outs[node] = outs[src].reshape((T, self.batch_size) + tuple(fg.out_shapes[node]))
        return Recording(outs, mems, {n: fg.type_of(n) for n in fg.order}, self.dt, "brian2-native", list(fg.order))


def _pass_through_source(fg: FlatGraph, node: str) -> str | None:
    """The group an Output node shows unchanged (through Output/Flatten nodes), else ``None``."""
    while fg.type_of(node) in ("Output", "Flatten"):
        preds = fg.preds[node]
        if len(preds) != 1 or (preds[0], node) in fg.recurrent:
            return None
        node = preds[0]
    return node if fg.type_of(node) in ("LIF", "IF", "CubaLIF", "Threshold", "LI", "I", "CubaLI") else None


def unflatten(values, net: SnnbridgeNetwork, node: str) -> np.ndarray:
    """A group's per-neuron values ``[..., batch*size]`` as ``[..., batch, *shape]`` (numpy)."""
    a = np.asarray(values)
    return a.reshape(a.shape[:-1] + (net.batch_size,) + tuple(net.graph.in_shapes[node]))


def to_native(fg: FlatGraph, batch_size: int = 1, target: str = "numpy", dtype: torch.dtype = torch.float64,
              inputs: str | Mapping[str, str] = "spikes", plasticity: dict | None = None,
              cache_dir: Path | None = None) -> SnnbridgeNetwork:
    """Build the :class:`SnnbridgeNetwork` of a prepared graph (see the module docstring for every name).

    ``inputs``: ``"spikes"`` or ``"analog"`` for every Input node, or a dict by node name.
    Refuses (naming the node) what Brian2 cannot express: analog values delivered late (an LI/I/CubaLI
    output or an analog input behind a Delay), a loop made only of stateless nodes.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if target not in ("numpy", "cython"):
        raise ValueError(f"target must be 'numpy' or 'cython' for a native network, got {target!r} (for "
                         "cpp_standalone, call brian2.set_device('cpp_standalone') yourself and use target='numpy')")
    modes = {n: inputs for n in fg.inputs} if isinstance(inputs, str) else {n: inputs.get(n, "spikes")
                                                                             for n in fg.inputs}
    for n, m in modes.items():
        if m not in INPUT_MODES:
            raise ValueError(f"inputs of '{n}' must be one of {INPUT_MODES}, got {m!r}")
    plan = make_plan(fg, "synapses")
    spiking = {n: modes[n] == "spikes" for n in fg.inputs}
    for p in plan.projections:
        if plan.groups[p.src].is_input and p.lag > 0 and not spiking[p.src]:
            raise UnsupportedNodeError(f"backend 'brian2' cannot delay analog input values by {p.lag} step(s)",
                                       node=p.dst)
    max_lag = max([p.lag for p in plan.projections] + [lag for g in plan.groups.values() for lag in g.lag_bias]
                  + [0])
    layout = Layout(max_lag + 1, batch_size, 1)  # only the gates of lagged biases use it: 0 before `lag` steps
    cache_dir = Path(cache_dir) if cache_dir is not None else _cache_root()
    with brian2_prefs(target, dtype, cache_dir / "cython"):
        built = build(plan, layout, fg.semantics.dt, {n: spiking[n] for n in fg.inputs}, set(), set(),
                      names=NativeNames(plan), native=True, plasticity=plasticity)
    objects = list(built.net.objects)
    built.net.remove(*objects)
    return SnnbridgeNetwork(*objects, graph=fg, plan=plan, built=built, batch_size=batch_size, target=target,
                            dtype=dtype, input_modes=modes, cache_dir=cache_dir)


def _cache_root() -> Path:
    from snnbridge.backends.brian2.backend import cache_root

    return cache_root()
