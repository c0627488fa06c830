"""The validation commands: ``conform``, ``diff``, ``demo``, ``costs`` (``register(app)``).

Exit codes: 0 every counted backend passes, 1 some fail (``diff``: a backend regressed), 2 bad input.
``compare`` is the old name of ``diff`` (hidden, still accepted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from snnbridge.errors import InputError, SnnBridgeError


def _console():
    from snnbridge.cli import console

    return console


def _term(text) -> str:
    from snnbridge.cli import term

    return term(text)


def _verdict_table(result) -> None:
    from rich.table import Table

    table = Table(title=f"profile {result.profile.name}: {result.meta['samples']} samples × T={result.meta['steps']}")
    table.add_column("backend", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("acc.", justify="right", no_wrap=True)
    table.add_column("agrees", justify="right", no_wrap=True)
    table.add_column("details", overflow="fold")
    colors = {"pass": "green", "fail": "red", "error": "red", "unavailable": "dim"}
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    table.add_row("yardstick", "", pct(result.yardstick.accuracy), "", "reference executor, float64")
    e = _term
    for b in result.backends.values():
        if b.status in ("error", "unavailable"):
            details = b.reason
        elif b.first_divergent_node:
            fd = b.first_divergence
            at = f" @ step {fd.step}, sample {fd.sample}, neuron {fd.neuron}" if fd else ""
            details = f"{b.first_divergent_node}{at}: {b.nodes[b.first_divergent_node].explanation.text}"
        else:
            details = "all recorded nodes agree"
        details = details if len(details) <= 160 else details[:157] + "..."
        table.add_row(e(b.name), f"[{colors.get(b.status, 'red')}]{e(b.verdict)}[/]", pct(b.accuracy),
                      pct(b.prediction_agreement), e(details))
    _console().print(table)


def _check_backends(specs) -> None:
    from snnbridge import backends

    known = backends.names()
    for s in specs:
        if s.runner is None and s.backend not in known:
            raise SnnBridgeError(f"unknown backend '{s.backend}'; known: {', '.join(known)}")  # escaped when shown


def register(app: typer.Typer) -> None:
    """Add the validation commands to the ``snnbridge`` app."""

    @app.command()
    def conform(
        model: Path = typer.Argument(..., help="The .nir file to check."),
        backends: str = typer.Option("reference,snntorch,norse,brian2", "--backends", "-b",
                                     help="Comma-separated backends; options after @, e.g. reference@reset=subtract. "
                                          "*-upstream backends are audit runs."),
        data: str = typer.Option("digits", help="digits | FILE.npz (x [T,B,...] or [N,...], optional y) | an "
                                                "N-MNIST or MNIST folder | random[:P] (seeded Bernoulli spikes "
                                                "of the model's input shape)."),
        samples: int = typer.Option(100, help="Number of samples to run."),
        T: int = typer.Option(20, "--T", "-T", help="Time steps for rate-coded data."),
        seed: int = typer.Option(0, help="Seed of the rate coding."),
        profile: str = typer.Option("exact", help="exact (float64, bit-exact spikes) or float32 (near-threshold "
                                                  "flips allowed, bounded)."),
        dt: Optional[float] = typer.Option(None, help="Override dt (s)."),
        reset: Optional[str] = typer.Option(None, help="Override the reset mode: zero|subtract|none."),
        integration: Optional[str] = typer.Option(None, help="Override the integration: euler|exact."),
        report: Optional[Path] = typer.Option(None, help="Write report.html, summary.md, report.json here."),
        plot_node: Optional[str] = typer.Option(None, help="Node shown in the rasters (default: first divergence)."),
        plot_sample: Optional[int] = typer.Option(None, help="Sample shown in the rasters."),
        count_bias: bool = typer.Option(False, help="Cost convention: count biases in #W and #Add."),
        pooling_ops: bool = typer.Option(True, help="Cost convention: count average pooling operations."),
        count_input: bool = typer.Option(False, help="Cost convention: count the input layer in #A/#P and #S."),
        require_all: bool = typer.Option(False, help="Fail (exit 1) when a requested backend is unavailable."),
        batch_size: int = typer.Option(0, help="Samples per batch: every backend runs one batch at a time, compared "
                                               "and accumulated at once (0: 100; memory does not grow with "
                                               "--samples)."),
        scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address (tcp://HOST:PORT): shard the "
                                                           "samples across its workers."),
        shards: int = typer.Option(0, help="With --scheduler: number of shards (0: two per worker)."),
        device: str = typer.Option("cpu", help="Where the backends run: cpu, cuda or cuda:N (reference and torch "
                                               "backends; a backend's @device= wins; the yardstick stays on cpu)."),
        progress: bool = typer.Option(True, help="Show progress bars."),
        overwrite: bool = typer.Option(False, help="Write --report into a non-empty folder snnbridge did not "
                                                   "create (only the report's files are replaced)."),
    ) -> None:
        """Run MODEL on several backends, compare each node with the reference, and report (exit 0 pass, 1 fail)."""
        from snnbridge.bridge.graph import prepare
        from snnbridge.bridge.io import read_graph
        from snnbridge.cli import positive
        from snnbridge.validation.conformance import conform as run_conform
        from snnbridge.validation.conformance import get_profile
        from snnbridge.validation.costs import Conventions
        from snnbridge.validation.runners import check_devices, parse_specs
        from snnbridge.validation.sources import DataRequest, resolve

        positive(samples, "--samples")
        positive(T, "--T")
        positive(dt, "--dt")
        positive(plot_sample, "--plot-sample", allow_zero=True)
        if report is not None:
            from snnbridge.fileio import check_output_folder

            check_output_folder(report, overwrite)  # refuse before hours of simulation, not after
        get_profile(profile)
        specs = parse_specs(backends)
        _check_backends(specs)
        check_devices(specs, device)
        if batch_size < 0:
            raise InputError(f"--batch-size must be >= 0, got {batch_size}")
        graph = read_graph(model)
        fg = prepare(graph, dt=dt, reset=reset, integration=integration)
        if len(fg.inputs) != 1:
            raise InputError(f"{model}: conform needs a graph with one Input node, it has {len(fg.inputs)}")
        if shards < 0:
            raise InputError(f"--shards must be >= 0, got {shards}")
        ds = resolve(data, DataRequest(fg.out_shapes[fg.inputs[0]], samples, T, seed))
        result = run_conform(graph, ds.source, backends=specs, profile=profile, labels=ds.y, dt=dt, reset=reset,
                             integration=integration, batch_size=batch_size or 100, progress=progress,
                             conventions=Conventions(bias=count_bias, pooling=pooling_ops, input_layer=count_input),
                             model=model.name, data=ds.description, seed=seed, device=device, prepared=fg,
                             scheduler=scheduler, shards=shards or None)
        _verdict_table(result)
        if report is not None:
            from snnbridge.validation.report import write_report

            paths = write_report(result, report, plot_node=plot_node, plot_sample=plot_sample,
                                 extra_files={"model.nir": model}, overwrite=overwrite)
            _console().print(f"report: {_term(paths.html)}  (summary: {_term(paths.markdown)}, numbers: "
                             f"{_term(paths.json)})", highlight=False)
        unavailable = [b.name for b in result.backends.values() if b.status == "unavailable" and not b.audit]
        code = result.exit_code
        if require_all and unavailable:
            _console().print(f"[red]unavailable:[/] {_term(', '.join(unavailable))}")
            code = 1
        raise typer.Exit(code)

    @app.command("diff")
    def diff(
        old: Path = typer.Argument(..., help="The earlier report.json (or its folder)."),
        new: Path = typer.Argument(..., help="The later report.json (or its folder)."),
        markdown: bool = typer.Option(False, help="Print a Markdown table instead."),
    ) -> None:
        """Show what changed between two conformance reports (exit 1 when a backend that passed now fails)."""
        from rich.table import Table

        from snnbridge.validation.report import diff as cmp
        from snnbridge.validation.report import load_report

        a, b = load_report(old), load_report(new)
        changes = cmp.diff_reports(a, b)
        if markdown:
            from snnbridge.cli import plain_text

            typer.echo("\n".join(plain_text(line) for line in cmp.markdown(changes).splitlines()))
        else:
            table = Table(title=f"{_term(old)} → {_term(new)}")
            for h in cmp.HEADERS:
                table.add_column(h, overflow="fold")
            for c, r in zip(changes, cmp.rows(changes)):
                style = "red" if c.regressed else ("green" if c.fixed else None)
                table.add_row(*[_term(x) for x in r], style=style)
            _console().print(table)
        regressed = [c.name for c in changes if c.regressed]
        if regressed:
            _console().print(f"[red]regressed:[/] {_term(', '.join(map(str, regressed)))}")
        raise typer.Exit(1 if regressed else 0)

    app.command("compare", hidden=True, help="Deprecated name of 'diff'.")(diff)

    @app.command()
    def demo(
        out: Path = typer.Option(Path("snnbridge-report"), help="Report folder."),
        epochs: int = typer.Option(5, help="Training epochs."),
        samples: int = typer.Option(200, help="Test samples to check on every backend."),
        quick: bool = typer.Option(False, help="1 epoch, 40 samples (a smoke run)."),
        progress: bool = typer.Option(True, help="Show progress bars."),
        overwrite: bool = typer.Option(False, help="Write into a non-empty --out folder snnbridge did not create "
                                                   "(only the report's files are replaced)."),
    ) -> None:
        """Train a small SNN on the embedded digits, export it to NIR, check every simulator, write the report."""
        from snnbridge.validation.demo import run_demo

        if epochs <= 0 or samples <= 0:
            raise InputError("--epochs and --samples must be > 0")
        res = run_demo(out, epochs=epochs, samples=samples, quick=quick, progress=progress, log=_console().print,
                       overwrite=overwrite)
        _verdict_table(res.result)
        _console().print(f"done in {res.seconds:.0f} s — open [bold]{_term(res.report.resolve())}[/]")
        raise typer.Exit(res.result.exit_code)

    @app.command()
    def costs(
        structure: str = typer.Argument(..., help="Paper notation, e.g. Input-32C3-AP2-32C3-AP2-128FC-10."),
        input_shape: str = typer.Option("1,28,28", help="Per-sample input shape, e.g. 784 or 2,34,34."),
        T: Optional[int] = typer.Option(None, "--T", "-T", help="Time window (SNN estimate)."),
        rate: Optional[float] = typer.Option(None, help="Mean firing probability per neuron and step (SNN estimate)."),
        count_bias: bool = typer.Option(False, help="Count biases."),
        pooling_ops: bool = typer.Option(True, help="Count average pooling operations."),
        count_input: bool = typer.Option(False, help="Count the input layer."),
        padded_taps: bool = typer.Option(True, help="Count a padded conv's taps on the zero padding (both sides)."),
        paper_units: bool = typer.Option(False, "--paper-units", help="Print in 10^6 with 4 decimals (Table 6)."),
    ) -> None:
        """Static costs (Eqs. 8-9) of a structure, ANN and SNN, without running anything."""
        from rich.table import Table

        from snnbridge.cli import parse_shape, positive
        from snnbridge.validation.costs import Conventions, static_costs
        from snnbridge.validation.report import si

        shape = parse_shape(input_shape, "--input-shape")
        positive(T, "--T")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise InputError(f"--rate must be in [0, 1], got {rate}")
        conv = Conventions(bias=count_bias, pooling=pooling_ops, input_layer=count_input, padded_taps=padded_taps)
        if paper_units:
            si = lambda v: "—" if v is None else f"{v / 1e6:.4f}"  # noqa: E731
        table = Table(title=f"{_term(structure)} on {list(shape)}" + (" (10^6)" if paper_units else ""))
        for col in ("model", "#W", "#A / #P", "#S", "M (bits)", "#Add", "#Mul"):
            table.add_column(col, justify="right")
        for mode in ("ann", "snn"):
            c = static_costs(structure, shape, mode, T=T, rate=rate, conventions=conv)
            label = mode.upper() + (" (estimate)" if c.estimate else "")
            table.add_row(label, si(c.weights) if paper_units else f"{c.weights:,}",
                          si(c.values) if paper_units else f"{c.values:,}", si(c.spikes),
                          si(c.memory_bits if c.memory_bits is not None else None), si(c.adds), si(c.muls))
        _console().print(table)
