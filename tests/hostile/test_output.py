"""Class 2 — never destroy user data: the output-folder rule, --overwrite, umask, temp files, Ctrl-C/SIGTERM."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from snnbridge.fileio import MARKER, TMP_PREFIX, OutputError, atomic_write, clean_stale, write_folder
from tests.hostile.conftest import cli, examples, one_line_error

names = st.text(alphabet="abcxyz019_.-", min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..") and not n.startswith(TMP_PREFIX) and n != MARKER)


def test_random_existing_folders_never_lose_a_file(tmp_path_factory):
    """Whatever a folder held, writing a report into it either is refused or keeps every unknown file."""
    mine = {"report.json": "{}", "figures/a.png": b"\x89PNG", "summary.md": "# s"}

    @examples(150)
    @given(existing=st.dictionaries(names, st.binary(max_size=16), max_size=5), marker=st.booleans(),
           overwrite=st.booleans())
    def check(existing, marker, overwrite):
        out = tmp_path_factory.mktemp("o") / "rep"
        out.mkdir()
        for n, b in existing.items():
            (out / n).write_bytes(b)
        if marker:
            (out / MARKER).write_text('{"tool": "snnbridge"}\n')
        try:
            write_folder(out, mine, "test", overwrite=overwrite)
            wrote = True
        except OutputError:
            wrote = False
        assert wrote == (not existing or marker or overwrite)
        for n, b in existing.items():  # nothing the user had is deleted (only snnbridge's own names replaced)
            if n not in mine and n != "figures":
                assert (out / n).read_bytes() == b
        assert not [p for p in out.parent.rglob("*") if p.name.startswith(TMP_PREFIX)]

    check()


def test_conform_report_refuses_foreign_folder(tmp_path):
    from snnbridge.models import Network
    from snnbridge.models.export import export

    torch.manual_seed(0)
    model = export(Network(structure="Input-8-3", input_shape=(1, 4, 4)), tmp_path / "m.nir")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    args = ("conform", model, "-b", "reference", "--samples", 3, "--T", 3, "--no-progress", "--report", out)
    one_line_error(cli(*args))
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    assert cli(*args, "--overwrite").returncode in (0, 1)
    assert (out / "thesis.tex").read_text() == "years of work" and (out / "report.json").exists()


def test_rewrite_keeps_unknown_files_in_subfolders(tmp_path):
    out = tmp_path / "repro"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "mine.png").write_bytes(b"user")
    with pytest.raises(OutputError):
        write_folder(out, {"results.json": "{}"}, "reproduce")
    write_folder(out, {"results.json": "{}", "figures/fig13.png": b"png"}, "reproduce", overwrite=True)
    assert (out / "figures" / "mine.png").read_bytes() == b"user" and (out / "figures" / "fig13.png").exists()


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_files_respect_umask(tmp_path, mask):
    from snnbridge.models import Network
    from snnbridge.models.export import export

    old = os.umask(mask)
    try:
        p = export(Network(structure="Input-4-2", input_shape=(3,)), tmp_path / "m.nir")
        q = atomic_write(tmp_path / "a.json", "{}")
        d = write_folder(tmp_path / "rep", {"r.json": "{}"}, "test")
    finally:
        os.umask(old)
    for f in (p, q, d / "r.json"):
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask
    assert d.stat().st_mode & 0o777 == 0o777 & ~mask


def test_stale_temporaries_cleaned_only_if_ours(tmp_path):
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    ours = tmp_path / f"{TMP_PREFIX}{dead}-{os.uname().nodename.replace('-', '_')[:32]}-abc-m.nir.tmp"
    ours.write_bytes(b"x" * 100)
    ours_dir = tmp_path / f"{TMP_PREFIX}{dead}-{os.uname().nodename.replace('-', '_')[:32]}-abc-rep.tmp"
    ours_dir.mkdir()
    foreign = [tmp_path / "m.nir.tmp", tmp_path / ".rep.x.tmp", tmp_path / f"{TMP_PREFIX}notapid-x"]
    for f in foreign:
        f.write_text("user")
    atomic_write(tmp_path / "out.json", "{}")  # the next run cleans what a killed one left
    assert not ours.exists() and not ours_dir.exists()
    assert all(f.exists() for f in foreign)
    assert clean_stale(tmp_path) == []


def test_output_path_that_is_a_folder_or_unwritable(tmp_path):
    (tmp_path / "d.nir").mkdir()
    one_line_error(cli("export", "Input-4-2", "--input-shape", "3", "-o", tmp_path / "d.nir"))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write anywhere")
        one_line_error(cli("export", "Input-4-2", "--input-shape", "3", "-o", ro / "m.nir"))
    finally:
        ro.chmod(0o700)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_export_stops_and_cleans(tmp_path, sig, code):
    """A signal while the .nir is being written: exit 130/143, no output, no temporary file (h5py swallows a
    KeyboardInterrupt raised in its weakref callbacks: the export must not complete anyway)."""
    import subprocess
    import sys

    out = tmp_path / "big.nir"
    p = subprocess.Popen([sys.executable, "-m", "snnbridge.cli", "export", "Input-2048-2048-2048-10",
                          "--input-shape", "4096", "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    t0 = time.time()
    while not any(f.name.endswith(".tmp") for f in tmp_path.iterdir()):
        assert p.poll() is None and time.time() - t0 < 100, "export ended before writing"
        time.sleep(0.005)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_interrupt_in_process_exits_130(monkeypatch):
    import snnbridge.validation.report.diff as cmp

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cmp, "diff_reports", boom)
    r = cli("compare", "/nonexistent", "/nonexistent")
    assert r.returncode == 2  # the missing report is found first
    monkeypatch.setattr("snnbridge.validation.report.load_report", boom)
    assert cli("compare", "a", "b").returncode == 130
