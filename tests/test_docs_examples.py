"""Every code example in docs/ runs: the docs cannot drift from the code.

A fenced block's info string says what to do with it:

- ```` ```python test ````: executed; the blocks of one page share a namespace
  and run in order, in a fresh folder (like a doctest session);
- ```` ```LANG file=PATH ````: written to PATH in that folder before later blocks run;
- ```` ```toml suite ```` (optionally ``file=PATH``): written, then loaded,
  expanded and validated by the runner (names, capabilities, parameters),
  exactly as ``polymodal run`` does before anything trains, with the plugin
  objects (``component(...)``) the page defined so far installed;
- ```` ```toml experiment ````: validated as an experiment file;
- ```` ```console test ````: each ``$ polymodal ...`` line runs in-process and must exit 0.

Python and TOML blocks must carry one of these tags; untagged blocks are only
command synopses in other languages (bash, text).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.S | re.M)
MUST_TAG = {"python", "toml", "py"}


def blocks(page: Path) -> list[tuple[int, str, dict[str, str], str]]:
    """``(line, language, tags, code)`` for each fenced block of ``page``."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        words = m.group(1).split()
        lang = words[0] if words else ""
        tags = dict(w.split("=", 1) if "=" in w else (w, "") for w in words[1:])
        out.append((text.count("\n", 0, m.start()) + 1, lang, tags, m.group(2)))
    return out


#: Pages whose examples another test executes, with its own block conventions.
EXECUTED_ELSEWHERE = {"own-data.md": "tests/test_docs_own_data.py"}
PAGES = sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).as_posix() not in EXECUTED_ELSEWHERE)


def test_pages_executed_elsewhere_really_are() -> None:
    for page, test in EXECUTED_ELSEWHERE.items():
        assert (DOCS / page).is_file() and page in (ROOT / test).read_text(encoding="utf-8"), (page, test)


def test_docs_exist_for_every_kind_and_topic() -> None:
    names = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    from polymodal.registry import KINDS, singular

    for kind in map(singular, KINDS):
        assert f"kinds/{kind}.md" in names, f"docs/kinds/{kind}.md is missing"
    for page in ("index.md", "suite-file.md", "datasets.md", "own-data.md", "own-data-quickstart.md",
                 "write-an-axis.md", "public-api.md"):
        assert page in names, f"docs/{page} is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_example_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for line, lang, tags, code in blocks(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if lang in MUST_TAG:
            assert tags, f"{where}: a {lang} block needs a tag (test, suite, experiment or file=PATH)"
        if "file" in tags:
            target = tmp_path / tags["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
        if "test" in tags and lang in ("python", "py"):
            try:
                exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own docs
            except Exception as exc:
                raise AssertionError(f"{where}: example failed: {type(exc).__name__}: {exc}") from exc
        elif "suite" in tags:
            _validate_suite(tmp_path / tags.get("file", "suite.toml"), code, where, namespace)
        elif "experiment" in tags:
            from polymodal.experiment import experiment_from_dict

            import tomllib

            experiment_from_dict(tomllib.loads(code), where)
        elif "test" in tags and lang == "console":
            for cmd in (ln[2:] for ln in code.splitlines() if ln.startswith("$ ")):
                _run_cli(cmd, where)


def _validate_suite(path: Path, code: str, where: str, namespace: dict[str, object]) -> None:
    """Validate as ``polymodal run`` does, with the plugin objects the page defined so far installed."""
    from polymodal.manifest import ComponentPlugin
    from polymodal.plugins import PluginSettings, build_plugin_manager
    from polymodal.runner import RunOptions, Runner
    from polymodal.suite import expand_suite, load_suite_dict

    mine = {f"docs.{k}": v for k, v in namespace.items() if isinstance(v, ComponentPlugin)}
    plugins = build_plugin_manager(PluginSettings.from_env(), extra_plugins=mine)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code, encoding="utf-8")
    suite = expand_suite(load_suite_dict(path), str(path))
    Runner(suite, plugins, RunOptions(out=path.parent / "results-unused")).validate()


def _run_cli(cmd: str, where: str) -> None:
    from polymodal.cli import main

    argv = shlex.split(cmd)
    assert argv[0] == "polymodal", f"{where}: console examples run polymodal commands, got {cmd!r}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv[1:])
    assert rc == 0, f"{where}: `{cmd}` exited {rc}: {out.getvalue()[-2000:]}"


def test_harness_finds_and_tags_blocks(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("x\n```python test\nx = 1\n```\n\n```toml file=a/b.toml\nk = 1\n```\n```bash\nls\n```\n")
    got = [(ln, lang, tags) for ln, lang, tags, _ in blocks(page)]
    assert got == [(2, "python", {"test": ""}), (6, "toml", {"file": "a/b.toml"}), (9, "bash", {})]
    assert os.path.isdir(DOCS)
