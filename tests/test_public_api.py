"""Plugins import from polymodal only the public API tier that docs/public-api.md gives their kind.

Two tiers. The *component API* is what modalities, encoders, fusions, models,
metrics, axes, datasets, corruptions, attacks and training strategies may
import; the *application API* adds what commands, reporters, report sections
and trainers need (runner, suite, report, leaderboard ...). Every other core
module is internal. "No privilege": a built-in needing a module outside its
tier is a missing seam in the contract; re-export the seam from a module of
the tier (and document it) instead of widening the tier.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What component plugins may import; keep in sync with docs/public-api.md (checked below).
COMPONENT = frozenset({
    "polymodal", "polymodal.errors", "polymodal.batch", "polymodal.data", "polymodal.traits", "polymodal.fusion",
    "polymodal.model_api", "polymodal.evaluation", "polymodal.results", "polymodal.strategy", "polymodal.perturb",
    "polymodal.stats", "polymodal.streaming", "polymodal.testing",
})
#: What commands, reporters, report sections and trainers may import on top of the component API.
APPLICATION = frozenset({
    "polymodal.runner", "polymodal.suite", "polymodal.report", "polymodal.report_sections", "polymodal.leaderboard",
    "polymodal.experiment", "polymodal.config", "polymodal.checkpoint", "polymodal.weights", "polymodal.distributed",
    "polymodal.collective", "polymodal.progress", "polymodal.writer_lock", "polymodal.registry", "polymodal.plugins",
    "polymodal.splits",
})
#: Core modules no plugin imports: the machinery behind the public modules (and old import paths kept for 2.x).
INTERNAL = frozenset({
    "polymodal.__main__", "polymodal.cli", "polymodal.hooks", "polymodal.hookspecs", "polymodal.manifest",
    "polymodal.compat", "polymodal.faults", "polymodal.versions", "polymodal.contract_checks", "polymodal.paths",
    "polymodal.contract_checks_app", "polymodal.clean_batches",
})
TIERS = {"component": COMPONENT, "application": COMPONENT | APPLICATION}

#: Tier of each built-in plugin directory: the kinds it registers decide.
DIRECTORY_TIER = {
    "plugins/modalities": "component", "plugins/encoders": "component", "plugins/fusions": "component",
    "plugins/models": "component", "plugins/metrics": "component", "plugins/axes": "component",
    "plugins/datasets": "component", "plugins/corruptions": "component", "plugins/attacks": "component",
    "plugins/suites": "component",
    "plugins/commands": "application", "plugins/reporters": "application", "plugins/training": "application",
}
#: Files whose tier differs from their directory's, and why.
FILE_TIER = {
    # The engine of the `polymodal data inspect` command: it expands suites like the runner does.
    "plugins/datasets/inspection.py": "application",
    # The training strategies are components, although they sit beside the trainer they plug into.
    "plugins/training/joint.py": "component",
    "plugins/training/staged.py": "component",
    "plugins/training/adversarial.py": "component",
    "plugins/training/strategy_params.py": "component",
}
#: A contrib package that registers one of these kinds gets the application tier.
APPLICATION_KINDS = frozenset({"commands", "reporters", "report_sections", "trainers"})


@functools.cache
def _nodes(path: Path) -> list[ast.AST]:
    """Every node of ``path``'s syntax tree, parsed once for all the scans below."""
    return list(ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))))


def polymodal_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of a ``polymodal`` module in ``path`` (any nesting)."""
    found = []
    for node in _nodes(path):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "polymodal":  # `from polymodal import batch` imports a module too
                names += [f"polymodal.{a.name}" for a in node.names if (ROOT / "core" / f"{a.name}.py").exists()]
            found += [(node.lineno, n) for n in names if n == "polymodal" or n.startswith("polymodal.")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name == "polymodal" or a.name.startswith("polymodal.")]
    return found


def registered_kinds(sources: list[Path]) -> set[str]:
    """Kinds a package registers: ``component("kind", ...)``, ``components("kind", ...)`` or ``register_<kind>``."""
    kinds: set[str] = set()
    for path in sources:
        for node in _nodes(path):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    in ("component", "components") and node.args and isinstance(node.args[0], ast.Constant)):
                kinds.add(str(node.args[0].value))
            elif isinstance(node, ast.FunctionDef) and node.name.startswith("register_"):
                kinds.add(node.name.removeprefix("register_"))
    return kinds


def plugin_tiers() -> dict[Path, str]:
    """The tier of every plugin source file in this repository (built-in and contrib)."""
    tiers: dict[Path, str] = {}
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        directory = "/".join(rel.split("/")[:2])
        tiers[path] = FILE_TIER.get(rel) or DIRECTORY_TIER.get(directory, "component" if rel == "plugins/__init__.py"
                                                                 else f"unclassified directory {directory}")
    for src in sorted((ROOT / "contrib").glob("*/src")):
        files = sorted(src.rglob("*.py"))
        tier = "application" if registered_kinds(files) & APPLICATION_KINDS else "component"
        tiers.update(dict.fromkeys(files, tier))
    return tiers


def test_plugins_and_contrib_import_only_their_tier_of_the_public_api() -> None:
    bad, unclassified = [], []
    for path, tier in plugin_tiers().items():
        if tier not in TIERS:
            unclassified.append(f"{path.relative_to(ROOT)}: {tier}")
            continue
        bad += [f"{path.relative_to(ROOT)}:{line}: {module} (not in the {tier} API)"
                for line, module in polymodal_imports(path) if module not in TIERS[tier]]
    assert not unclassified, "give these a tier in DIRECTORY_TIER or FILE_TIER:\n" + "\n".join(unclassified)
    assert not bad, "polymodal modules outside the plugin's tier (see docs/public-api.md):\n" + "\n".join(bad)


def test_no_plugin_imports_a_moved_module() -> None:
    """The old paths in compat.MOVED_MODULES are for third parties' old code; ours use the new ones."""
    from polymodal.compat import MOVED_MODULES

    bad = []
    for path in plugin_tiers():
        for node in _nodes(path):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            bad += [f"{path.relative_to(ROOT)}:{node.lineno}: {n} (use {MOVED_MODULES[n]})"
                    for n in names if n in MOVED_MODULES]
    assert not bad, "\n".join(bad)


def test_every_core_module_is_in_exactly_one_tier() -> None:
    core = {"polymodal"} | {f"polymodal.{p.stem}" for p in (ROOT / "core").glob("*.py") if p.stem != "__init__"}
    assert COMPONENT.isdisjoint(APPLICATION) and INTERNAL.isdisjoint(COMPONENT | APPLICATION)
    assert core == COMPONENT | APPLICATION | INTERNAL, "classify new core modules here and in docs/public-api.md"
    assert len(COMPONENT) <= 14, "the component API is meant to stay small: re-export instead of adding modules"


def test_the_docs_list_exactly_the_tiers() -> None:
    page = (ROOT / "docs" / "public-api.md").read_text(encoding="utf-8")

    def documented(heading: str) -> set[str]:
        table = page.split(heading, 1)[1].split("| module |", 1)[1].split("\n\n", 1)[0]
        return set(re.findall(r"`(polymodal(?:\.[a-z_]+)?)`", table))

    assert documented("## Component API") == COMPONENT
    assert documented("## Application API") == APPLICATION


def test_contrib_packages_that_register_commands_get_the_application_tier(tmp_path: Path) -> None:
    src = tmp_path / "pkg.py"
    src.write_text('from polymodal import component\nx = component("commands", "hello", "pkg.cmd:Hello")\n'
                   'y = component("fusions", "f", "pkg.f:F")\n')
    assert registered_kinds([src]) == {"commands", "fusions"}
    assert registered_kinds([src]) & APPLICATION_KINDS


def test_the_checker_sees_nested_and_aliased_imports(tmp_path: Path) -> None:
    src = tmp_path / "x.py"
    src.write_text("import polymodal.suite as s\ndef f():\n    from polymodal.plugins import get_plugins\n"
                   "from polymodal import component, runner\n")
    assert sorted(polymodal_imports(src)) == [(1, "polymodal.suite"), (3, "polymodal.plugins"), (4, "polymodal"),
                                              (4, "polymodal.runner")]


@pytest.mark.parametrize(("old", "new", "name"), [
    ("polymodal.paths", "polymodal.data", "resolve_inside"),
    ("polymodal_plugins.fusions.inputs", "polymodal.fusion", "gather_inputs"),
    ("polymodal_plugins.fusions.inputs", "polymodal.fusion", "check_input_dims"),
])
def test_moved_helpers_keep_their_old_import_path_with_a_deprecation_warning(old: str, new: str, name: str) -> None:
    import importlib

    with pytest.warns(DeprecationWarning, match=rf"{re.escape(old)}\.{name} moved to {re.escape(new)}\.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError), warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.import_module(old).no_such_name  # noqa: B018 - only the moved names are served
