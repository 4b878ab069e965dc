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
from collections.abc import Callable, Sequence
from pathlib import Path

from polymodal import PLUGIN_API_VERSION, ConfigError, __version__
from polymodal.registry import kind_of

#: The kinds a scaffold exists for (singular, as typed on the command line).
SCAFFOLD_KINDS = ("modality", "fusion", "encoder", "model", "metric", "axis", "dataset", "strategy", "attack",
                  "corruption", "reporter", "report-section", "suite", "command", "trainer")

#: Implementation module per kind; never equal to the plugin object's name
#: (``plugin``), since importing a submodule would shadow that attribute.
_MODULES = {"modalities": "modality", "fusions": "fusion", "encoders": "encoder", "models": "model",
            "metrics": "metric", "axes": "axis", "datasets": "dataset", "strategies": "strategy",
            "attacks": "attack", "corruptions": "corruption", "reporters": "reporter",
            "report_sections": "report_section", "suites": "suite", "commands": "command", "trainers": "trainer"}
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_DESCRIPTIONS = {
    "modalities": "Series of numbers, padded with a mask (template)",
    "fusions": "Mean of per-modality projections over present modalities (template)",
    "encoders": "Linear token projection encoder (template)",
    "models": "Encoders, the configured fusion and a linear head (template)",
    "metrics": "Mean absolute error (template)",
    "axes": "Classification accuracy axis (template)",
    "datasets": "JSON-lines manifest dataset (template)",
    "strategies": "Joint training with random modality dropout (template)",
    "attacks": "R+FGSM: a random step, then one gradient step (template)",
    "corruptions": "Impulse (salt-and-pepper) noise on RGB images, 1%..20% of the pixels (template)",
    "reporters": "Leaderboard as CSV: one line per run, one column per axis/metric (template)",
    "report_sections": "Renders its artifact kind as a table of the artifact data (template)",
    "suites": "A tiny shapes suite: one classifier, the task axis (template)",
    "commands": "Count result rows per axis in a results folder (template)",
    "trainers": "The default trainer, plus the model's parameter counts as figures (template)",
}

#: The registered name, where it is not the component name: a corruption's starts with its raw format.
_REGISTERED = {"corruptions": "rgb.{name}"}
#: The factory attribute in the implementation module, where it is not the class: these kinds'
#: factories are functions (a corruption is called per sample; the others take arguments a class would not).
_TARGETS = {"corruptions": "{snake}", "report_sections": "{snake}_section", "suites": "{snake}_suite",
            "commands": "configure", "trainers": "train"}
#: Files beyond the implementation and its test: package data, as ``{path: template}``.
_DATA_FILES = {"suites": {"src/{pkg}/suites/{name}.toml": "suite.toml.j2"}}


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


#: How each kind's scaffold is used, for the package README.
_USAGE = {
    "modalities": 'a dataset declares a field of it, e.g. `fields = {{"reading": "{name}"}}`',
    "fusions": 'in a suite, `model.fusion = "{name}"` (parameters in `model.fusion_params`)',
    "encoders": 'in a suite, `model.encoders.<field> = {{ name = "{name}" }}`',
    "models": 'in a suite, `model.name = "{name}"`',
    "metrics": '`polymodal.get_plugins().build("metrics", "{name}")` gives a torchmetrics Metric',
    "axes": 'in a suite, `[axes.{name}]`',
    "datasets": 'in a suite, `data.dataset = "{name}"`; the root holds `<split>.jsonl`',
    "strategies": ('in a suite, `[defaults.train] strategy = "{name}"` '
                   '(options in `strategy_params = {{ p = 0.3 }}`)'),
    "attacks": 'in a suite, `[axes."robustness.adversarial"] attacks = ["fgsm", "{name}"]`',
    "corruptions": 'in a suite, `[axes.noise] axis = "robustness.noise"` uses it on every rgb field '
                   '(or `corruptions = {{ image = ["{name}"] }}`)',
    "reporters": '`polymodal report RESULTS -f {name}` writes `RESULTS/report.{name}`',
    "report_sections": 'an axis calling `ctx.artifact("{snake}", {{...}})` gets its examples in report.html and .md',
    "suites": '`polymodal run {name}`; `polymodal info suite {name}` prints the file',
    "commands": '`polymodal {name} RESULTS` (add `--json` for JSON)',
    "trainers": 'in a suite, top-level `trainer = "{name}"`',
}
_EXTRA_OPTIONS = {"models": '\n    capabilities=["classify"],',
                  "strategies": '\n    params="{pkg}.strategy:{cls}Params",',
                  "corruptions": '\n    tags=["rgb"],'}
_TEMPLATES = Path(__file__).with_name("scaffolds")


def render(name: str, kind_words: str | Sequence[str]) -> dict[str, str]:
    """The scaffold's files as ``{relative path: text}`` (nothing is written).

    The templates are jinja2 files in ``scaffolds/`` (package data): one
    implementation and one test file per kind (and package data where a kind
    ships a file: a suite's TOML), plus the shared pyproject, README and light
    ``__init__``. Several kinds make one package with one
    entry point per component.
    """
    import jinja2

    words = [kind_words] if isinstance(kind_words, str) else list(kind_words)
    kinds: list[str] = []
    for word in words:
        kind = kind_of(word)
        if kind not in _MODULES:
            raise ConfigError(f"no scaffold for kind {word!r}; choose one of: {', '.join(SCAFFOLD_KINDS)}")
        if kind in kinds:
            raise ConfigError(f"--kind {word} given twice; a package has one scaffold per kind")
        kinds.append(kind)
    if not kinds:
        raise ConfigError(f"give at least one --kind: {', '.join(SCAFFOLD_KINDS)}")
    values = names_for(name)
    values["snake"] = values["name"].replace("-", "_")  # a Python name (function, artifact kind)
    single = len(kinds) == 1
    components = []
    for kind in kinds:
        module = _MODULES[kind]
        components.append({
            "kind": kind, "singular": module.replace("_", "-"), "module": module, "cls": values["cls"],
            "name": _REGISTERED.get(kind, "{name}").format(**values),
            "target": _TARGETS.get(kind, "{cls}").format(**values),
            "description": _DESCRIPTIONS[kind], "extra_options": _EXTRA_OPTIONS.get(kind, "").format(**values),
            "usage": _USAGE[kind].format(name=values["name"], snake=values["snake"]),
            # one kind keeps the short names; several get one object and entry point per kind
            "obj": "plugin" if single else f"{module}_plugin",
            "entry_point": values["name"] if single else f"{values['name']}.{module}",
        })
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    context = {**values, "api": PLUGIN_API_VERSION, "core_version": __version__, "components": components,
               "package_data": any(c["kind"] in _DATA_FILES for c in components),
               "description": components[0]["description"] if single else
               "polymodal plugins: " + ", ".join(f"{c['singular']} {c['name']}" for c in components)}
    pkg = values["pkg"]
    files = {
        "pyproject.toml": env.get_template("pyproject.toml.j2").render(context),
        "README.md": env.get_template("README.md.j2").render(context),
        f"src/{pkg}/__init__.py": env.get_template("__init__.py.j2").render(context),
    }
    for c in components:
        files[f"src/{pkg}/{c['module']}.py"] = env.get_template(f"{c['module']}.py.j2").render(context, c=c)
        test = f"tests/test_{pkg}.py" if single else f"tests/test_{c['module']}.py"
        files[test] = env.get_template(f"test_{c['module']}.py.j2").render(context, c=c)
        for path, template in _DATA_FILES.get(c["kind"], {}).items():
            files[path.format(**values)] = env.get_template(template).render(context, c=c)
    return files


def write_scaffold(name: str, kind_words: str | Sequence[str], dest: Path, force: bool = False) -> list[Path]:
    """Write the package into ``dest / <distribution name>``; refuse to overwrite unless ``force``."""
    files = render(name, kind_words)
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
    parser.add_argument("--kind", required=True, action="append", choices=SCAFFOLD_KINDS,
                        help="component kind to scaffold; repeat for a package with several kinds")
    parser.add_argument("--dir", default=".", help="folder to create the package in (default: current)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing non-empty package folder")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")

    def handler(args: argparse.Namespace) -> int:
        written = write_scaffold(args.name, args.kind, Path(args.dir), force=args.force)
        root = Path(args.dir) / names_for(args.name)["dist"]
        if args.json:
            json.dump({"package": str(root), "files": [str(p) for p in written]}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for path in written:
                print(path)
            print(f"\nnext: pip install -e '{root}[test]' && python -m pytest {root}", file=sys.stderr)
        return 0

    return handler
