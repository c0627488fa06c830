"""``snnbridge matrix GRAPH... --backends all --data ... --report DIR``: every graph on every backend in one table.

Exit codes: 0 every counted row passes, 1 some fail (or crash), 2 bad input (unreadable graph, unknown backend,
data that fits no graph, a report folder snnbridge may not write).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``matrix`` command to the ``snnbridge`` app."""

    @app.command()
    def matrix(
        graphs: list[str] = typer.Argument(..., help="The .nir files to check (rows are named by file stem); "
                                                     "FILE@reset=subtract(+dt=..+integration=..) sets one "
                                                     "graph's semantics."),
        backends: str = typer.Option("all", "--backends", "-b",
                                     help="'all' (every registered backend and audit mode) or comma-separated "
                                          "names/specs, e.g. reference,norse,reference@reset=subtract."),
        data: list[str] = typer.Option(["digits"], "--data",
                                       help="Repeatable, tried in order per graph: digits | FILE.npz | an N-MNIST "
                                            "or MNIST folder | random[:P] (seeded Bernoulli spikes); STEM=SPEC "
                                            "applies to the graph STEM.nir only."),
        samples: int = typer.Option(20, help="Samples per graph."),
        T: int = typer.Option(20, "--T", "-T", help="Time steps for rate-coded and random data."),
        seed: int = typer.Option(0, help="Seed of the rate coding / random spikes."),
        profile: str = typer.Option("exact", help="exact (float64, bit-exact spikes) or float32."),
        dt: Optional[float] = typer.Option(None, help="Override dt (s) for every graph."),
        reset: Optional[str] = typer.Option(None, help="Override the reset mode for every graph: "
                                                       "zero|subtract|none."),
        integration: Optional[str] = typer.Option(None, help="Override the integration: euler|exact."),
        report: Optional[Path] = typer.Option(None, help="Write matrix.html, matrix.md, matrix.json here."),
        batch_size: int = typer.Option(0, help="Samples per backend call (0: all at once)."),
        progress: bool = typer.Option(False, help="Show progress bars."),
        overwrite: bool = typer.Option(False, help="Write --report into a non-empty folder snnbridge did not "
                                                   "create (only the matrix's files are replaced)."),
    ) -> None:
        """Run every GRAPH on every backend and audit mode; one table of verdicts (exit 0 pass, 1 fail)."""
        from rich.table import Table

        from snnbridge.cli import console, positive, term
        from snnbridge.errors import InputError
        from snnbridge.validation.matrix import matrix as run_matrix
        from snnbridge.validation.matrix import write_matrix

        positive(samples, "--samples")
        positive(T, "--T")
        positive(dt, "--dt")
        if batch_size < 0:
            raise InputError(f"--batch-size must be >= 0, got {batch_size}")
        if report is not None:
            from snnbridge.fileio import check_output_folder

            check_output_folder(report, overwrite)  # refuse before the simulations, not after
        result = run_matrix(graphs, backends=backends, data=data, samples=samples, T=T, seed=seed, profile=profile,
                            dt=dt, reset=reset, integration=integration, batch_size=batch_size or None,
                            progress=progress, log=lambda s: console.print(f"[dim]{term(s)}[/]", highlight=False))
        table = Table(title=f"matrix, profile {term(profile)}: {len(result.graphs)} graph(s)")
        for col, kw in (("graph", {"no_wrap": True}), ("backend", {"no_wrap": True}), ("verdict", {"no_wrap": True}),
                        ("acc.", {"justify": "right"}), ("details", {"overflow": "fold", "min_width": 40}),
                        ("time", {"justify": "right"})):
            table.add_column(col, **kw)
        colors = {"pass": "green", "fail": "red", "error": "red"}
        for r in result.rows:
            details = r.details()
            details = details if len(details) <= 160 else details[:157] + "..."
            acc = "—" if r.accuracy is None else f"{100 * r.accuracy:.1f}%"
            table.add_row(term(r.graph), term(r.backend), f"[{colors.get(r.status, 'dim')}]{term(r.verdict)}[/]", acc,
                          term(details), f"{r.runtime_s:.2f} s")
        console.print(table)
        if report is not None:
            paths = write_matrix(result, report, overwrite=overwrite)
            console.print(f"report: {term(paths.html)}  (summary: {term(paths.markdown)}, numbers: "
                          f"{term(paths.json)})", highlight=False)
        if result.failed:
            console.print("[red]failed:[/] " + term(", ".join(f"{g} on {b}" for g, b in result.failed)))
        raise typer.Exit(result.exit_code)
