"""contrib/ packages look and behave like independent third-party distributions.

Each must have its own pyproject (declaring ``polymodal`` entry points),
README and tests, a light entry-point module that declares ``POLYMODAL_API``,
and import polymodal only through its public API, never the built-in plugins
or the core's internals.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from test_public_api import APPLICATION, COMPONENT

CONTRIB = Path(__file__).resolve().parents[1] / "contrib"
PACKAGES = sorted(p for p in CONTRIB.iterdir() if (p / "pyproject.toml").is_file())
#: The public API a third party may import (either tier, documented in docs/public-api.md); which
#: tier a package's own modules may use is checked by test_public_api.
PUBLIC = COMPONENT | APPLICATION
HEAVY = {"torch", "numpy", "transformers", "timm", "torchmetrics", "PIL", "sentence_transformers"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_the_expected_packages_exist():
    assert {p.name for p in PACKAGES} >= {"polymodal-fusion-zoo", "polymodal-minilm", "polymodal-modality-gap"}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_package_is_self_contained(package):
    meta = tomllib.loads((package / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["name"] == package.name
    assert any(d.startswith("polymodal") and not d.startswith("polymodal-") for d in project["dependencies"])
    entry_points = project["entry-points"]["polymodal"]
    assert entry_points
    assert (package / "README.md").is_file() and list((package / "tests").glob("test_*.py"))
    for target in entry_points.values():
        module, _, attr = target.partition(":")
        source = package / "src" / Path(*module.split(".")) / "__init__.py"
        assert source.is_file(), target
        text = source.read_text()
        assert "POLYMODAL_API" in text and attr in text
        assert not imports(source) & HEAVY, f"{source} (loaded by the entry point) imports something heavy"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_uses_only_the_public_api(package):
    for source in [*package.glob("src/**/*.py"), *package.glob("tests/*.py")]:
        for module in imports(source):
            if module == "polymodal" or module.startswith("polymodal."):
                assert module in PUBLIC, f"{source.relative_to(CONTRIB)} imports non-public {module}"
            assert not module.startswith("polymodal_plugins"), f"{source} imports the built-in plugins"
