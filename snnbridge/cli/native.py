"""``snnbridge from-native``: a trained snnTorch, Norse, SpikingJelly, Sinabs, Rockpool or Spyx model → a ``.nir``
file, checked against the original.

The model comes from the user's own code (``package.module:factory`` or ``path/to/file.py:factory``, a callable
returning the ``torch.nn.Module`` — or, for Spyx, the ``flax.nnx.Module`` — or the module object itself); a torch
model's weights, when given, from a ``state_dict`` file read with ``torch.load(weights_only=True)`` (no pickled code
runs; a Spyx factory loads its own parameters).  The graph is written only after the
import, the optional check and every refusal have passed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Optional

import typer

from snnbridge.errors import SnnBridgeError


def _is_nnx(obj) -> bool:
    """Whether ``obj`` is a flax nnx module (a Spyx model), without importing flax when it is not installed."""
    return any(c.__module__.startswith("flax.nnx") and c.__name__ == "Module" for c in type(obj).__mro__)


def load_factory(spec: str):
    """The ``torch.nn.Module`` (or Spyx ``flax.nnx.Module``) named by ``spec`` (``module.path:name`` or
    ``file.py:name``; a callable is called)."""
    import torch

    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise SnnBridgeError(f"model '{spec}': expected 'package.module:factory' or 'path/to/file.py:factory'")
    try:
        if target.endswith(".py") or "/" in target:
            path = Path(target)
            if not path.is_file():
                raise SnnBridgeError(f"model '{spec}': {path} is not a file")
            mod_spec = importlib.util.spec_from_file_location(f"snnbridge_user_{path.stem}", path)
            if mod_spec is None or mod_spec.loader is None:
                raise SnnBridgeError(f"model '{spec}': cannot load {path} as Python")
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        obj = getattr(module, attr)
    except SnnBridgeError:
        raise
    except (ImportError, AttributeError, SyntaxError, OSError) as e:
        raise SnnBridgeError(f"model '{spec}': {type(e).__name__}: {e}") from None
    if callable(obj) and not isinstance(obj, torch.nn.Module) and not _is_nnx(obj):
        obj = obj()
    if not isinstance(obj, torch.nn.Module) and not _is_nnx(obj):
        raise SnnBridgeError(f"model '{spec}' gives a {type(obj).__name__}, not a torch.nn.Module (or a Spyx "
                             f"flax.nnx.Module)")
    return obj


def load_weights(module, path: Path) -> None:
    """Load a ``state_dict`` saved with ``torch.save(model.state_dict(), path)`` — tensors only, no code."""
    import pickle

    import torch

    if _is_nnx(module):
        raise SnnBridgeError(f"--weights {path}: a Spyx (flax nnx) model holds its parameters itself; load them in "
                             f"the factory")
    if not path.is_file():
        raise SnnBridgeError(f"--weights {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SnnBridgeError(f"--weights {path}: not a plain state_dict of tensors ({first[:200]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SnnBridgeError(f"--weights {path}: holds a {type(state).__name__}, not a state_dict")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise SnnBridgeError(f"--weights {path} does not fit the model: {' '.join(lines[1:3])[:300]}") from None


def register(app: typer.Typer) -> None:
    """Add ``from-native`` to the ``snnbridge`` command line."""

    @app.command("from-native")
    def from_native(
        model: str = typer.Argument(..., help="package.module:factory or path/to/file.py:factory (a callable "
                                              "returning the torch.nn.Module or Spyx nnx module, or the module "
                                              "itself)."),
        input_shape: str = typer.Option(..., "--input-shape", help="Per-sample input shape, e.g. 784 or 2,34,34."),
        output: Path = typer.Option(..., "-o", "--output", help="The .nir file to write."),
        weights: Optional[Path] = typer.Option(None, help="A state_dict file (torch.save(model.state_dict()))."),
        dt: float = typer.Option(1e-3, help="Step (s) written to the graph (snnTorch has none; Norse cells "
                                            "carry their own, which must agree)."),
        check_samples: int = typer.Option(4, help="Random inputs on which the graph is checked against the "
                                                  "original module before writing (0: no check)."),
        check_steps: int = typer.Option(50, help="Steps of that check."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
        library: Optional[str] = typer.Option(None, help="snntorch, norse, spikingjelly, sinabs, rockpool or spyx "
                                                         "(default: told by the model's layers)."),
    ) -> None:
        """Import a trained snnTorch, Norse, SpikingJelly, Sinabs, Rockpool or Spyx model into NIR, check it, write
        it."""
        import torch

        from snnbridge import backends
        from snnbridge.bridge.io import write_graph
        from snnbridge.cli import console, parse_shape, positive

        positive(dt, "--dt")
        positive(check_samples, "--check-samples", allow_zero=True, maximum=10_000)
        positive(check_steps, "--check-steps", maximum=100_000)
        shape = parse_shape(input_shape, "--input-shape")
        if output.exists() and not overwrite:
            raise SnnBridgeError(f"{output} exists; pass --overwrite to replace it")
        if output.is_dir():
            raise SnnBridgeError(f"{output} is a folder, not a .nir file path")
        module = load_factory(model)
        if weights is not None:
            load_weights(module, weights)
        if library is not None and library not in backends.NATIVE_LIBRARIES:
            raise SnnBridgeError(f"--library must be one of {', '.join(backends.NATIVE_LIBRARIES)}, got '{library}'")
        lib = library or backends.native_library(module)
        graph = backends.get(lib).from_native(module, shape, dt=dt)
        if check_samples:
            from snnbridge.validation import conform

            gen = torch.Generator().manual_seed(0)
            x = (torch.rand((check_steps, check_samples) + tuple(shape), generator=gen) < 0.3).double()
            result = conform(graph, x, backends=["reference"], original=module)
            orig = result.backends["original"]
            if orig.status != "pass":
                raise SnnBridgeError(f"the imported graph does not step as the original {lib} module: "
                                     f"{'; '.join(orig.failures[:2]) or orig.reason}")
            layers = [n for n, r in orig.nodes.items() if r.compared and r.spiking]
            console.print(f"checked: the reference semantics reproduces the original {lib} module spike for spike "
                          f"at {len(layers)} spiking layer(s) on {check_samples} random inputs x {check_steps} steps",
                          highlight=False)
        path = write_graph(output, graph)
        console.print(f"wrote {path} ({len(graph.nodes)} nodes, from {lib})", highlight=False)
