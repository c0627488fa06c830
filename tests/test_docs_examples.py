"""Every ``python`` and ``bash`` block in README.md and docs/*.md runs, so the documentation cannot drift.

A block runs in a sandbox folder that holds the files the documentation refers to (see :func:`sandbox`): the
four NIR-paper graphs, ``../data`` (the shared datasets, when present), ``model.nir``/``big.nir`` (a small
exported digits network), ``my_models.py`` with ``make_net`` and its weights ``net.pt``.  The ``python`` blocks
of one page run in order in one fresh interpreter (a later block may use an earlier block's names); each line of
a ``bash`` block (``\\`` continuations joined, comments dropped) runs in a shell with the venv's ``snnbridge``
on ``PATH`` and must exit 0.

An HTML comment on the line just before a block's fence changes how it runs:

* ``<!-- docs-test: slow -->`` — the block runs under ``-m slow`` only (CI runs both);
* ``<!-- docs-test: skip-lines PATTERN; … — why -->`` — bash lines containing a PATTERN are not run (e.g.
  ``make test`` is this suite itself); the reason is required;
* marks combine with commas: ``<!-- docs-test: slow, skip-lines make test — why -->``;
* ``<!-- docs-test: fragment — why -->`` — the block is a fragment that cannot run alone (``...`` placeholders);
  it is still compiled (python) so that a syntax error or a renamed import fails, and the reason is required.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    slow: bool = False
    fragment: str | None = None
    skip_lines: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The ``python``/``bash`` blocks of ``page`` with their ``docs-test`` marks."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if lang in ("python", "bash", "sh", "shell"):
            b = Block(page, start + 1, "python" if lang == "python" else "bash", "\n".join(lines[start + 1:j]))
            mark = _MARK.match(lines[start - 1]) if start else None
            if mark:
                _apply_mark(b, mark.group(1))
            out.append(b)
        i = j + 1
    return out


def _apply_mark(b: Block, text: str) -> None:
    heads, _, why = text.partition("—")
    why = why.strip()
    for head in (h.strip() for h in heads.split(",")):
        if head == "slow":
            b.slow = True
        elif head == "fragment":
            assert why, f"{b.id}: a fragment mark needs a reason after '—'"
            b.fragment = why
        elif head.startswith("skip-lines"):
            assert why, f"{b.id}: a skip-lines mark needs a reason after '—'"
            b.skip_lines = [p.strip() for p in head[len("skip-lines"):].split(";") if p.strip()]
        else:
            raise AssertionError(f"{b.id}: unknown docs-test mark '{text}'")


ALL = [b for p in PAGES for b in blocks(p)]


def _commands(code: str) -> list[str]:
    """The shell commands of a bash block: ``\\`` continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    cmds = []
    for line in joined.splitlines():
        tokens = shlex.split(line, comments=True)
        if tokens:
            cmds.append(line.split(" #")[0].strip() if " #" in line else line.strip())
    return cmds


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A folder with every file the documentation's examples refer to (built with the library itself)."""
    import torch

    from snnbridge.models import Network
    from snnbridge.models.export import export

    root = tmp_path_factory.mktemp("docs")
    work = root / "work"
    work.mkdir()
    if (SHARED / "data").is_dir():
        (root / "data").symlink_to(SHARED / "data")
        (root / "shared").symlink_to(SHARED)  # ../shared/data, as the docs write it from the project's root
    for g in sorted((SHARED / "nir-graphs").glob("*.nir")) if (SHARED / "nir-graphs").is_dir() else []:
        (work / g.name).symlink_to(g)
    torch.manual_seed(0)
    net = Network(structure="Input-32-10", input_shape=(1, 8, 8), neuron="lif", decay=0.25, threshold=0.5)
    export(net, work / "model.nir", encoder="bernoulli")
    shutil.copy(work / "model.nir", work / "big.nir")
    (work / "my_models.py").write_text(
        "import snntorch as snn\nfrom torch import nn\n\n\ndef make_net():\n"
        "    return nn.Sequential(nn.Linear(784, 128), snn.Leaky(beta=0.9, init_hidden=True),\n"
        "                         nn.Linear(128, 10), snn.Leaky(beta=0.9, init_hidden=True, output=True))\n")
    sys.path.insert(0, str(work))
    try:
        import my_models  # noqa: F401 - the user's module of the docs

        torch.save(sys.modules["my_models"].make_net().state_dict(), work / "net.pt")
    finally:
        sys.path.remove(str(work))
        sys.modules.pop("my_models", None)
    return work


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _params(slow: bool):
    out = []
    for page in PAGES:
        page_blocks = [b for b in blocks(page) if b.fragment is None]
        py = [b for b in page_blocks if b.lang == "python"]
        if py and any(b.slow for b in py) == slow:
            out.append(pytest.param(py, id=f"{page.name}:python"))
        for b in page_blocks:
            if b.lang == "bash" and b.slow == slow:
                out.append(pytest.param([b], id=b.id))
    return out


def test_marks_parse_and_fragments_compile():
    """Every block is found, every mark is known, and fragments are still valid Python."""
    assert len(ALL) >= 10
    for b in ALL:
        if b.fragment is not None and b.lang == "python":
            ast.parse(b.code.replace("...", "pass") if b.code.strip().endswith("...") else b.code, b.id)


def _needs_shared(bs: list[Block]) -> bool:
    names = ("../data", "../shared", "cnn_sinabs.nir", "lif_norse.nir", "braille_")
    return any(n in b.code for b in bs for n in names)


def _run_blocks(bs: list[Block], sandbox: Path) -> None:
    if not SHARED.is_dir() and _needs_shared(bs):
        pytest.skip("the example uses ../shared (datasets, NIR-paper graphs), absent here")
    fresh = sandbox.parent / f"work-{bs[0].page.stem}-{bs[0].line}"  # each example starts from the same files
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(sandbox, fresh, symlinks=True)
    sandbox = fresh
    if bs[0].lang == "python":
        script = "\n\n".join(f"# --- {b.id}\n{b.code}" for b in bs)
        r = subprocess.run([sys.executable, "-c", script], cwd=sandbox, env=_env(), capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, f"{bs[0].page.name} python blocks failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return
    (b,) = bs
    for cmd in _commands(b.code):
        if any(p in cmd for p in b.skip_lines):
            continue
        r = subprocess.run(cmd, shell=True, cwd=sandbox, env=_env(), capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{b.id}: `{cmd}` exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"


@pytest.mark.parametrize("bs", _params(slow=False))
def test_docs_blocks(bs, sandbox):
    _run_blocks(bs, sandbox)


@pytest.mark.slow
@pytest.mark.parametrize("bs", _params(slow=True))
def test_docs_blocks_slow(bs, sandbox):
    _run_blocks(bs, sandbox)
