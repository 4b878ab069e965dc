"""``polymodal new-plugin NAME --kind KIND``: scaffold a ready-to-install plugin package.

The written package is what ``contrib/`` packages look like: a src layout, a
pyproject declaring the ``polymodal`` entry point, a light plugin object with
``POLYMODAL_API``, a minimal implementation that honours the kind's contract,
tests that use the fixtures polymodal ships, and a README. Its tests pass right
after ``pip install -e`` so an author starts from green and changes one thing
at a time.

This module is imported when the CLI builds its parser, so it imports only the
standard library and the light core.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from string import Template

from polymodal import PLUGIN_API_VERSION, ConfigError, __version__
from polymodal.registry import kind_of

#: The kinds a scaffold exists for (singular, as typed on the command line).
SCAFFOLD_KINDS = ("fusion", "encoder", "model", "metric", "axis", "dataset")

#: Implementation module per kind; never equal to the plugin object's name
#: (``plugin``), since importing a submodule would shadow that attribute.
_MODULES = {"fusions": "fusion", "encoders": "encoder", "models": "model", "metrics": "metric",
            "axes": "axis", "datasets": "dataset"}
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_DESCRIPTIONS = {
    "fusions": "Mean of per-modality projections over present modalities (template)",
    "encoders": "Linear token projection encoder (template)",
    "models": "Linear multimodal classifier (template)",
    "metrics": "Mean absolute error (template)",
    "axes": "Classification accuracy axis (template)",
    "datasets": "JSON-lines manifest dataset (template)",
}


def names_for(name: str) -> dict[str, str]:
    """Distribution, import package, component name and class name for ``NAME``.

    ``my-fusion`` and ``polymodal-my-fusion`` both give distribution
    ``polymodal-my-fusion``, package ``polymodal_my_fusion`` and component
    ``my-fusion``: the prefix makes packages findable on PyPI and keeps import
    names from clashing with unrelated projects.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"plugin name {name!r} must be lower case words of letters and digits joined by '-' "
            "(e.g. 'gated-fusion'), starting with a letter"
        )
    component = name.removeprefix("polymodal-")
    if not component:
        raise ConfigError("plugin name must say what it is, not just 'polymodal-'")
    dist = f"polymodal-{component}"
    return {
        "dist": dist,
        "pkg": dist.replace("-", "_"),
        "name": component,
        "cls": "".join(part.capitalize() for part in re.split(r"[-]", component)),
    }


def render(name: str, kind_word: str) -> dict[str, str]:
    """The scaffold's files as ``{relative path: text}`` (nothing is written)."""
    from polymodal_plugins.commands import scaffold_templates as t

    kind = kind_of(kind_word)
    if kind not in _MODULES:
        raise ConfigError(f"no scaffold for kind {kind_word!r}; choose one of: {', '.join(SCAFFOLD_KINDS)}")
    values = names_for(name)
    module = _MODULES[kind]
    values.update(
        kind=kind,
        singular=module,
        module=module,
        api=PLUGIN_API_VERSION,
        core_version=__version__,
        description=_DESCRIPTIONS[kind],
        extra_options=t.EXTRA_OPTIONS.get(kind, ""),
    )
    values["usage"] = Template(t.USAGE[kind]).substitute(values)
    pkg = values["pkg"]
    files = {
        "pyproject.toml": t.PYPROJECT,
        "README.md": t.README,
        f"src/{pkg}/__init__.py": t.INIT,
        f"src/{pkg}/{module}.py": t.IMPLEMENTATIONS[kind],
        f"tests/test_{pkg}.py": t.TESTS[kind],
    }
    return {path: Template(text).substitute(values) for path, text in files.items()}


def write_scaffold(name: str, kind_word: str, dest: Path, force: bool = False) -> list[Path]:
    """Write the package into ``dest / <distribution name>``; refuse to overwrite unless ``force``."""
    files = render(name, kind_word)
    root = dest / names_for(name)["dist"]
    if root.exists() and any(root.iterdir()) and not force:
        raise ConfigError(f"{root} already exists and is not empty; choose another --dir or pass --force")
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """The ``register_commands`` factory: add arguments, return the handler."""
    parser.add_argument("name", help="plugin name, e.g. 'gated-fusion' (package polymodal-gated-fusion)")
    parser.add_argument("--kind", required=True, choices=SCAFFOLD_KINDS, help="component kind to scaffold")
    parser.add_argument("--dir", default=".", help="folder to create the package in (default: current)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing non-empty package folder")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")

    def handler(args: argparse.Namespace) -> int:
        written = write_scaffold(args.name, args.kind, Path(args.dir), force=args.force)
        root = written[0].parent
        if args.json:
            json.dump({"package": str(root), "files": [str(p) for p in written]}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for path in written:
                print(path)
            print(f"\nnext: pip install -e '{root}[test]' && python -m pytest {root}", file=sys.stderr)
        return 0

    return handler
