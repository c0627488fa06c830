"""Export a :class:`~snnbridge.models.network.Network` to NIR, and import such a graph back.

Synapses become ``Affine``/``Linear``/``Conv2d``/``AvgPool2d``/``Flatten``; neurons
``LIF``/``IF`` (exactly the node each layer steps with).  What NIR cannot say
goes into the graph metadata (:mod:`snnbridge.bridge.metadata`), including the
full network config so that :func:`network_from_nir` can rebuild the module.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from snnbridge.bridge.io import write_graph
from snnbridge.bridge.metadata import make_metadata, plain
from snnbridge.errors import GraphError, SnnBridgeError


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _synapse_node(mod: nn.Module, in_shape: tuple[int, ...]) -> nir.NIRNode:
    if isinstance(mod, nn.Linear):
        if mod.bias is not None:
            return nir.Affine(weight=_np(mod.weight), bias=_np(mod.bias))
        return nir.Linear(weight=_np(mod.weight))
    if isinstance(mod, nn.Conv2d):
        bias = _np(mod.bias) if mod.bias is not None else np.zeros(mod.out_channels, dtype=np.float32)
        return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=_np(mod.weight), stride=np.array(mod.stride),
                          padding=np.array(mod.padding), dilation=np.array(mod.dilation), groups=int(mod.groups),
                          bias=bias)
    if isinstance(mod, nn.AvgPool2d):
        k = np.broadcast_to(np.asarray(mod.kernel_size), (2,)).astype(np.int64)
        s = np.broadcast_to(np.asarray(mod.stride), (2,)).astype(np.int64)
        p = np.broadcast_to(np.asarray(mod.padding), (2,)).astype(np.int64)
        return nir.AvgPool2d(kernel_size=k.copy(), stride=s.copy(), padding=p.copy())
    if isinstance(mod, nn.Flatten):
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1)
    raise GraphError(f"cannot export layer of type {type(mod).__name__}")


def to_nir(network, encoder: str | None = None) -> nir.NIRGraph:
    """The NIR graph of an SNN-mode ``network`` (weights copied, float32 as trained, neurons float64)."""
    from snnbridge.models.network import Network

    if not isinstance(network, Network):
        raise SnnBridgeError(f"to_nir expects an snnbridge Network, got {type(network).__name__}")
    cfg = network.config
    if cfg.mode != "snn":
        raise SnnBridgeError("NIR has no ReLU node, so an ANN cannot be exported as it is; convert it to an "
                             "SNN first (snnbridge.models.conversion.convert_to_snn) or build it with mode='snn'")
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(cfg.input_shape)})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    shape = cfg.input_shape
    x = torch.zeros((1,) + tuple(shape), dtype=next(network.parameters(), torch.zeros(())).dtype)
    for syn, neu in network.plan:
        mod = network.synapses[syn]
        nodes[syn] = _synapse_node(mod, shape)
        edges.append((prev, syn))
        with torch.no_grad():
            x = mod(x)
        shape = tuple(x.shape[1:])
        prev = syn
        if neu is not None:
            nodes[neu] = network.neurons[neu].nir_node
            edges.append((prev, neu))
            prev = neu
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    meta = make_metadata(cfg.semantics, structure=network.structure.text, encoder=encoder,
                         network_config=json.dumps(asdict(cfg), sort_keys=True))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)


def export(network, path: str | Path, encoder: str | None = None) -> Path:
    """Write ``network`` to ``path`` as a ``.nir`` file (atomically) and return the path."""
    return write_graph(path, to_nir(network, encoder=encoder))


def network_from_nir(graph: nir.NIRGraph):
    """Rebuild the :class:`Network` that :func:`to_nir` exported (needs snnbridge metadata)."""
    from snnbridge.models.network import Network, NetworkConfig

    meta = plain(dict(graph.metadata or {}))
    if "network_config" not in meta:
        raise GraphError("graph carries no snnbridge network_config (it was not exported by snnbridge); run it "
                         "with the ReferenceExecutor or a backend instead", field="metadata")
    net = Network(NetworkConfig(**json.loads(meta["network_config"])))
    with torch.no_grad():
        for name, mod in net.synapses.items():
            node = graph.nodes.get(name)
            if node is None:
                raise GraphError("missing in graph", node=name)
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                mod.weight.copy_(torch.as_tensor(np.asarray(node.weight)))
                if mod.bias is not None:
                    mod.bias.copy_(torch.as_tensor(np.asarray(node.bias)))
    return net
