"""The README's two set-up commands are the ones CI runs, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    return [line[4:] for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith("    ") and not line.startswith("     ")]


def test_readme_has_exactly_the_two_setup_commands_ci_uses() -> None:
    cmds = _commands()
    setup = [c for c in cmds if c.startswith("python3.11 -m venv")]
    tests = [c for c in cmds if c.startswith(".venv/bin/python -m pytest")]
    assert len(setup) == 1 and len(tests) == 1
    assert "-c constraints.txt" in setup[0] and setup[0].endswith("&& .venv/bin/polymodal run")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "/^python3.11 -m venv/p" in ci and "/^\\.venv\\/bin\\/python -m pytest/p" in ci
    assert "-eq 5" in ci  # pytest's 'no tests collected' fails CI
    assert "export CI=true" in ci  # a test needing something missing (Chromium) fails rather than skips
    assert "contrib/run-tests" in ci  # as contrib/README.md promises
    for path in re.findall(r"-e '?(contrib/[\w.-]+)", setup[0]):
        assert (ROOT / path / "pyproject.toml").is_file(), path


def test_constraints_pin_every_declared_runtime_dependency() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {line.split("==")[0].strip().lower() for line in (ROOT / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    for dep in project["dependencies"] + project["optional-dependencies"]["test"]:
        name = re.split(r"[<>=!~ \[]", dep, maxsplit=1)[0].lower()
        assert name in pinned, f"{name} is declared in pyproject.toml but not pinned in constraints.txt"
