"""The ``snnbridge`` command line, thin over the library.

Exit codes: 0 success, 1 a check failed (e.g. backends disagree), 2 bad input
(a clear one-line message on stderr, no traceback, no output file written), 3 an internal error (a bug:
one line naming where to report it; ``snnbridge --debug ...`` shows the traceback), 130 Ctrl-C
(143 SIGTERM; temporary files are removed, nothing half-written is left).
The command groups live beside this module (:mod:`.validate`: conform, diff, costs, demo;
:mod:`.reproduce`; :mod:`.native`: from-native; :mod:`.matrix`), each adding its commands with ``register(app)``;
this module holds the app, the consoles, the shared option parsers and the one error boundary (:func:`main`).
No library module imports this package.
"""

from __future__ import annotations

import os
import re
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

BUG_REPORT = "https://github.com/snnbridge/snnbridge/issues"
"""Where unexpected errors (bugs) are reported; the one-line message names it."""

_debug = os.environ.get("SNNBRIDGE_DEBUG", "") not in ("", "0")
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain_text(text: object) -> str:
    """``text`` without terminal escape sequences or control characters (newlines and tabs become spaces)."""
    return _CONTROL.sub("", str(text).replace("\n", " ").replace("\t", " ").replace("\r", " "))


def term(text: object) -> str:
    """A string from a file (node, backend or report field) made safe to print through rich: no escape
    sequences or control characters, and ``[...]`` shown literally instead of read as markup."""
    from rich.markup import escape

    return escape(plain_text(text))


def parse_shape(text: str, option: str) -> tuple[int, ...]:
    """``"2,34,34"`` → ``(2, 34, 34)``; every size > 0, else one clear error naming ``option``."""
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise SnnBridgeError(f"{option} '{text}' is not a comma-separated list of integers") from None
    if not shape or min(shape) <= 0:
        raise SnnBridgeError(f"{option} '{text}': every size must be > 0")
    return shape


def fail(message: str, code: int = 2) -> None:
    """Print one clear error line and exit with ``code`` (no traceback)."""
    err_console.print(f"[bold red]error:[/] {term(message)}", highlight=False)
    raise typer.Exit(code)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an unexpected error "
                                                            "(also: SNNBRIDGE_DEBUG=1).")) -> None:
    """Carry one spiking network across snnTorch, Norse and Brian2 through NIR, and check that they agree."""
    global _debug
    _debug = _debug or debug


def positive(value: int | float | None, option: str, allow_zero: bool = False, maximum: float | None = None) -> None:
    """Refuse a count or size option that is not > 0 (or >= 0), or above ``maximum``: exit 2 with one line."""
    if value is None:
        return
    if isinstance(value, float) and value != value:
        raise SnnBridgeError(f"{option} must be a number, got nan")
    if value < 0 or (value == 0 and not allow_zero):
        raise SnnBridgeError(f"{option} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    if maximum is not None and value > maximum:
        raise SnnBridgeError(f"{option} must be <= {maximum:g}, got {value}")


@app.command()
def inspect(file: Path = typer.Argument(..., help="A .nir file."),
            dt: Optional[float] = typer.Option(None, help="Override dt (s) for the shown coefficients."),
            reset: Optional[str] = typer.Option(None, help="Override the reset mode (zero|subtract|none).")) -> None:
    """Show a NIR graph: nodes, shapes, parameter counts, semantics and metadata."""
    from snnbridge.bridge.graph import prepare
    from snnbridge.bridge.io import read_graph

    graph = read_graph(file)
    fg = prepare(graph, dt=dt, reset=reset)
    table = Table(title=f"{term(file.name)}: {len(fg.nodes)} nodes, {len(fg.recurrent)} recurrent edge(s)")
    for col in ("node", "type", "input shape", "output shape", "params", "from"):
        table.add_column(col, overflow="fold")
    total = 0
    for name in fg.order:
        n = fg.parameter_count(name)
        total += n
        preds = ", ".join(p + (" (t-1)" if (p, name) in fg.recurrent else "") for p in fg.preds[name])
        table.add_row(term(name), term(fg.type_of(name)), str(list(fg.in_shapes[name])),
                      str(list(fg.out_shapes[name])), f"{n:,}", term(preds))
    console.print(table)
    s = fg.semantics
    src = "metadata" if "dt" in fg.metadata else "defaults (no snnbridge metadata)"
    console.print(f"parameters: {total:,}   dt={s.dt:g} s   reset={term(s.reset)}   "
                  f"integration={term(s.integration)}   "
                  f"[dim]({src})[/]")
    meta = Table(title="metadata", show_header=True)
    meta.add_column("key")
    meta.add_column("value", overflow="fold")
    for k, v in sorted(fg.metadata.items()):
        text = plain_text(v)
        meta.add_row(term(k), term(text if len(text) < 200 else text[:200] + "…"))
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

    from snnbridge.models import Network
    from snnbridge.models.export import export as do_export

    positive(dt, "--dt")
    positive(threshold, "--threshold")
    if not 0.0 <= decay <= 1.0:
        raise SnnBridgeError(f"--decay must be in [0, 1], got {decay}")
    if Path(source).exists():
        net = Network.load(source)
        if not net.is_snn:
            from snnbridge.models.network import NetworkConfig

            raise SnnBridgeError(f"{source} holds an ANN ({NetworkConfig.__name__}.mode='ann'); NIR has no ReLU, "
                                 "convert it to an SNN first")
    else:
        shape = parse_shape(input_shape, "--input-shape")
        from snnbridge.bridge import limits

        limits.check_shape(shape, 4, "--input-shape")
        torch.manual_seed(seed)
        try:
            net = Network(structure=source, input_shape=shape, neuron=neuron, decay=decay, threshold=threshold,
                          reset=reset, dt=dt)
        except ValueError as e:
            raise SnnBridgeError(str(e)) from None
    path = do_export(net, output)
    console.print(f"wrote {term(path)} ({term(net.structure.text)}, "
                  f"{sum(p.numel() for p in net.parameters()):,} weights)", highlight=False)


@app.command()
def backends() -> None:
    """List the backends and whether each can run here."""
    from snnbridge.backends import status

    for name, st in status().items():
        console.print(f"{name:20s} {st}")


from snnbridge.cli import matrix, native, reproduce, validate  # noqa: E402 - the command groups need `app`

for _group in (validate, reproduce, native, matrix):
    _group.register(app)


def _error_line(message: object) -> None:
    err_console.print(f"[bold red]error:[/] {term(message)}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point and the one error boundary of every command.

    Known errors (:class:`SnnBridgeError`, usage errors) → one line, exit 2; Ctrl-C → exit 130 (SIGTERM 143),
    also when a library swallowed the interrupt; anything unexpected → one line naming :data:`BUG_REPORT`
    and ``--debug`` (which shows the traceback), exit 3.
    """
    from snnbridge import fileio

    previous = fileio.install_signal_handlers()
    try:
        return _main(argv)
    finally:
        if argv is not None:  # called from Python (tests, scripts): leave the caller's handlers as they were
            fileio.restore_signal_handlers(previous)


def _main(argv: list[str] | None) -> int:
    global _debug
    import click

    from snnbridge import fileio

    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug or "--debug" in args[: next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))]
    try:
        try:
            rc = app(args=args, standalone_mode=False)  # click returns (not raises) typer.Exit's code here
        finally:
            _debug = os.environ.get("SNNBRIDGE_DEBUG", "") not in ("", "0")
        rc = rc if isinstance(rc, int) else 0
    except SnnBridgeError as e:
        if debug:
            import traceback

            traceback.print_exc()
        _error_line(e)
        rc = 2
    except typer.Exit as e:
        rc = int(e.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt) as e:
        sig = getattr(e, "signum", None) or getattr(e.__context__, "signum", None) or fileio.interrupted()
        err_console.print("interrupted" + (" (SIGTERM)" if sig == 15 else ""), highlight=False)
        return 128 + int(sig or 2)
    except click.exceptions.ClickException as e:  # usage errors: missing argument, bad option value
        e.show()
        rc = 2
    except MemoryError:
        _error_line("out of memory; lower --samples/--T/--batch-size or the memory budget (SNNBRIDGE_MEMORY_BUDGET)")
        rc = 2
    except Exception as e:  # noqa: BLE001 - the boundary: never a raw traceback unless asked for
        if debug:
            import traceback

            traceback.print_exc()
        msg = str(e).splitlines()[0][:300] if str(e) else ""
        _error_line(f"internal error {type(e).__name__}: {msg} — this is a bug in snnbridge; please report it at "
                    f"{BUG_REPORT} with the command" + ("" if debug else " and the traceback shown by "
                                                        "'snnbridge --debug ...'"))
        rc = 3
    sig = fileio.interrupted()
    if sig is not None:  # an interrupt someone swallowed (h5py's weakref callbacks do): never report success
        err_console.print("interrupted", highlight=False)
        return 128 + int(sig)
    return rc
