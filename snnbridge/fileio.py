"""Every file and folder snnbridge writes goes through here: atomic, umask-respecting, never destroying user data.

* :func:`atomic_write` / :func:`atomic_file` — a file is written to a temporary sibling named with
  snnbridge's own prefix (:data:`TMP_PREFIX`) and renamed into place; on any failure, Ctrl-C or SIGTERM the
  temporary file is removed and the destination is left as it was.
* :func:`write_folder` — an output folder (report, reproduction) is written only when it is fresh (absent or
  empty) or was written by snnbridge before (it holds the :data:`MARKER` file); a non-empty folder without
  the marker is refused unless ``overwrite=True`` (CLI ``--overwrite``), and even then only the files
  snnbridge writes are replaced: nothing else in the folder is ever deleted.
* :func:`clean_stale` — temporary files and folders a killed earlier run left behind are removed on the next
  run, and only those carrying :data:`TMP_PREFIX` whose process is gone.
* Files get mode ``0o666 & ~umask`` and folders ``0o777 & ~umask`` (``mkstemp``/``mkdtemp`` alone give 0600/0700).
* :func:`install_signal_handlers` (called by the CLI) turns SIGTERM into an exception like Ctrl-C, and
  remembers an interrupt even when a library swallows the ``KeyboardInterrupt`` (h5py's weakref callbacks
  do): :func:`check_interrupted` re-raises it before anything is renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping, Union

from snnbridge.errors import SnnBridgeError
from snnbridge.memory import check_bytes

TMP_PREFIX = ".snnbridge-tmp-"
"""Prefix of every temporary file or folder snnbridge creates (``<prefix><pid>-<host>-<random>-<name>.tmp``)."""

MARKER = ".snnbridge-output"
"""File (one JSON line) that marks a folder as written by snnbridge, so a later run may write into it again."""

STALE_AFTER_S = 24 * 3600.0
"""A temporary entry of a live process (or another host) is removed only when it is older than this."""

Content = Union[bytes, str, Path, Callable[[Path], object]]
"""What :func:`write_folder` writes per file: bytes, text (UTF-8), an existing file to copy, or a writer
called with the temporary path."""


class OutputError(SnnBridgeError):
    """An output path cannot be written: it is a folder, unwritable, or a non-empty folder snnbridge did not write."""


class InputFileError(SnnBridgeError):
    """An input file cannot be read: missing, a folder, a FIFO or device, or an untrusted/foreign checkpoint."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``exit_code`` is 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.exit_code = 128 + int(signum)


# --------------------------------------------------------------------------- signals

_pending: int | None = None


def _handler(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    global _pending
    _pending = signum
    raise Interrupted(signum)


def install_signal_handlers() -> dict:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` (so temporary files are cleaned) and remember them.

    Returns the previous handlers, for :func:`restore_signal_handlers`.
    """
    global _pending
    _pending = None
    previous = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[s] = signal.signal(s, _handler)
        except (ValueError, OSError):  # not the main thread: leave the default behaviour
            pass
    return previous


def restore_signal_handlers(previous: dict) -> None:
    """Put back the handlers :func:`install_signal_handlers` replaced."""
    for s, h in previous.items():
        try:
            signal.signal(s, h)
        except (ValueError, OSError, TypeError):
            pass


def interrupted() -> int | None:
    """The signal received since :func:`install_signal_handlers`, or ``None``."""
    return _pending


def check_interrupted() -> None:
    """Raise :class:`Interrupted` again if a signal arrived, even if someone swallowed the first exception."""
    if _pending is not None:
        raise Interrupted(_pending)


# --------------------------------------------------------------------------- permissions


def umask() -> int:
    """The process's umask (read from /proc when possible: setting it to read it is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """Mode of a newly written file: ``0o666 & ~umask``."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """Mode of a newly written folder: ``0o777 & ~umask``."""
    return 0o777 & ~umask()


# --------------------------------------------------------------------------- temporary names


def _tmp_prefix(name: str) -> str:
    host = socket.gethostname().replace("-", "_")[:32] or "host"
    return f"{TMP_PREFIX}{os.getpid()}-{host}-"


def _owner(entry: str) -> tuple[int, str] | None:
    """``(pid, host)`` encoded in a temporary name, or ``None`` when it is not one of ours."""
    if not entry.startswith(TMP_PREFIX):
        return None
    parts = entry[len(TMP_PREFIX):].split("-", 2)
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but owned by someone else
        return True
    return True


def clean_stale(folder: str | Path) -> list[Path]:
    """Remove temporary files/folders in ``folder`` left by a dead snnbridge process; returns what was removed.

    Only names starting with :data:`TMP_PREFIX` are touched: those of a process of this host that no longer
    runs, and any older than :data:`STALE_AFTER_S`.  Links are unlinked, never followed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    host = socket.gethostname().replace("-", "_")[:32] or "host"
    now = time.time()
    for e in entries:
        owner = _owner(e.name)
        if owner is None:
            continue
        pid, h = owner
        try:
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if pid == os.getpid() and h == host:
            continue
        if not ((h == host and not _alive(pid)) or age > STALE_AFTER_S):
            continue
        p = Path(e.path)
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


# --------------------------------------------------------------------------- files


def check_output_file(path: str | Path) -> Path:
    """Check that ``path`` can be written as a file (not a folder, parent a folder); returns it as a Path."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise OutputError(f"{path}: exists and is not a regular file")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{path}: parent {parent} is not a folder")
    return path


@contextmanager
def atomic_file(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path`` with the umask's mode.

    On any exception (Ctrl-C and SIGTERM included) the temporary file is removed and ``path`` is untouched.
    """
    path = check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot create folder {path.parent}: {e.strerror or e}") from None
    clean_stale(path.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=_tmp_prefix(path.name), suffix=suffix, dir=path.parent)
    except OSError as e:
        raise OutputError(f"{path}: cannot write here: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        check_interrupted()
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` atomically; returns the path."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


# --------------------------------------------------------------------------- reading


def check_input_file(path: str | Path, what: str = "a file", error: type[SnnBridgeError] = InputFileError) -> Path:
    """Refuse a missing path, a folder, a FIFO, a device or a socket before opening it (a FIFO would hang)."""
    import stat

    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as e:
        raise error(f"{path}: cannot access: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a directory, not {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise error(f"{path}: is {kind}, not {what}")
    return path


def read_text(path: str | Path, what: str = "a text file", error: type[SnnBridgeError] = InputFileError) -> str:
    """Read a UTF-8 text file after :func:`check_input_file` and a size check against the memory budget."""
    path = check_input_file(path, what, error)
    check_bytes(path.stat().st_size, f"reading {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror or e}") from None


def load_tensors(path: str | Path, what: str = "an snnbridge checkpoint") -> object:
    """``torch.load`` that can never execute code: ``weights_only=True`` (tensors and plain containers only).

    A file holding other Python objects (an old cache, a foreign or crafted pickle) is refused with
    :class:`InputFileError` *without* being unpickled; so is a FIFO, a folder or a file over the memory budget.
    """
    import pickle

    import torch

    path = check_input_file(path, what)
    check_bytes(path.stat().st_size, f"loading {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).split("\n")[0][:200] if "Unsupported global" not in str(e) else ""
        glob = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), first)
        raise InputFileError(f"{path}: refused to load as {what}: it holds Python objects beyond tensors and plain "
                             f"containers ({glob[:160] or 'unsafe pickle'}); snnbridge never unpickles arbitrary "
                             "objects (an old or foreign file: re-create it with this version)") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is one clear error
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        raise InputFileError(f"{path}: not readable as {what} ({type(e).__name__}: {msg})") from None


def save_tensors(path: str | Path, payload: object) -> Path:
    """``torch.save`` atomically (temporary file, umask mode); the payload must load with :func:`load_tensors`."""
    import torch

    with atomic_file(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


# --------------------------------------------------------------------------- folders


def is_snnbridge_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds the :data:`MARKER` file (a regular file, not a link)."""
    m = Path(folder) / MARKER
    return m.is_file() and not m.is_symlink()


def check_output_folder(folder: str | Path, overwrite: bool = False) -> Path:
    """Refuse an output folder snnbridge may not write into; returns it as a Path.

    Allowed: an absent folder, an empty one, one holding :data:`MARKER`, or any folder with ``overwrite``.
    """
    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise OutputError(f"{folder}: exists and is not a folder")
        try:
            names = sorted(n for n in os.listdir(folder) if _owner(n) is None)
        except OSError as e:
            raise OutputError(f"{folder}: cannot list the folder: {e.strerror or e}") from None
        if names and not overwrite and MARKER not in names:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise OutputError(f"{folder}: folder is not empty and was not written by snnbridge (holds {shown}); "
                              "choose a new folder, or pass --overwrite (overwrite=True) to replace only the files "
                              "snnbridge writes")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{folder}: folder is not writable")
    return folder


def mark_folder(folder: str | Path, kind: str, files: list[str] | None = None) -> Path:
    """Create ``folder`` if needed and write its :data:`MARKER` (one JSON line)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the folder: {e.strerror or e}") from None
    from snnbridge import __version__

    line = json.dumps({"tool": "snnbridge", "kind": kind, "version": __version__, "files": sorted(files or [])})
    atomic_write(folder / MARKER, line + "\n")
    return folder


def _put(dest: Path, content: Content) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        dest.write_bytes(content)
    elif isinstance(content, str):
        dest.write_text(content, encoding="utf-8")
    elif isinstance(content, Path):
        shutil.copyfile(content, dest)
    else:
        content(dest)
    check_interrupted()


def _chmod_tree(root: Path) -> None:
    fm, dm = file_mode(), dir_mode()
    os.chmod(root, dm)
    for base, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(base, d), dm)
        for f in files:
            os.chmod(os.path.join(base, f), fm)


def write_folder(folder: str | Path, files: Mapping[str, Content], kind: str, overwrite: bool = False) -> Path:
    """Write ``files`` (relative path → content) into ``folder`` under the output-folder rule; returns ``folder``.

    A fresh folder is built as a temporary sibling and renamed into place (all or nothing); into an existing
    snnbridge folder (or with ``overwrite``) each file is written to a temporary name and renamed over its
    old version, so the folder never holds a half-written file and no other file is touched.
    """
    folder = check_output_folder(folder, overwrite)
    for rel in files:
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts or not p.parts or p.name == MARKER:
            raise OutputError(f"{folder}: refusing to write '{rel}' (outside the folder or reserved)")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create {folder.parent}: {e.strerror or e}") from None
    if not folder.exists():
        clean_stale(folder.parent)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(folder.name), suffix=".tmp", dir=folder.parent))
        except OSError as e:
            raise OutputError(f"{folder}: cannot write in {folder.parent}: {e.strerror or e}") from None
        try:
            for rel, content in files.items():
                _put(tmp / rel, content)
            line = json.dumps({"tool": "snnbridge", "kind": kind, "files": sorted(files)})
            (tmp / MARKER).write_text(line + "\n", encoding="utf-8")
            _chmod_tree(tmp)
            check_interrupted()
            try:
                os.rename(tmp, folder)
                return folder
            except OSError:
                if not folder.is_dir():  # something else appeared there: do not touch it
                    raise OutputError(f"{folder}: appeared while writing and is not a folder") from None
                check_output_folder(folder, overwrite)  # a folder appeared meanwhile: fall through, file by file
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    clean_stale(folder)
    for rel, content in files.items():
        dest = folder / rel
        if dest.is_dir() and not dest.is_symlink():
            raise OutputError(f"{dest}: is a folder where snnbridge writes a file")
        with atomic_file(dest) as t:
            _put(t, content)
    mark_folder(folder, kind, list(files))
    return folder


def tmp_dir(parent: str | Path, name: str) -> Path:
    """A temporary folder in ``parent`` with snnbridge's prefix (cleaned by :func:`clean_stale` if left over)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent)
    return Path(tempfile.mkdtemp(prefix=_tmp_prefix(name), suffix=".tmp", dir=parent))


def publish_dir(tmp: str | Path, dest: str | Path) -> Path:
    """Rename a finished :func:`tmp_dir` to ``dest`` (which must not exist), with the umask's modes."""
    tmp, dest = Path(tmp), Path(dest)
    _chmod_tree(tmp)
    check_interrupted()
    if dest.exists():
        raise OutputError(f"{dest}: exists; remove it or choose another output")
    os.rename(tmp, dest)
    return dest


__all__ = ["TMP_PREFIX", "MARKER", "OutputError", "Interrupted", "install_signal_handlers", "restore_signal_handlers",
           "interrupted",
           "check_interrupted", "umask", "file_mode", "dir_mode", "clean_stale", "check_output_file", "atomic_file",
           "atomic_write", "InputFileError", "check_input_file", "read_text", "load_tensors", "save_tensors",
           "is_snnbridge_folder", "check_output_folder", "mark_folder", "write_folder", "tmp_dir",
           "publish_dir"]
