"""``snnbridge reproduce`` and ``snnbridge data ...`` (emulate, stats), registered into the main app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from snnbridge.errors import SnnBridgeError


def _split(text: Optional[str]) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _static_images(source: str, data_dir: Optional[Path], limit: Optional[int], seed: int):
    from snnbridge.data import load_digits_mnist_like, load_mnist

    if source == "digits":
        xtr, ytr, xte, yte = load_digits_mnist_like(seed=seed)
    elif source == "mnist":
        if data_dir is None:
            raise SnnBridgeError("--source mnist needs --data-dir (the folder holding MNIST/raw)")
        xtr, ytr, xte, yte = load_mnist(data_dir, limit, None if limit is None else max(1, limit // 6), seed)
    else:
        raise SnnBridgeError(f"--source must be digits or mnist, got '{source}'")
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]
        xte, yte = xte[:max(1, limit // 6)], yte[:max(1, limit // 6)]
    return xtr, ytr, xte, yte


def register(app: typer.Typer) -> None:
    """Add ``reproduce`` and the ``data`` command group to the ``snnbridge`` app."""

    @app.command()
    def reproduce(
        preset: str = typer.Option("quick", help="quick (2 CPU cores, < 15 min offline), paper (Tables 1-3 as "
                                                 "published), or test (seconds)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with MNIST/raw, NMNIST/{Train,Test}, "
                                                "cifar-10-batches-py or CIFAR10DVS; nothing is downloaded."),
        out: Path = typer.Option(Path("reproduce-out"), "--out", help="Output folder (report + cache)."),
        scheduler: str = typer.Option("local", help="local (Dask LocalCluster of --workers processes), "
                                                    "tcp://host:port, or synchronous (no Dask)."),
        workers: int = typer.Option(2, help="Worker processes of the local cluster."),
        seeds: str = typer.Option("0", help="Comma-separated seeds (every cell runs once per seed)."),
        workloads: Optional[str] = typer.Option(None, help="Only these workloads, e.g. digits,mnist,nmnist."),
        networks: Optional[str] = typer.Option(None, help="Only these networks: mlp, cnn."),
        models: Optional[str] = typer.Option(None, help="Only these models, e.g. 1,2,3 (3 includes 3b)."),
        backends: Optional[str] = typer.Option(None, help="Backends for the SNNs (default: the preset's; "
                                                         "reference always runs)."),
        sweep: bool = typer.Option(True, help="Run the Fig. 13 sweep (T x u_th for Model-6)."),
        progress: bool = typer.Option(True, help="Show progress bars."),
        device: str = typer.Option("cpu", help="Where the networks train (cpu, cuda, cuda:1, ...)."),
        overwrite: bool = typer.Option(False, help="Write into a non-empty --out folder snnbridge did not create "
                                                   "(only snnbridge's files are replaced)."),
    ) -> None:
        """Regenerate Tables 4-6 and Figs. 8/10/12/13 of Deng et al. 2020 for the datasets present."""
        from rich.console import Console

        from snnbridge.cli import positive, term
        from snnbridge.reproduce.runner import reproduce as run

        positive(workers, "--workers", maximum=max(64, 4 * (os.cpu_count() or 1)))  # 0 would wait forever
        try:
            seed_list = [int(s) for s in _split(seeds) or ["0"]]
        except ValueError:
            raise SnnBridgeError(f"--seeds '{seeds}' is not a comma-separated list of integers") from None
        res = run(preset, data_dir, out, scheduler=scheduler, workers=workers, seeds=seed_list,
                  workloads=_split(workloads), networks=_split(networks), models=_split(models),
                  backends=tuple(_split(backends)) if backends else None, sweep=sweep, progress=progress,
                  device=device, overwrite=overwrite)
        c = Console()
        for key in ("table4", "table5"):
            for r in res.document[key]:
                paper = "" if r["paper"] is None else f"  (paper {r['paper']:.2f}%, gap {r['gap']:+.2f} pp)"
                c.print(term(f"{r['workload']:>14} {r['network']} Model-{r['model']:<3} {r['accuracy']:6.2f}%{paper}"),
                        highlight=False)
        c.print(f"report: {term(res.paths['html'])}  ({res.document['seconds']:.0f} s)", highlight=False)
        if res.failed:
            for f in res.failed:
                c.print("[red]failed[/] " + term(f"{f['spec']['workload']} {f['spec']['network']} "
                                                 f"Model-{f['spec']['model']}: {f['error']}"), highlight=False)
            raise typer.Exit(1)

    data_app = typer.Typer(no_args_is_help=True,
                           help="Datasets: emulate event recordings, their statistics beside real ones.")
    app.add_typer(data_app, name="data")

    @data_app.command("emulate")
    def emulate(
        out: Path = typer.Option(..., "--out", help="Folder to write NMNIST/{Train,Test}/<digit>/<id>.bin into."),
        source: str = typer.Option("digits", help="digits (embedded) or mnist (needs --data-dir)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding MNIST/raw."),
        limit: Optional[int] = typer.Option(None, help="Training images to convert (test: limit/6)."),
        seed: int = typer.Option(0, help="Emulator seed."),
    ) -> None:
        """Turn static digits into N-MNIST-like recordings (three saccades, 34x34 ATIS-like sensor)."""
        from snnbridge.cli import positive
        from snnbridge.data import EmulatorConfig, emulate_dataset
        from snnbridge.data.nmnist import write_nmnist_folder

        positive(limit, "--limit")

        xtr, ytr, xte, yte = _static_images(source, data_dir, limit, seed)
        cfg = EmulatorConfig()
        path = write_nmnist_folder(out, emulate_dataset(xtr, ytr, cfg, seed), emulate_dataset(xte, yte, cfg, seed + 1))
        typer.echo(f"wrote {len(ytr)} train + {len(yte)} test recordings to {path}")

    @data_app.command("stats")
    def stats(
        real: Path = typer.Option(..., "--real", help="Folder with real N-MNIST recordings (NMNIST/Train/...)."),
        emulated: str = typer.Option("mnist", help="digits, mnist (emulated on the fly) or a folder of recordings."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding MNIST/raw (for mnist)."),
        samples: int = typer.Option(300, help="Recordings compared from each side."),
        seed: int = typer.Option(0, help="Seed."),
    ) -> None:
        """Event statistics of emulated recordings beside real N-MNIST: events per sample, ON/OFF balance, spatial
        extent (``data compare``: the old name of this command)."""
        from snnbridge.cli import positive
        from snnbridge.data import emulate_dataset, load_nmnist, paired_event_statistics

        positive(samples, "--samples")

        real_ds = load_nmnist(real, True, limit=samples, seed=seed)
        if emulated in ("digits", "mnist"):
            xtr, ytr, _, _ = _static_images(emulated, data_dir or (real if emulated == "mnist" else None), samples,
                                            seed)
            em = emulate_dataset(xtr, ytr, seed=seed)
        else:
            em = load_nmnist(emulated, True, limit=samples, seed=seed)
        typer.echo(f"{'statistic':22s} {'emulated':>10s} {'real':>10s} {'ratio':>6s}")
        for k, v in paired_event_statistics(em, real_ds).items():
            typer.echo(f"{k:22s} {v['emulated']:10.3f} {v['real']:10.3f} {v['ratio']:6.2f}")

    data_app.command("compare", hidden=True, help="Deprecated name of 'data stats'.")(stats)
