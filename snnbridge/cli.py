"""The ``snnbridge`` command line, thin over the library.

Exit codes: 0 success, 1 a check failed (e.g. backends disagree), 2 bad input
(a clear one-line message on stderr, no traceback, no output file written).
Command groups living elsewhere register themselves through a ``register(app)``
function in the modules listed in ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from snnbridge.errors import SnnBridgeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Carry one spiking network across snnTorch, Norse and Brian2 through NIR, and check "
                       "that they agree.")
console = Console()
err_console = Console(stderr=True)

_COMMAND_MODULES = ("snnbridge.validation.cli", "snnbridge.reproduce.cli")


def fail(message: str, code: int = 2) -> None:
    """Print one clear error line and exit with ``code`` (no traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def inspect(file: Path = typer.Argument(..., help="A .nir file."),
            dt: Optional[float] = typer.Option(None, help="Override dt (s) for the shown coefficients."),
            reset: Optional[str] = typer.Option(None, help="Override the reset mode (zero|subtract|none).")) -> None:
    """Show a NIR graph: nodes, shapes, parameter counts, semantics and metadata."""
    from snnbridge.bridge.graph import prepare
    from snnbridge.bridge.io import read_graph

    graph = read_graph(file)
    fg = prepare(graph, dt=dt, reset=reset)
    table = Table(title=f"{file.name}: {len(fg.nodes)} nodes, {len(fg.recurrent)} recurrent edge(s)")
    for col in ("node", "type", "input shape", "output shape", "params", "from"):
        table.add_column(col, overflow="fold")
    total = 0
    for name in fg.order:
        n = fg.parameter_count(name)
        total += n
        preds = ", ".join(p + (" (t-1)" if (p, name) in fg.recurrent else "") for p in fg.preds[name])
        table.add_row(name, fg.type_of(name), str(list(fg.in_shapes[name])), str(list(fg.out_shapes[name])),
                      f"{n:,}", preds)
    console.print(table)
    s = fg.semantics
    src = "metadata" if "dt" in fg.metadata else "defaults (no snnbridge metadata)"
    console.print(f"parameters: {total:,}   dt={s.dt:g} s   reset={s.reset}   integration={s.integration}   "
                  f"[dim]({src})[/]")
    meta = Table(title="metadata", show_header=True)
    meta.add_column("key")
    meta.add_column("value", overflow="fold")
    for k, v in sorted(fg.metadata.items()):
        text = str(v)
        meta.add_row(k, text if len(text) < 200 else text[:200] + "…")
    if fg.metadata:
        console.print(meta)


@app.command()
def export(source: str = typer.Argument(..., help="A structure (e.g. 'Input-32C3-AP2-10') or a checkpoint file."),
           output: Path = typer.Option(..., "-o", "--output", help="The .nir file to write."),
           input_shape: str = typer.Option("1,28,28", help="Per-sample input shape for a structure, e.g. 784 or "
                                                           "2,34,34."),
           neuron: str = typer.Option("lif", help="lif or if."),
           decay: float = typer.Option(0.25, help="LIF decay factor k."),
           threshold: float = typer.Option(0.5, help="Firing threshold."),
           reset: str = typer.Option("zero", help="zero, subtract or none."),
           dt: float = typer.Option(1e-3, help="Step in seconds written to the metadata."),
           seed: int = typer.Option(0, help="Seed for the random weights of a structure.")) -> None:
    """Export a network (a structure with seeded random weights, or a trained checkpoint) to NIR."""
    import torch

    from snnbridge.bridge.export import export as do_export
    from snnbridge.models import Network

    if Path(source).is_file():
        net = Network.load(source)
        if not net.is_snn:
            from snnbridge.models.network import NetworkConfig

            raise SnnBridgeError(f"{source} holds an ANN ({NetworkConfig.__name__}.mode='ann'); NIR has no ReLU, "
                                 "convert it to an SNN first")
    else:
        try:
            shape = tuple(int(s) for s in input_shape.split(","))
        except ValueError:
            raise SnnBridgeError(f"--input-shape '{input_shape}' is not a comma-separated list of integers") from None
        torch.manual_seed(seed)
        try:
            net = Network(structure=source, input_shape=shape, neuron=neuron, decay=decay, threshold=threshold,
                          reset=reset, dt=dt)
        except ValueError as e:
            raise SnnBridgeError(str(e)) from None
    path = do_export(net, output)
    console.print(f"wrote {path} ({net.structure.text}, {sum(p.numel() for p in net.parameters()):,} weights)")


@app.command()
def backends() -> None:
    """List the backends and whether each can run here."""
    from snnbridge.backends import status

    for name, st in status().items():
        console.print(f"{name:20s} {st}")


def _register_commands() -> None:
    for mod in _COMMAND_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and mod.startswith(e.name):
                continue
            raise
        m.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning snnbridge errors into exit code 2 without a traceback."""
    try:
        rc = app(args=argv, standalone_mode=False)  # click returns (not raises) typer.Exit's code here
    except SnnBridgeError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False)
        return 2
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        return 130
    except Exception as e:  # click's usage errors (missing argument, bad option) carry show()/exit_code
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            return 2
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
