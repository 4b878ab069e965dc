"""Plugins in this repository import from polymodal only the public API that docs/public-api.md lists.

"No privilege": a built-in needing an internal module is a missing seam in the
contract; add the seam to a public module (and the docs) instead.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The modules a plugin may import; keep in sync with docs/public-api.md (checked below).
PUBLIC = frozenset({
    "polymodal", "polymodal.errors", "polymodal.batch", "polymodal.results", "polymodal.paths",
    "polymodal.testing", "polymodal.model_api", "polymodal.experiment", "polymodal.checkpoint",
    "polymodal.weights", "polymodal.evaluation", "polymodal.config", "polymodal.data", "polymodal.collective",
    "polymodal.report", "polymodal.leaderboard", "polymodal.runner", "polymodal.distributed", "polymodal.registry",
    "polymodal.traits", "polymodal.perturb", "polymodal.strategy", "polymodal.stats", "polymodal.splits",
    "polymodal.suite", "polymodal.plugins", "polymodal.progress", "polymodal.writer_lock",
    "polymodal.report_sections", "polymodal.streaming",
})


def _plugin_sources() -> list[Path]:
    files = sorted((ROOT / "plugins").rglob("*.py"))
    for package in sorted((ROOT / "contrib").glob("*/src")):
        files += sorted(package.rglob("*.py"))
    return files


def polymodal_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of a ``polymodal`` module in ``path`` (any nesting)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "polymodal":  # `from polymodal import batch` imports a module too
                names += [f"polymodal.{a.name}" for a in node.names if (ROOT / "core" / f"{a.name}.py").exists()]
            found += [(node.lineno, n) for n in names if n == "polymodal" or n.startswith("polymodal.")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name == "polymodal" or a.name.startswith("polymodal.")]
    return found


def test_plugins_and_contrib_import_only_the_public_api() -> None:
    bad = [f"{p.relative_to(ROOT)}:{line}: {module}"
           for p in _plugin_sources() for line, module in polymodal_imports(p) if module not in PUBLIC]
    assert not bad, "internal polymodal modules imported by plugins (see docs/public-api.md):\n" + "\n".join(bad)


def test_the_docs_list_exactly_the_public_modules() -> None:
    page = (ROOT / "docs" / "public-api.md").read_text(encoding="utf-8")
    table = page.split("| module |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"`(polymodal(?:\.[a-z_]+)?)`", table))
    assert documented == PUBLIC


def test_the_checker_sees_nested_and_aliased_imports(tmp_path: Path) -> None:
    src = tmp_path / "x.py"
    src.write_text("import polymodal.suite as s\ndef f():\n    from polymodal.plugins import get_plugins\n"
                   "from polymodal import component, runner\n")
    assert sorted(polymodal_imports(src)) == [(1, "polymodal.suite"), (3, "polymodal.plugins"), (4, "polymodal"),
                                              (4, "polymodal.runner")]
