"""Progress bars, one rule for every place that makes one (training, conformance, the reproduction sweep).

* ``progress=False``: nothing is written.
* In a Jupyter kernel: ``tqdm.auto``'s widget when ipywidgets is installed, else plain lines (below).
* On a terminal: a normal ``tqdm`` bar.
* Anywhere else (CI logs, files, pipes): *plain lines*, one every ``interval`` seconds and one at the end,
  each ending in a newline, never a carriage return, so a log holds a few readable lines instead of hundreds
  of partial bars.

Every bar is used the same way::

    from snnbridge.progress import progress_bar
    for batch in progress_bar(batches, desc="epoch 1/5", unit="batch", progress=progress):
        ...
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Iterable, Iterator

PLAIN_INTERVAL_S = 10.0
"""Seconds between two plain progress lines (non-terminal output)."""


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython ``ZMQInteractiveShell``)."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except Exception:  # noqa: BLE001 - a broken IPython install is simply "not a notebook"
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _has_widgets() -> bool:
    """Whether ``tqdm.auto`` can draw a notebook widget (ipywidgets installed); without it, plain lines."""
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


def _is_tty(stream: IO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class PlainProgress:
    """A tqdm-compatible progress counter that writes whole lines (no ``\\r``) every ``interval`` seconds.

    Supports what snnbridge's loops use: iteration, ``update``, ``set_postfix_str``, ``set_postfix``,
    ``set_description``, ``close`` and ``with``.
    """

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, file: IO | None = None, interval: float | None = None,
                 leave: bool = True, **_: Any) -> None:
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total = total
        self.desc = (desc or "").strip()
        self.unit = unit
        self.n = initial
        self.file = file
        self.interval = PLAIN_INTERVAL_S if interval is None else float(interval)
        self.postfix = ""
        self.start = time.monotonic()
        self._last = self.start
        self._closed = False
        self._printed_n = -1

    # ------------------------------------------------------------------ tqdm API
    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable or ():
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return self.total or 0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._write()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = (desc or "").strip()

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.n != self._printed_n:
            self._write()

    # ------------------------------------------------------------------ output
    def line(self) -> str:
        """The current state as one line, e.g. ``'epoch 1/5: 12/40 batch (30%) 3.1 s, loss=0.41'``."""
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        post = f", {self.postfix}" if self.postfix else ""
        head = f"{self.desc}: " if self.desc else ""
        return f"{head}{done} {self.unit}{pct} {time.monotonic() - self.start:.1f} s{post}"

    def _write(self) -> None:
        self._printed_n = self.n
        stream = self.file or sys.stderr
        try:
            stream.write(self.line() + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed log never stops the computation
            pass


def progress_bar(iterable: Iterable | None = None, *, progress: bool = True, desc: str = "", unit: str = "it",
                 total: int | None = None, file: IO | None = None, **kwargs: Any):
    """A progress bar over ``iterable`` (or a manual one with ``total``) that follows the module's rule.

    Args:
        iterable: what to iterate over (``None`` for a manual bar driven by ``update``).
        progress: ``False`` switches output off entirely.
        desc, unit, total: as in ``tqdm``; other keyword arguments (``leave``, ``initial``, ...) are passed on.
        file: the stream to write to (default ``sys.stderr``); its ``isatty()`` decides bar vs plain lines.

    ``SNNBRIDGE_PROGRESS=plain`` forces plain lines, ``=off`` switches every bar off.
    """
    mode = os.environ.get("SNNBRIDGE_PROGRESS", "").strip().lower()
    if not progress or mode in ("off", "0", "false", "no"):
        from tqdm.std import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=True, **kwargs)
    stream = file or sys.stderr
    if mode != "plain" and in_notebook() and _has_widgets():
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(iterable, total=total, desc=desc, unit=unit, **kwargs)
    if mode != "plain" and _is_tty(stream):
        from tqdm.std import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, **kwargs)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, file=file, **kwargs)
