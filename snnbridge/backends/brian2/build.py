"""Turn a :class:`~snnbridge.backends.brian2.plan.Plan` into Brian2 objects, for any device.

Schedule (all inside Brian2's ``synapses`` slot, one ``order`` number each, targets in
``FlatGraph.order``; see the module docstring of :mod:`snnbridge.backends.brian2_backend`)::

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
    import brian2 as b2
    from brian2.utils.logger import BrianLogger

    BrianLogger.suppress_name("only_threshold")  # Threshold/no-reset groups have a threshold but no reset on purpose
    names = names or Names()
    plasticity = dict(plasticity or {})
    second = b2.second
    clock_dt = dt * second
    n_cp = layout.copies
    built = Built(net=None, duration_steps=layout.total_steps)
    objects: list = []
    timed = built.timed

    def timed_array(name: str, ncols: int | None) -> object:
        if ncols is None:
            vals = np.zeros(layout.total_steps)
        else:
            vals = np.zeros((layout.total_steps, ncols))
        ta = b2.TimedArray(vals, dt=clock_dt, name=name)
        timed[name] = ta
        return ta

    gates: dict[int, object] = {}

    def gate(lag: int) -> object:
        if lag not in gates:
            gates[lag] = b2.TimedArray(_gate_values(layout, lag), dt=clock_dt, name=f"gate{lag}")
        return gates[lag]

    used_inputs = {p.src for p in plan.projections if plan.groups[p.src].is_input}
    b2groups: dict[str, object] = {}
    # ----------------------------------------------------------------- inputs
    for g in plan.groups.values():
        if not g.is_input or g.node not in used_inputs:
            continue
        name = names.input_array(g)
        if native and input_spiking[g.node]:
            grp = b2.SpikeGeneratorGroup(g.size * n_cp, np.zeros(0, dtype=np.int64), np.zeros(0) * second,
                                         name=names.group(g), dt=clock_dt)
        elif input_spiking[g.node]:
            ta = timed_array(name, g.size * n_cp)
            grp = b2.NeuronGroup(g.size * n_cp, "", threshold=f"{name}(t, i) > 0.5", namespace={name: ta},
                                 name=names.group(g), dt=clock_dt)
        else:
            ta = timed_array(name, g.size * n_cp)
            built.input_arrays[g.node] = name
            namespace = {name: ta, "t_in": 0 * second} if native else {name: ta}
            grp = b2.NeuronGroup(g.size * n_cp, "x : 1", namespace=namespace, name=names.group(g), dt=clock_dt)
            at = "t - t_in" if native else "t"
            grp.run_regularly(f"x = {name}({at}, i)", when="start", order=0, name=names.operation(g, "in"))
        b2groups[g.node] = grp
        objects.append(grp)
    # ----------------------------------------------------------------- targets
    order = 0

    def next_order() -> int:
        nonlocal order
        order += 1
        return order

    many_rounds = layout.rounds > 1
    pending = []
    for g in plan.sinks:
        shape = tuple(plan.graph.in_shapes[g.node])
        incoming = plan.projections_into(g.node)
        analog_in = [p for p in incoming if _is_analog(plan, p, input_spiking)]
        event_in = [p for p in incoming if p not in analog_in]
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
            namespace[f"ie{g.index}"] = timed_array(f"ie{g.index}", g.size * n_cp)
        for m in range(len(analog_in)):
            model.append(f"I_a{m} : 1")
            terms.append(f"I_a{m}")
        drive = terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"
        code = []
        if g.folded:
            code.append(f"Ix = ie{g.index}(t, i)")
        values: dict[str, np.ndarray] = {}
        if g.kind == "Threshold":
            code.append(f"v = {drive}")
            model.append("thr : 1 (constant)")
            values["thr"] = g.threshold
            threshold, reset = f"v {_cmp(g)} thr", None
        else:
            c = g.coeff
            for k in ("decay", "gain", "bias"):
                model.append(f"{k} : 1 (constant)")
                values[k] = _per_neuron(getattr(c, k), shape)
            if g.cuba:
                model += ["isyn : 1", "syn_decay : 1 (constant)", "syn_gain : 1 (constant)"]
                values["syn_decay"] = _per_neuron(c.syn_decay, shape)
                values["syn_gain"] = _per_neuron(c.syn_gain, shape)
                code.append(f"isyn = syn_decay*isyn + syn_gain*{drive}")
                drive = "isyn"
            threshold = reset = None
            code += neuron_update(g, drive)
            if c.spiking:
                model.append("thr : 1 (constant)")
                values["thr"] = _per_neuron(c.threshold, shape)
                threshold = f"v {_cmp(g)} thr"
                if g.timing != "immediate":
                    model.append("r : 1")  # the reset flag H(v[t-1] - thr) of a delayed/rechecked reset
                elif g.reset == "zero":
                    model.append("vr : 1 (constant)")
                    values["vr"] = _per_neuron(c.v_reset, shape)
                    reset = "v = vr"
                elif g.reset == "subtract":
                    reset = "v = v - thr"
            if g.v_init is not None:
                model.append("v0 : 1 (constant)")
                values["v0"] = g.v_init
            if g.i_init is not None:
                model.append("i0 : 1 (constant)")
                values["i0"] = g.i_init
        if use_i_in:
            model.append("b0 : 1 (constant)")
            values["b0"] = g.b0
            refill = "I_in = b0"
            for lag, b in g.lag_bias.items():
                model.append(f"bl{lag} : 1 (constant)")
                values[f"bl{lag}"] = b
                namespace[f"gate{lag}"] = gate(lag)
                refill += f" + bl{lag}*gate{lag}(t + dt)"
            code.append(refill)
        grp = b2.NeuronGroup(g.size * n_cp, "\n".join(model), threshold=threshold, reset=reset,
                             namespace=namespace, name=names.group(g), dt=clock_dt)
        for k, v in values.items():
            setattr(grp, k, np.tile(np.asarray(v, dtype=np.float64), n_cp))
        if use_i_in:
            grp.I_in = np.tile(g.b0, n_cp)
        if g.v_init is not None:
            grp.v = np.tile(g.v_init, n_cp)
        if g.i_init is not None:
            grp.isyn = np.tile(g.i_init, n_cp)
        b2groups[g.node] = grp
        objects.append(grp)
        if many_rounds:
            clear = ("v = v0" if g.v_init is not None else "v = 0") + (
                ("\nisyn = i0" if g.i_init is not None else "\nisyn = 0") if g.cuba else "")
            grp.run_regularly(clear, dt=layout.steps * clock_dt, when="start", order=1,
                              name=names.operation(g, "round"))
        pending.append((g, grp, code, threshold, reset, analog_in, event_in))
    # ----------------------------------------------------------------- schedule: every group exists now
    post_pathways = []
    for g, grp, code, threshold, reset, analog_in, event_in in pending:
        for m, p in enumerate(analog_in):  # incoming projections, right before the update
            syn = _synapses(b2, plan, p, b2groups, n_cp, clock_dt, analog_var=_analog_var(plan, p), target=f"I_a{m}",
                            name=names.synapses(plan.groups[p.src], g, p.lag), native=native)
            built.synapses[(p.src, p.dst, p.lag)] = syn
            syn.summed_updaters[f"I_a{m}_post"].when = "synapses"
            syn.summed_updaters[f"I_a{m}_post"].order = next_order()
            objects.append(syn)
        for p in event_in:
            late = plan.position(p.src) >= plan.position(p.dst)
            gated = p.lag > 0 and many_rounds
            syn = _synapses(b2, plan, p, b2groups, n_cp, clock_dt, delay=p.lag - int(late),
                            gate_ns={f"gate{p.lag}": gate(p.lag)} if gated else None,
                            name=names.synapses(plan.groups[p.src], g, p.lag), native=native,
                            extra=plasticity.pop((p.src, p.dst), None))
            syn.pre.when = "synapses"
            syn.pre.order = next_order()
            if "post" in syn._synaptic_updaters:
                post_pathways.append((p.dst, syn))
            built.synapses[(p.src, p.dst, p.lag)] = syn
            objects.append(syn)
        grp.run_regularly("\n".join(code), when="synapses", order=next_order(), name=names.operation(g, "update"))
        if threshold is not None:
            grp.thresholder["spike"].when = "synapses"
            grp.thresholder["spike"].order = next_order()
        built.slots[g.node] = next_order()
        if g.node in v_nodes:
            mon = b2.StateMonitor(grp, "v", record=True, when="synapses", order=built.slots[g.node],
                                  name=f"vm{g.index}")
            built.v_monitors[g.node] = mon
            objects.append(mon)
        if reset is not None:
            grp.resetter["spike"].when = "synapses"
            grp.resetter["spike"].order = next_order()
        if g.timing == "immediate_rechecked":
            grp.run_regularly(recheck_code(g), when="synapses", order=next_order(), name=names.operation(g, "recheck"))
        if g.node in spike_nodes and threshold is not None:
            mon = b2.SpikeMonitor(grp, record=True, name=f"sm{g.index}")
            built.spike_monitors[g.node] = mon
            objects.append(mon)
    if plasticity:
        from snnbridge.errors import UnsupportedNodeError

        src, dst = next(iter(plasticity))
        raise UnsupportedNodeError(f"backend 'brian2': no spike-driven Synapses from '{src}' to '{dst}' to make "
                                   f"plastic (pairs: {sorted(k[:2] for k in built.synapses)})", node=dst)
    for dst, syn in post_pathways:  # plasticity: post-synaptic spikes of this step, as soon as they exist
        syn.post.when = "synapses"
        syn.post.order = built.slots[dst]
    built.groups = b2groups
    built.net = b2.Network(*objects, name="snnbridge_net")
    return built


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


def _synapses(b2, plan: Plan, p: Projection, groups: dict, n_cp: int, clock_dt, delay: int = 0,
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
        syn = b2.Synapses(groups[p.src], groups[p.dst], model, name=name, dt=clock_dt, namespace={})
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
                          delay=delay * clock_dt, name=name, dt=clock_dt, namespace=namespace)
    offs_src = (np.arange(n_cp, dtype=np.int64) * src.size)[:, None]
    offs_dst = (np.arange(n_cp, dtype=np.int64) * dst.size)[:, None]
    syn.connect(i=(p.pre[None, :] + offs_src).ravel(), j=(p.post[None, :] + offs_dst).ravel())
    syn.w = np.tile(p.w, n_cp)
    return syn


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
