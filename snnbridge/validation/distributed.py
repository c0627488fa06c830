"""Conformance past one machine: shard a check's samples across a Dask cluster and merge the shards in order.

``conform(..., scheduler="tcp://host:8786")`` (``snnbridge conform --scheduler``) splits the samples into
contiguous shards, sends each worker its shard's inputs only (a slice of the tensor, or of the images a
:class:`~snnbridge.validation.sources.EncodedImages` encodes there), and runs the same streamed check on it
(:func:`snnbridge.validation.conformance._stream`: every backend compiled once per shard, batch by batch).
The shards' accumulators merge exactly (:mod:`~snnbridge.validation.stream`), so the result is the one a local
run gives, timings aside.  Explaining a divergence re-runs the diverging backend locally.

Needs ``dask[distributed]`` on the client and on every worker, with snnbridge and the backends checked.
"""

from __future__ import annotations

import time

import torch

from snnbridge.errors import SnnBridgeError


class ShardSource:
    """Samples ``offset .. offset + B - 1`` of a tensor source: ``x [T, B, ...]`` sent to one worker."""

    def __init__(self, x: torch.Tensor, offset: int, total: int) -> None:
        self.x, self.offset, self.total = x, offset, total

    @property
    def samples(self) -> int:
        return self.total

    @property
    def steps(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[2:])

    def batch(self, start: int, stop: int) -> torch.Tensor:
        if start < self.offset or stop > self.offset + self.x.shape[1]:
            raise IndexError(f"samples {start}..{stop - 1} are not in this shard ({self.offset}.."
                             f"{self.offset + self.x.shape[1] - 1})")
        return self.x[:, start - self.offset:stop - self.offset]


def shard_of(source, start: int, stop: int):
    """What one worker needs of ``source`` for samples ``start .. stop - 1`` (``source.shard`` if it has one)."""
    if hasattr(source, "shard"):
        return source.shard(start, stop)
    return ShardSource(source.batch(start, stop).clone(), start, source.samples)


def split(samples: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ``(start, stop)`` ranges of nearly equal size covering ``0 .. samples - 1``."""
    shards = max(1, min(shards, samples))
    base, extra = divmod(samples, shards)
    out, a = [], 0
    for i in range(shards):
        b = a + base + (1 if i < extra else 0)
        out.append((a, b))
        a = b
    return out


def _run_shard(plan, source, start: int, stop: int, batch_size: int | None):
    """On a worker: the streamed check of samples ``start .. stop - 1`` → ``(runs, pairs)`` accumulators."""
    from snnbridge.validation.conformance import _stream

    return _stream(plan, source, start, stop, batch_size, progress=False, keep_first=True)


def connect(scheduler: str, timeout: float = 10.0):
    """A ``dask.distributed.Client`` on ``scheduler`` with at least one worker, or one clear error."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise SnnBridgeError("--scheduler needs dask.distributed; run: pip install 'dask[distributed]'") from None
    try:
        client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as e:
        raise SnnBridgeError(f"cannot reach the Dask scheduler at '{scheduler}' ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})") from None
    deadline = time.monotonic() + timeout
    while not client.scheduler_info().get("workers"):
        if time.monotonic() > deadline:
            client.close()
            raise SnnBridgeError(f"the Dask scheduler at '{scheduler}' has no workers")
        time.sleep(0.2)
    return client


def run_sharded(plan, source, samples: int, batch_size: int | None, scheduler: str, shards: int | None,
                progress: bool = False):
    """Run the check's samples as shards on the cluster at ``scheduler``; the merged ``(runs, pairs)``."""
    from snnbridge.progress import progress_bar
    from snnbridge.validation.conformance import _merge

    client = connect(scheduler)
    try:
        workers = len(client.scheduler_info()["workers"])
        ranges = split(samples, shards or 2 * workers)
        futures = [client.submit(_run_shard, plan, shard_of(source, a, b), a, b, batch_size, pure=False,
                                 key=f"snnbridge-conform-shard-{i}-{time.time_ns()}")
                   for i, (a, b) in enumerate(ranges)]
        from dask.distributed import as_completed

        bar = progress_bar(total=samples, desc=f"conform on {workers} workers", unit="sample", progress=progress,
                           leave=False)
        size = {f.key: b - a for f, (a, b) in zip(futures, ranges)}
        try:
            for f in as_completed(futures):
                if f.status == "error":
                    f.result()  # raises the worker's exception here
                bar.update(size[f.key])
        finally:
            bar.close()
        parts = client.gather(futures)
    finally:
        client.close()
    return _merge(list(parts))
