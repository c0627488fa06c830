"""Random valid NIR graphs, for checking backends on graphs nobody wrote by hand (property-based conformance).

:func:`random_case` draws, from one seed, a graph of 1–5 layers over flat, image or sequence inputs —
``Affine``, ``Linear``, ``Conv2d`` / ``Conv1d`` (kernel, stride, padding, dilation, groups), ``AvgPool2d`` /
``SumPool2d``, ``Flatten``, ``Scale`` and every neuron type (``LIF``, ``IF``, ``CubaLIF``, ``LI``, ``I``,
``CubaLI``, ``Threshold``) with per-neuron parameters (``tau``, ``r``, ``v_leak``, ``v_threshold``, ``v_reset``),
optionally a recurrent edge, a skip connection (fan-in), a ``Delay`` and a nested graph — together with semantics
the graph's metadata records (``dt``, reset mode, integration, threshold comparison, and per node a reset timing or
initial state), and seeded spike inputs ``[T, B, *input_shape]``.  The weights of each synaptic layer are rescaled (on
the reference executor) until the spiking node it drives fires in some, not all, steps, so that every spike
decision is exercised.

Same seed → same case.  Use it to test a backend::

    for seed in range(50):
        case = random_case(seed)
        result = conform(case.graph, case.inputs, backends=["snntorch", "norse"])
        assert all(r.status == "pass" or refused(r) for r in result.backends.values())
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import torch

from snnbridge.bridge import semantics as sem
from snnbridge.validation.node_suite import Case, chain

NEURONS = ("LIF", "IF", "CubaLIF", "LI", "I", "CubaLI", "Threshold")
SPIKING = ("LIF", "IF", "CubaLIF", "Threshold")
WEIGHTED = ("Affine", "Linear", "Conv1d", "Conv2d")


@dataclass(frozen=True)
class Options:
    """What :func:`random_case` may draw (switch features off for a backend that lacks them)."""

    images: bool = True
    """Image ``[C, H, W]`` and sequence ``[C, L]`` inputs with Conv2d / Conv1d / pooling / Flatten (else flat only)."""
    recurrent: bool = True
    fan_in: bool = True
    delay: bool = False
    """``Delay`` nodes (the reference, Brian2 and the torch-graph backends that list Delay run them)."""
    node_options: bool = True
    """Per-node metadata: reset timings ``delayed`` / ``immediate_rechecked``, ``v_init``."""
    max_layers: int = 5
    fire: bool = True
    """Rescale the weights until each spiking node fires in some steps (runs the reference executor)."""
    neurons: tuple[str, ...] = NEURONS
    """The neuron node types drawn (a subset of :data:`NEURONS`)."""
    uniform: bool = False
    """One value per parameter and layer (libraries whose layers take scalars)."""
    unit_gain: bool = False
    """``r = 1``, ``w_in = 1``, ``v_leak = 0``, ``v_reset = 0`` (the input gain ``1 - decay`` that most libraries
    hard-wire)."""
    scale_nodes: bool = True
    resets: tuple[str, ...] = sem.RESET_MODES
    thresholds: tuple[str, ...] = sem.THRESHOLD_COMPARES
    pooling: tuple[str, ...] = ("AvgPool2d", "SumPool2d")
    nested: bool = True
    """Sometimes wrap a neuron node (with its recurrent loop) into a nested ``nir.NIRGraph`` with its own Input and
    Output, as the NIR paper's Braille graph holds its recurrent layer."""


def _draw(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _per_neuron(rng: np.random.Generator, shape: tuple, low: float, high: float, uniform: float = 0.5) -> np.ndarray:
    """Per-neuron values in ``[low, high]``, or (with probability ``uniform``) one value for all."""
    if rng.random() < uniform:
        return np.full(shape, float(rng.uniform(low, high)))
    return rng.uniform(low, high, shape)


def _neuron(rng: np.random.Generator, kind: str, shape: tuple, dt: float, reset: str) -> nir.NIRNode:
    """A neuron node of ``kind`` on ``shape`` with per-neuron parameters (decays in ``(0, 1)`` at ``dt``)."""
    tau = lambda: _per_neuron(rng, shape, 1.5 * dt, 25 * dt)  # noqa: E731
    r = _per_neuron(rng, shape, 0.5, 3.0)
    leak = np.zeros(shape) if rng.random() < 0.6 else _per_neuron(rng, shape, -0.3, 0.3)
    thr = _per_neuron(rng, shape, 0.3, 1.5)
    v_reset = np.zeros(shape) if rng.random() < 0.7 else _per_neuron(rng, shape, -0.4, 0.2)
    if kind == "LIF":
        return nir.LIF(tau=tau(), r=r, v_leak=leak, v_threshold=thr, v_reset=v_reset)
    if kind == "IF":
        return nir.IF(r=r, v_threshold=thr, v_reset=v_reset)
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=tau(), tau_mem=tau(), r=r, v_leak=leak, v_threshold=thr, v_reset=v_reset,
                           w_in=_per_neuron(rng, shape, 0.5, 2.0))
    if kind == "LI":
        return nir.LI(tau=tau(), r=r, v_leak=leak)
    if kind == "I":
        return nir.I(r=r)
    if kind == "CubaLI":
        return nir.CubaLI(tau_syn=tau(), tau_mem=tau(), r=r, v_leak=leak, w_in=_per_neuron(rng, shape, 0.5, 2.0))
    return nir.Threshold(threshold=_per_neuron(rng, shape, 0.0, 1.0))


def _conv(rng: np.random.Generator, shape: tuple) -> tuple[nir.Conv2d, tuple]:
    c, h, w = shape
    groups = 2 if c % 2 == 0 and rng.random() < 0.2 else 1
    c_out = int(rng.integers(1, 3)) * groups * (1 if groups > 1 else int(rng.integers(1, 4)))
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    d = (1, 1) if rng.random() < 0.8 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
    out = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for n, pp, dd, kk, ss in zip((h, w), p, d, k, s))
    if min(out) < 1:
        return None, shape
    weight = rng.normal(0, 1.0, (c_out, c // groups) + k)
    bias = rng.normal(0, 0.1, c_out) if rng.random() < 0.7 else np.zeros(c_out)
    node = nir.Conv2d(input_shape=(h, w), weight=weight, stride=np.array(s), padding=np.array(p),
                      dilation=np.array(d), groups=groups, bias=bias)
    return node, (c_out,) + out


def _conv1d(rng: np.random.Generator, shape: tuple) -> tuple[nir.Conv1d, tuple]:
    c, n = shape
    groups = 2 if c % 2 == 0 and rng.random() < 0.2 else 1
    c_out = int(rng.integers(1, 4)) * groups
    k, s, p = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    d = 1 if rng.random() < 0.8 else 2
    out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    if out < 1:
        return None, shape
    bias = rng.normal(0, 0.1, c_out) if rng.random() < 0.7 else np.zeros(c_out)
    node = nir.Conv1d(input_shape=n, weight=rng.normal(0, 1.0, (c_out, c // groups, k)), stride=s, padding=p,
                      dilation=d, groups=groups, bias=bias)
    return node, (c_out, out)


def _pool(rng: np.random.Generator, shape: tuple, kinds: tuple[str, ...] = ("AvgPool2d", "SumPool2d")
          ) -> tuple[nir.NIRNode, tuple]:
    c, h, w = shape
    k = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = (0, 0) if rng.random() < 0.7 else (min(1, k[0] // 2), min(1, k[1] // 2))
    out = tuple((n + 2 * pp - kk) // ss + 1 for n, pp, kk, ss in zip((h, w), p, k, s))
    if min(out) < 1:
        return None, shape
    cls = nir.AvgPool2d if rng.random() < 0.5 else nir.SumPool2d
    if cls.__name__ not in kinds:
        if not kinds:
            return None, shape
        cls = getattr(nir, kinds[0])
    return cls(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p)), (c,) + out


def _dense(rng: np.random.Generator, n_in: int) -> tuple[nir.NIRNode, tuple]:
    n_out = int(rng.integers(2, 13))
    w = rng.normal(0, 1.0, (n_out, n_in))
    if rng.random() < 0.3:
        w[0] = 0.0  # a silent neuron
    if rng.random() < 0.5:
        return nir.Affine(weight=w, bias=rng.normal(0, 0.1, n_out)), (n_out,)
    return nir.Linear(weight=w), (n_out,)


def _layers(rng: np.random.Generator, shape: tuple, n_layers: int, dt: float, reset: str, opts: Options) -> list:
    """``[(name, node, out_shape)]``: each layer a synaptic node (or pooling) then usually a neuron node."""
    out: list = []
    for i in range(n_layers):
        if len(shape) >= 2:
            choice = rng.random()
            if choice < 0.55:
                node, new = _conv(rng, shape) if len(shape) == 3 else _conv1d(rng, shape)
            elif choice < 0.8 and len(shape) == 3:
                node, new = _pool(rng, shape, opts.pooling)
            else:
                node, new = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), \
                    (int(np.prod(shape)),)
            if node is None:
                node, new = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), \
                    (int(np.prod(shape)),)
            out.append((f"l{i}_{type(node).__name__.lower()}", node, new))
            shape = new
            if isinstance(node, nir.Flatten):
                node, shape = _dense(rng, shape[0])
                out.append((f"l{i}_{type(node).__name__.lower()}", node, shape))
        else:
            node, shape = _dense(rng, shape[0])
            out.append((f"l{i}_{type(node).__name__.lower()}", node, shape))
        if rng.random() < 0.15 and opts.scale_nodes:
            out.append((f"l{i}_scale", nir.Scale(scale=_per_neuron(rng, shape, -0.5, 2.0)), shape))
        if rng.random() < 0.9 or i == n_layers - 1:
            kinds = SPIKING if i < n_layers - 1 and rng.random() < 0.8 else NEURONS
            kinds = tuple(k for k in kinds if k in opts.neurons) or opts.neurons
            kind = _draw(rng, kinds)
            out.append((f"l{i}_{kind.lower()}", _restrict(_neuron(rng, kind, shape, dt, reset), opts), shape))
    return out


def _restrict(node: nir.NIRNode, opts: Options) -> nir.NIRNode:
    """``node`` with the parameters ``opts`` asks for (one value per layer; unit gain)."""
    if opts.unit_gain:
        for key, value in (("r", 1.0), ("w_in", 1.0), ("v_leak", 0.0), ("v_reset", 0.0)):
            if getattr(node, key, None) is not None:
                setattr(node, key, np.full_like(np.asarray(getattr(node, key), dtype=np.float64), value))
    if opts.uniform:
        for key, value in list(node.__dict__.items()):
            if isinstance(value, np.ndarray) and value.ndim and value.size > 1 and key not in ("input_type",
                                                                                                "output_type"):
                setattr(node, key, np.full_like(value, value.reshape(-1)[0]))
    return node


def _scale_to_fire(graph: nir.NIRGraph, x: torch.Tensor, order: list[str], low: float = 0.03, high: float = 0.5,
                   max_iter: int = 10) -> None:
    """Rescale, in order, the weights that drive each spiking node until it fires at a rate in ``[low, high]``."""
    from snnbridge.bridge.executor import ReferenceExecutor

    driver = None
    for name in order:
        node = graph.nodes[name]
        if type(node).__name__ in WEIGHTED:
            driver = node
            continue
        if type(node).__name__ not in SPIKING or driver is None:
            continue
        for _ in range(max_iter):
            rec = ReferenceExecutor(graph).run(x, record=[name], membranes=False)
            rate = float(rec[name].double().mean())
            if low <= rate <= high:
                break
            factor = 1.7 if rate < low else 0.6
            driver.weight = driver.weight * factor
            if getattr(driver, "bias", None) is not None:
                driver.bias = driver.bias * factor
        driver = None


def random_case(seed: int, options: Options = Options()) -> Case:
    """One random graph with its semantics and spike inputs (see the module docstring); deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    dt = float(_draw(rng, (1e-3, 1e-4, 5e-4)))
    s = sem.Semantics(dt=dt, reset=_draw(rng, options.resets), integration=_draw(rng, sem.INTEGRATIONS),
                      threshold=_draw(rng, options.thresholds))
    kind = rng.random()
    if options.images and kind < 0.4:
        in_shape: tuple = (int(rng.integers(1, 4)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    elif options.images and kind < 0.55:
        in_shape = (int(rng.integers(1, 4)), int(rng.integers(3, 13)))  # channels × length (Conv1d)
    else:
        in_shape = (int(rng.integers(2, 17)),)
    n_layers = int(rng.integers(1, options.max_layers + 1))
    layers = _layers(rng, in_shape, n_layers, dt, s.reset, options)
    extra: list[tuple[str, str]] = []
    nodes = [(name, node) for name, node, _ in layers]
    shapes = {name: shp for name, _, shp in layers}
    out_shape = layers[-1][2]
    if options.node_options:
        for name, node in nodes:
            if type(node).__name__ in ("LIF", "IF", "CubaLIF") and rng.random() < 0.25:
                node.metadata = {"reset_timing": _draw(rng, ("delayed", "immediate_rechecked"))}
                node.v_reset = np.zeros_like(node.v_reset)  # a delayed zero reset needs v_reset = 0
            elif type(node).__name__ in sem.NEURON_TYPES and rng.random() < 0.1:
                node.metadata = {"v_init": rng.uniform(-0.2, 0.4, shapes[name])}
    graph = chain(nodes, in_shape, out_shape, s, extra)
    flat_spiking = [n for n, node in nodes if type(node).__name__ in ("LIF", "IF", "CubaLIF") and len(shapes[n]) == 1]
    if options.recurrent and flat_spiking and rng.random() < 0.3:
        target = _draw(rng, flat_spiking)
        n = shapes[target][0]
        graph.nodes[f"{target}_rec"] = nir.Linear(weight=rng.normal(0, 0.5, (n, n)))
        graph.edges += [(target, f"{target}_rec"), (f"{target}_rec", target)]
    weighted = [i for i, (n, node) in enumerate(nodes) if type(node).__name__ in ("Affine", "Linear")]
    if options.fan_in and weighted and rng.random() < 0.25:
        i = _draw(rng, weighted)
        name, node = nodes[i]
        src = nodes[i - 1][0] if i > 0 else "input"
        n_in = node.weight.shape[1]
        if (shapes.get(src) or in_shape) == (n_in,):
            graph.nodes[f"{name}_skip"] = nir.Linear(weight=rng.normal(0, 0.5, node.weight.shape))
            succ = nodes[i + 1][0] if i + 1 < len(nodes) else "output"
            graph.edges += [(src, f"{name}_skip"), (f"{name}_skip", succ)]
    if options.delay and rng.random() < 0.3:
        i = int(rng.integers(len(nodes)))
        name = nodes[i][0]
        succ = nodes[i + 1][0] if i + 1 < len(nodes) else "output"
        graph.edges.remove((name, succ))
        steps = rng.integers(0, 4, shapes[name])
        graph.nodes[f"{name}_delay"] = nir.Delay(delay=steps.astype(np.float64) * dt)
        graph.edges += [(name, f"{name}_delay"), (f"{name}_delay", succ)]
    T, B = int(rng.integers(4, 21)), int(rng.integers(1, 4))
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((T, B) + in_shape, generator=g) < float(rng.uniform(0.1, 0.5))).double()
    if options.fire:
        _scale_to_fire(graph, x, [n for n, _ in nodes])
    if options.nested:
        _nest(graph, [n for n, node in nodes if type(node).__name__ in sem.NEURON_TYPES], shapes,
              np.random.default_rng([seed, 7]))  # its own stream: the other draws stay as they were
    return Case(f"random_{seed}", graph, x, {})


def _nest(graph: nir.NIRGraph, neurons: list[str], shapes: dict, rng: np.random.Generator) -> None:
    """With probability 0.3, move one neuron node (and its ``_rec`` loop) into a nested graph ``blk_<name>``."""
    if not neurons or rng.random() >= 0.3:
        return
    name = _draw(rng, neurons)
    inner = {name} | ({f"{name}_rec"} if f"{name}_rec" in graph.nodes else set())
    shape = np.array(shapes[name])
    sub_nodes = {"input": nir.Input(input_type={"input": shape}), **{n: graph.nodes.pop(n) for n in sorted(inner)},
                 "output": nir.Output(output_type={"output": shape})}
    sub_edges = [("input", name), (name, "output")] + [(a, b) for a, b in graph.edges if a in inner and b in inner]
    block = f"blk_{name}"
    graph.nodes[block] = nir.NIRGraph(nodes=sub_nodes, edges=sub_edges, type_check=False)
    graph.edges = [(block if a == name else a, block if b == name else b) for a, b in graph.edges
                   if not (a in inner and b in inner)]
