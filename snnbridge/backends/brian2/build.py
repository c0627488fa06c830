"""Turn a :class:`~snnbridge.backends.brian2.plan.Plan` into Brian2 objects, for any device.

Schedule (all inside Brian2's ``synapses`` slot, one ``order`` number each, targets in
``FlatGraph.order``; see the module docstring of :mod:`snnbridge.backends.brian2.backend`)::

    start       round reset (v, isyn <- 0 every `steps` steps, only with several rounds); analog inputs x <- x[t]
    thresholds  spike inputs fire where x[t] > 0.5
    synapses    for each target group, in topological order:
                  summed-variable updaters of its analog projections
                  spike pathways of its event projections (push + deliver, I_in += w)
                  update  (run_regularly): [isyn = ...;] v = decay*v + (gain*drive + bias); I_in = b0
                  threshold (v > thr) -> spikes
                  StateMonitor of v (pre-reset membrane)
                  reset (Brian2 reset; immediate_rechecked: a recheck operation on every neuron)
    end         SpikeMonitors

A pathway runs right before its target: it sees the spikes its source emitted this step when the source
is earlier in the order, and last step's spikes otherwise (the one-step lag of a recurrent edge); synaptic
delays add the remaining lag.  Batches are laid out as ``copies`` parallel copies of every group (neuron
``c*size + n``), run for ``rounds`` rounds of ``steps`` steps (sample ``r*copies + c`` in round ``r``).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from snnbridge.backends.brian2.plan import GroupSpec, Plan, Projection

COMPILE_ARGS = ["-w", "-O3", "-fno-finite-math-only", "-ffp-contract=off", "-march=native", "-std=c++11"]
"""gcc flags for the cython and cpp_standalone targets: Brian2's defaults without ``-ffast-math`` and with
FMA contraction off, so that ``decay*v + (gain*x + bias)`` rounds exactly as the reference's torch ops."""


@dataclass(frozen=True)
class Layout:
    """Time/batch layout of one Brian2 run: ``rounds`` x ``steps`` steps, ``copies`` parallel copies per group."""

    steps: int
    copies: int
    rounds: int

    @property
    def total_steps(self) -> int:
        return self.steps * self.rounds

    @property
    def capacity(self) -> int:
        return self.copies * self.rounds


@dataclass
class Built:
    """The Brian2 objects of one layout and the handles the simulation needs."""

    net: object
    timed: dict[str, object] = field(default_factory=dict)
    spike_monitors: dict[str, object] = field(default_factory=dict)
    v_monitors: dict[str, object] = field(default_factory=dict)
    duration_steps: int = 0
    frozen: bool = False
    groups: dict[str, object] = field(default_factory=dict)
    """node name -> its NeuronGroup (SpikeGeneratorGroup for spike inputs of a native network)."""
    synapses: dict[tuple[str, str, int], object] = field(default_factory=dict)
    """``(source node, target node, lag in steps)`` -> its Synapses."""
    slots: dict[str, int] = field(default_factory=dict)
    """node name -> ``order`` (in the ``synapses`` slot) right after its threshold, before its reset: where a
    monitor sees the membrane compared with the threshold and the spikes of the step."""
    input_arrays: dict[str, str] = field(default_factory=dict)
    """analog Input node -> name of the TimedArray holding its values."""
    stored: set[str] = field(default_factory=set)
    """Names of the network's objects when its initial state was stored (objects added later are not restored)."""
    n_copies: int = 1
    """Parallel copies of every group (``layout.copies``)."""
    owner: object = None
    """``weakref`` to the simulation whose weights and constants are in the network's stored initial state
    (networks of the same structure and connectivity are shared between simulations: another one writes its own
    values with :func:`assign_parameters` after each restore)."""
    current: object = None
    """``weakref`` to the simulation whose weights and constants the live arrays hold (the weights are not part of
    the stored state, so a restore does not bring the owner's back)."""
    exclusive: bool = False
    """Handed to a user (``Brian2Simulation.network``): never shared with another simulation."""


class Names:
    """Brian2 object names of a build: compact internal names, stable so that compiled code is reused."""

    def group(self, g: GroupSpec) -> str:
        return f"g{g.index}"

    def synapses(self, src: GroupSpec, dst: GroupSpec, lag: int) -> str:
        return f"s{src.index}_{dst.index}_{lag}"

    def input_array(self, g: GroupSpec) -> str:
        return f"ix{g.index}"

    def operation(self, g: GroupSpec, what: str) -> str:
        """``what``: ``in`` (analog input), ``update``, ``recheck``, ``round``."""
        return f"{self.group(g)}_{what}"


@contextmanager
def brian2_prefs(target: str, dtype: torch.dtype, cython_dir: str | None = None):
    """Set Brian2's code-generation preferences for one build/run and restore them afterwards.

    ``cython_dir``: where compiled Cython modules are cached.  Brian2's cache key is the code, not the
    compiler flags, so snnbridge keeps its own cache (compiled with :data:`COMPILE_ARGS` only).
    """
    from brian2 import prefs

    keys = ["codegen.target", "core.default_float_dtype", "codegen.loop_invariant_optimisations",
            "codegen.cpp.extra_compile_args_gcc", "codegen.runtime.numpy.discard_units",
            "codegen.runtime.cython.cache_dir"]
    saved = {k: prefs[k] for k in keys}
    try:
        if target in ("numpy", "cython"):
            prefs["codegen.target"] = target
        if cython_dir is not None:
            prefs["codegen.runtime.cython.cache_dir"] = str(cython_dir)
        prefs["core.default_float_dtype"] = np.float32 if dtype == torch.float32 else np.float64
        prefs["codegen.loop_invariant_optimisations"] = False
        prefs["codegen.cpp.extra_compile_args_gcc"] = list(COMPILE_ARGS)
        prefs["codegen.runtime.numpy.discard_units"] = True
        yield
    finally:
        for k, v in saved.items():
            prefs[k] = v


def _gate_values(layout: Layout, lag: int) -> np.ndarray:
    """1 where the step within its round is >= ``lag`` (a lagged value belongs to the same sample), else 0."""
    local = np.arange(layout.total_steps) % layout.steps
    return (local >= lag).astype(np.float64)


def build(plan: Plan, layout: Layout, dt: float, input_spiking: dict[str, bool], spike_nodes: set[str],
          v_nodes: set[str], names: Names | None = None, native: bool = False,
          plasticity: dict[tuple[str, str], dict] | None = None) -> Built:
    """Create every Brian2 object for ``layout`` on the active device (call inside :func:`brian2_prefs`).

    ``input_spiking``: per Input group used by a projection, whether its values are 0/1 spikes (event
    pathways) or analog (summed-variable pathways).  ``spike_nodes``/``v_nodes``: groups to monitor.
    TimedArrays are created with zeros; the simulation fills them (in place, or via run args).

    ``native`` (a network handed to the user, see :mod:`snnbridge.backends.brian2.native`): spike inputs are
    ``SpikeGeneratorGroup`` objects, analog inputs read ``values(t - t_in, i)`` (``t_in`` in the group's
    namespace: when the current values start), synaptic weights ``w`` are plain (modifiable) variables, and
    ``plasticity`` adds ``model`` / ``on_pre`` / ``on_post`` / ``namespace`` to the Synapses of a
    ``(source node, target node)`` pair (its ``on_post`` runs right after the target's threshold).
    """
    builder = _Builder(plan, layout, dt, input_spiking, names or Names(), native, plasticity)
    builder.add_inputs()
    targets = [builder.add_target(g) for g in plan.sinks]  # every group exists before any Synapses
    for target in targets:
        builder.schedule(target, spike_nodes, v_nodes)
    builder.check_plasticity_used()
    return builder.finish()


@dataclass
class _Model:
    """The Brian2 definition of one target group: equations, per-neuron values, update code, threshold, reset."""

    model: list[str]
    values: dict[str, np.ndarray]
    code: list[str]
    namespace: dict[str, object]
    threshold: str | None
    reset: str | None
    use_i_in: bool


@dataclass
class _Target:
    """A target group created by :meth:`_Builder.add_target`, waiting for :meth:`_Builder.schedule`."""

    spec: GroupSpec
    group: object
    model: _Model
    analog_in: list[Projection]
    event_in: list[Projection]


class _Builder:
    """The steps of :func:`build`; holds the objects made so far and the ``order`` counter of the schedule."""

    def __init__(self, plan: Plan, layout: Layout, dt: float, input_spiking: dict[str, bool], names: Names,
                 native: bool, plasticity: dict[tuple[str, str], dict] | None) -> None:
        import brian2 as b2
        from brian2.utils.logger import BrianLogger

        BrianLogger.suppress_name("only_threshold")  # Threshold/no-reset groups have a threshold but no reset
        self.b2 = b2
        self.plan, self.layout, self.input_spiking, self.names, self.native = plan, layout, input_spiking, names, native
        self.plasticity = dict(plasticity or {})
        self.clock_dt = dt * b2.second
        # explicitly named clocks: Brian2 names an object's own clock uniquely per process ("g2_clock_1" while an
        # earlier network lives), and that name is in the generated code, so graphs could not share compiled code
        self.clock = b2.Clock(dt=self.clock_dt, name="snnbridge_clock")
        self.round_clock = (b2.Clock(dt=layout.steps * self.clock_dt, name="snnbridge_round_clock")
                            if layout.rounds > 1 else None)
        self.n_cp = layout.copies
        self.built = Built(net=None, duration_steps=layout.total_steps, n_copies=layout.copies)
        self.objects: list = []
        self.gates: dict[int, object] = {}
        self.order = 0
        self.post_pathways: list[tuple[str, object]] = []

    def next_order(self) -> int:
        self.order += 1
        return self.order

    def timed_array(self, name: str, ncols: int) -> object:
        """A zero TimedArray ``[total_steps, ncols]`` the simulation fills (kept in ``built.timed``)."""
        ta = self.b2.TimedArray(np.zeros((self.layout.total_steps, ncols)), dt=self.clock_dt, name=name)
        self.built.timed[name] = ta
        return ta

    def gate(self, lag: int) -> object:
        """The TimedArray that is 1 from step ``lag`` of every round on (lagged inputs of the same sample)."""
        if lag not in self.gates:
            self.gates[lag] = self.b2.TimedArray(_gate_values(self.layout, lag), dt=self.clock_dt, name=f"gate{lag}")
        return self.gates[lag]

    # ----------------------------------------------------------------- step 1: inputs
    def add_inputs(self) -> None:
        """One group per Input node a projection reads: spikes (threshold on the TimedArray, or a
        SpikeGeneratorGroup in a native network) or analog values (``x`` set from the TimedArray at ``start``)."""
        b2, plan, names, n_cp = self.b2, self.plan, self.names, self.n_cp
        used_inputs = {p.src for p in plan.projections if plan.groups[p.src].is_input}
        for g in plan.groups.values():
            if not g.is_input or g.node not in used_inputs:
                continue
            name = names.input_array(g)
            if self.native and self.input_spiking[g.node]:
                grp = b2.SpikeGeneratorGroup(g.size * n_cp, np.zeros(0, dtype=np.int64), np.zeros(0) * b2.second,
                                             name=names.group(g), clock=self.clock)
            elif self.input_spiking[g.node]:
                ta = self.timed_array(name, g.size * n_cp)
                grp = b2.NeuronGroup(g.size * n_cp, "", threshold=f"{name}(t, i) > 0.5", namespace={name: ta},
                                     name=names.group(g), clock=self.clock)
            else:
                ta = self.timed_array(name, g.size * n_cp)
                self.built.input_arrays[g.node] = name
                namespace = {name: ta, "t_in": 0 * b2.second} if self.native else {name: ta}
                grp = b2.NeuronGroup(g.size * n_cp, "x : 1", namespace=namespace, name=names.group(g),
                                     clock=self.clock)
                at = "t - t_in" if self.native else "t"
                grp.run_regularly(f"x = {name}({at}, i)", when="start", order=0, name=names.operation(g, "in"))
            self.built.groups[g.node] = grp
            self.objects.append(grp)

    # ----------------------------------------------------------------- step 2: target groups
    def add_target(self, g: GroupSpec) -> _Target:
        """The NeuronGroup of target ``g`` with its constants and initial state (not scheduled yet)."""
        plan, n_cp = self.plan, self.n_cp
        incoming = plan.projections_into(g.node)
        analog_in = [p for p in incoming if _is_analog(plan, p, self.input_spiking)]
        event_in = [p for p in incoming if p not in analog_in]
        m = self.group_model(g, analog_in, event_in)
        grp = self.b2.NeuronGroup(g.size * n_cp, "\n".join(m.model), threshold=m.threshold, reset=m.reset,
                                  namespace=m.namespace, name=self.names.group(g), clock=self.clock)
        for k, v in {**m.values, **initial_values(g, m.use_i_in)}.items():
            setattr(grp, k, np.tile(np.asarray(v, dtype=np.float64), n_cp))
        self.built.groups[g.node] = grp
        self.objects.append(grp)
        if self.layout.rounds > 1:
            clear = ("v = v0" if g.v_init is not None else "v = 0") + (
                ("\nisyn = i0" if g.i_init is not None else "\nisyn = 0") if g.cuba else "")
            grp.run_regularly(clear, clock=self.round_clock, when="start", order=1,
                              name=self.names.operation(g, "round"))
        return _Target(g, grp, m, analog_in, event_in)

    def group_model(self, g: GroupSpec, analog_in: list[Projection], event_in: list[Projection]) -> _Model:
        """Equations, per-neuron constants (arrays, never literals), update code, threshold and reset of ``g``."""
        namespace: dict[str, object] = {}
        model = ["v : 1"]
        terms = []
        use_i_in = bool(event_in) or bool(np.any(g.b0 != 0)) or bool(g.lag_bias) or not (g.folded or analog_in)
        if use_i_in:
            model.append("I_in : 1")
            terms.append("I_in")
        if g.folded:
            model.append("Ix : 1")
            terms.append("Ix")
            namespace[f"ie{g.index}"] = self.timed_array(f"ie{g.index}", g.size * self.n_cp)
        for m in range(len(analog_in)):
            model.append(f"I_a{m} : 1")
            terms.append(f"I_a{m}")
        drive = terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"
        code = [f"Ix = ie{g.index}(t, i)"] if g.folded else []
        values = constant_values(self.plan, g, use_i_in)
        threshold = reset = None
        if g.kind == "Threshold":
            code.append(f"v = {drive}")
            threshold = f"v {_cmp(g)} thr"
        else:
            c = g.coeff
            if g.cuba:
                code.append(f"isyn = syn_decay*isyn + syn_gain*{drive}")
                drive = "isyn"
            code += neuron_update(g, drive)
            if c.spiking:
                threshold = f"v {_cmp(g)} thr"
                if g.timing == "immediate" and g.reset == "zero":
                    reset = "v = vr"
                elif g.timing == "immediate" and g.reset == "subtract":
                    reset = "v = v - thr"
        for k in values:  # declaration order as before (the generated code, and so the compiled cache, depend on it)
            if k == "syn_decay":
                model.append("isyn : 1")
            model.append(f"{k} : 1 (constant)")
            if k == "thr" and g.kind != "Threshold" and g.timing != "immediate":
                model.append("r : 1")  # the reset flag H(v[t-1] - thr) of a delayed/rechecked reset
        if use_i_in:
            refill = "I_in = b0"
            for lag in g.lag_bias:
                namespace[f"gate{lag}"] = self.gate(lag)
                refill += f" + bl{lag}*gate{lag}(t + dt)"
            code.append(refill)
        return _Model(model, values, code, namespace, threshold, reset, use_i_in)

    # ----------------------------------------------------------------- step 3: the schedule of each target
    def schedule(self, t: _Target, spike_nodes: set[str], v_nodes: set[str]) -> None:
        """Incoming pathways, update, threshold, membrane monitor, reset, recheck and spike monitor of one
        target, in this order within the ``synapses`` slot (see the module docstring)."""
        self.add_pathways(t)
        g, grp, m = t.spec, t.group, t.model
        grp.run_regularly("\n".join(m.code), when="synapses", order=self.next_order(),
                          name=self.names.operation(g, "update"))
        if m.threshold is not None:
            grp.thresholder["spike"].when = "synapses"
            grp.thresholder["spike"].order = self.next_order()
        self.built.slots[g.node] = self.next_order()
        if g.node in v_nodes:
            mon = self.b2.StateMonitor(grp, "v", record=True, when="synapses", order=self.built.slots[g.node],
                                       name=f"vm{g.index}")
            self.built.v_monitors[g.node] = mon
            self.objects.append(mon)
        if m.reset is not None:
            grp.resetter["spike"].when = "synapses"
            grp.resetter["spike"].order = self.next_order()
        if g.timing == "immediate_rechecked":
            grp.run_regularly(recheck_code(g), when="synapses", order=self.next_order(),
                              name=self.names.operation(g, "recheck"))
        if g.node in spike_nodes and m.threshold is not None:
            mon = self.b2.SpikeMonitor(grp, record=True, name=f"sm{g.index}")
            self.built.spike_monitors[g.node] = mon
            self.objects.append(mon)

    def add_pathways(self, t: _Target) -> None:
        """The Synapses into target ``t``: summed analog projections, then event projections (with delays)."""
        b2, plan, g = self.b2, self.plan, t.spec
        for m, p in enumerate(t.analog_in):
            syn = _synapses(b2, plan, p, self.built.groups, self.n_cp, self.clock, analog_var=_analog_var(plan, p),
                            target=f"I_a{m}", name=self.names.synapses(plan.groups[p.src], g, p.lag),
                            native=self.native)
            self.built.synapses[(p.src, p.dst, p.lag)] = syn
            syn.summed_updaters[f"I_a{m}_post"].when = "synapses"
            syn.summed_updaters[f"I_a{m}_post"].order = self.next_order()
            self.objects.append(syn)
        for p in t.event_in:
            late = plan.position(p.src) >= plan.position(p.dst)
            gated = p.lag > 0 and self.layout.rounds > 1
            extra = self.plasticity.pop((p.src, p.dst), None)
            syn = _synapses(b2, plan, p, self.built.groups, self.n_cp, self.clock, delay=p.lag - int(late),
                            gate_ns={f"gate{p.lag}": self.gate(p.lag)} if gated else None,
                            name=self.names.synapses(plan.groups[p.src], g, p.lag), native=self.native, extra=extra)
            syn.pre.when = "synapses"
            syn.pre.order = self.next_order()
            if extra and extra.get("on_post"):
                self.post_pathways.append((p.dst, syn))
            self.built.synapses[(p.src, p.dst, p.lag)] = syn
            self.objects.append(syn)

    # ----------------------------------------------------------------- step 4: the network
    def check_plasticity_used(self) -> None:
        """Refuse plasticity asked for a pair without spike-driven Synapses."""
        if self.plasticity:
            from snnbridge.errors import UnsupportedNodeError

            src, dst = next(iter(self.plasticity))
            raise UnsupportedNodeError(f"backend 'brian2': no spike-driven Synapses from '{src}' to '{dst}' to make "
                                       f"plastic (pairs: {sorted(k[:2] for k in self.built.synapses)})", node=dst)

    def finish(self) -> Built:
        """Schedule plasticity's post-synaptic pathways and make the ``Network``."""
        for dst, syn in self.post_pathways:  # post-synaptic spikes of this step, as soon as they exist
            syn.post.when = "synapses"
            syn.post.order = self.built.slots[dst]
        self.built.net = self.b2.Network(*self.objects, name="snnbridge_net")
        return self.built


def constant_values(plan: Plan, g: GroupSpec, use_i_in: bool) -> dict[str, np.ndarray]:
    """Per-neuron constants of target group ``g`` (one sample), by Brian2 variable name, in declaration order.

    Only values, never structure: two graphs whose plans have the same structure declare the same names.
    """
    shape = tuple(plan.graph.in_shapes[g.node])
    values: dict[str, np.ndarray] = {}
    if g.kind == "Threshold":
        values["thr"] = g.threshold
    else:
        c = g.coeff
        for k in ("decay", "gain", "bias"):
            values[k] = _per_neuron(getattr(c, k), shape)
        if g.cuba:
            values["syn_decay"] = _per_neuron(c.syn_decay, shape)
            values["syn_gain"] = _per_neuron(c.syn_gain, shape)
        if c.spiking:
            values["thr"] = _per_neuron(c.threshold, shape)
            if g.timing == "immediate" and g.reset == "zero":
                values["vr"] = _per_neuron(c.v_reset, shape)
        if g.v_init is not None:
            values["v0"] = g.v_init
        if g.i_init is not None:
            values["i0"] = g.i_init
    if use_i_in:
        values["b0"] = g.b0
        for lag, b in g.lag_bias.items():
            values[f"bl{lag}"] = b
    return values


def initial_values(g: GroupSpec, use_i_in: bool) -> dict[str, np.ndarray]:
    """The initial state of target group ``g`` (one sample): ``I_in`` (the constant drive), ``v``, ``isyn``."""
    out: dict[str, np.ndarray] = {}
    if use_i_in:
        out["I_in"] = g.b0
    if g.v_init is not None:
        out["v"] = g.v_init
    if g.i_init is not None:
        out["isyn"] = g.i_init
    return out


def assign_parameters(built: Built, plan: Plan) -> None:
    """Write the weights, constants and initial state of ``plan`` into the runtime network ``built`` of a plan
    with the same structure and connectivity (the network's stored initial state is *not* updated here).

    Every value goes straight into Brian2's arrays (cast to their float type as Brian2 would), copy by copy.
    """
    n_cp = built.n_copies
    for g in plan.sinks:
        grp = built.groups[g.node]
        use_i_in = "I_in" in grp.variables
        for k, v in {**constant_values(plan, g, use_i_in), **initial_values(g, use_i_in)}.items():
            arr = grp.variables[k].get_value()
            arr.reshape(n_cp, g.size)[:] = np.asarray(v, dtype=np.float64)
    for p in plan.projections:
        arr = built.synapses[(p.src, p.dst, p.lag)].variables["w"].get_value()
        arr.reshape(n_cp, p.size)[:] = p.w


def neuron_update(g: GroupSpec, drive: str) -> list[str]:
    """Brian2 statements integrating the membrane ``v`` of neuron group ``g`` from ``drive`` (one step).

    Written exactly as :func:`snnbridge.bridge.semantics.neuron_step` evaluates them (same operations, same
    order): ``immediate`` timing ``v = decay*v + (gain*drive + bias)`` (the reset is Brian2's reset after the
    threshold); ``delayed`` / ``immediate_rechecked`` first set the reset flag ``r = int(v > thr)`` from the
    carried membrane, then ``subtract``: ``v = (decay*v + (...)) - r*thr``; ``zero`` on the ``state``:
    ``v = decay*(v*(1 - r)) + (...)``; ``zero`` on the ``membrane``: ``v = u - u*r``.
    """
    integrate = f"v = decay*v + (gain*{drive} + bias)"
    if g.timing == "immediate":
        return [integrate]
    code = [f"r = int(v {_cmp(g)} thr)"]
    if g.reset == "zero" and g.zero_target == "state":
        return code + [f"v = decay*(v*(1 - r)) + (gain*{drive} + bias)"]
    code.append(integrate)
    if g.reset == "subtract":
        code.append("v = v - r*thr")
    elif g.reset == "zero":
        code.append("v = v - v*r")
    return code


def recheck_code(g: GroupSpec) -> str:
    """The carried state after an ``immediate_rechecked`` step (every neuron, after the threshold and the
    membrane monitor): ``v - (s - r)*thr`` (subtract) or ``v - (s - r)*v`` (zero), with ``s = int(v > thr)``."""
    return f"v = v - (int(v {_cmp(g)} thr) - r)*" + ("thr" if g.reset == "subtract" else "v")


def _cmp(g: GroupSpec) -> str:
    """The threshold comparison of group ``g``: ``>`` (strict, default) or ``>=`` (inclusive)."""
    return ">=" if g.inclusive else ">"


def _is_analog(plan: Plan, p: Projection, input_spiking: dict[str, bool]) -> bool:
    src = plan.groups[p.src]
    if src.is_input:
        return not input_spiking[p.src]
    return src.analog


def _analog_var(plan: Plan, p: Projection) -> str:
    return "x" if plan.groups[p.src].is_input else "v"


def _per_neuron(a, shape: tuple[int, ...]) -> np.ndarray:
    """A coefficient broadcast to the node shape (NIR parameters broadcast, e.g. per channel), flattened."""
    return np.broadcast_to(np.asarray(a, dtype=np.float64), shape).ravel()


def _synapses(b2, plan: Plan, p: Projection, groups: dict, n_cp: int, clock, delay: int = 0,
              analog_var: str | None = None, target: str | None = None, gate_ns: dict | None = None,
              name: str | None = None, native: bool = False, extra: dict | None = None):
    """One ``Synapses`` object for projection ``p``, tiled over the ``n_cp`` parallel copies.

    ``extra`` (event pathways of a native network): ``model``, ``on_pre``, ``on_post``, ``namespace`` added
    to the definition (e.g. STDP); the delivery ``I_in_post += w`` comes first in ``on_pre``.
    """
    src, dst = plan.groups[p.src], plan.groups[p.dst]
    name = name or f"s{src.index}_{dst.index}_{p.lag}"
    w_decl = "w : 1" if native else "w : 1 (constant)"
    if analog_var is not None:
        model = f"{w_decl}\n{target}_post = w*{analog_var}_pre : 1 (summed)"
        syn = b2.Synapses(groups[p.src], groups[p.dst], model, name=name, clock=clock, namespace={})
    else:
        extra = dict(extra or {})
        on_pre = "I_in_post += w"
        if gate_ns:
            on_pre = f"I_in_post += w*{next(iter(gate_ns))}(t)"
        model = w_decl + ("\n" + extra["model"] if extra.get("model") else "")
        if extra.get("on_pre"):
            on_pre += "\n" + extra["on_pre"]
        namespace = dict(gate_ns or {})
        namespace.update(extra.get("namespace") or {})
        syn = b2.Synapses(groups[p.src], groups[p.dst], model, on_pre=on_pre, on_post=extra.get("on_post"),
                          delay=delay * clock.dt, name=name, clock=clock, namespace=namespace)
    _connect(syn, p, n_cp, src.size, dst.size)
    if _runtime():  # straight into Brian2's array, copy by copy (no tiled temporary)
        syn.variables["w"].get_value().reshape(n_cp, p.size)[:] = p.w
    else:
        syn.w = p.w if n_cp == 1 else np.tile(p.w, n_cp)
    return syn


CONNECT_CHUNK = 1 << 22
"""Most synapses per ``Synapses.connect`` call.  Brian2 holds several copies of the index arrays it is given while
it creates synapses (an int32 cast, a repeat, its own arrays: ~24 bytes per synapse besides the ones it keeps), so
larger projections are connected chunk by chunk, which bounds those temporaries (``docs/benchmarks.md``)."""


def _connect(syn, p: Projection, n_cp: int, src_size: int, dst_size: int) -> None:
    """``syn.connect`` for projection ``p`` tiled over ``n_cp`` copies (neuron ``c*size + n``), in sample order."""
    itype = np.int32 if n_cp * max(src_size, dst_size) < 2 ** 31 else np.int64  # Brian2 stores int32 indices
    if n_cp * p.size <= CONNECT_CHUNK:  # one call (what small networks and their generated code always had)
        offs_src = (np.arange(n_cp, dtype=itype) * src_size)[:, None]
        offs_dst = (np.arange(n_cp, dtype=itype) * dst_size)[:, None]
        syn.connect(i=(p.pre.astype(itype, copy=False)[None, :] + offs_src).ravel(),
                    j=(p.post.astype(itype, copy=False)[None, :] + offs_dst).ravel())
        return
    for c in range(n_cp):
        for a in range(0, p.size, CONNECT_CHUNK):
            b = min(p.size, a + CONNECT_CHUNK)
            syn.connect(i=p.pre[a:b].astype(itype) + itype(c * src_size),
                        j=p.post[a:b].astype(itype) + itype(c * dst_size))


def _runtime() -> bool:
    """Whether Brian2's active device is the runtime device (numpy/cython: arrays live in this process)."""
    from brian2.devices.device import RuntimeDevice, get_device

    return isinstance(get_device(), RuntimeDevice)


# --------------------------------------------------------------------------- layout conversions


def to_columns(x: torch.Tensor, layout: Layout, out: np.ndarray | None = None) -> np.ndarray:
    """``[T, B, *shape]`` → float64 ``[rounds*T, copies*size]`` (sample ``r*copies + c`` → round r, copy c).

    Written into ``out`` when given (one pass when the batch fills a single round).
    """
    T, B = x.shape[:2]
    flat = x.reshape(T, B, -1)
    size = flat.shape[2]
    if out is None:
        out = np.empty((layout.total_steps, layout.copies * size), dtype=np.float64)
    if layout.rounds == 1 and B == layout.copies:
        np.copyto(out, flat.reshape(T, B * size).numpy(), casting="safe")
        return out
    view = out.reshape(layout.rounds, T, layout.copies, size)
    src = flat.numpy()
    for r in range(layout.rounds):
        n = max(0, min(layout.copies, B - r * layout.copies))
        np.copyto(view[r, :, :n], src[:, r * layout.copies:r * layout.copies + n], casting="safe")
        view[r, :, n:] = 0.0
    return out


def from_columns(values: np.ndarray, layout: Layout, B: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`to_columns` for recorded values ``[rounds*T, copies*size]`` → ``[T, B, *shape]``."""
    size = int(np.prod(shape, dtype=np.int64))
    v = torch.from_numpy(np.ascontiguousarray(values)).reshape(layout.rounds, layout.steps, layout.copies, size)
    v = v.permute(1, 0, 2, 3).reshape(layout.steps, layout.capacity, size)[:, :B]
    return v.reshape((layout.steps, B) + tuple(shape)).contiguous()


def spikes_from_events(i: np.ndarray, t: np.ndarray, dt: float, layout: Layout, B: int,
                       shape: tuple[int, ...]) -> torch.Tensor:
    """Spike-monitor events (neuron index, time in s) → ``bool [T, B, *shape]``."""
    size = int(np.prod(shape, dtype=np.int64))
    step = np.rint(np.asarray(t, dtype=np.float64) / dt).astype(np.int64)
    i = np.asarray(i, dtype=np.int64)
    b = (step // layout.steps) * layout.copies + i // size
    keep = b < B
    out = np.zeros((layout.steps, B, size), dtype=bool)
    out[(step % layout.steps)[keep], b[keep], (i % size)[keep]] = True
    return torch.from_numpy(out).reshape((layout.steps, B) + tuple(shape))
