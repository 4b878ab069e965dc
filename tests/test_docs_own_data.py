"""docs/own-data.md runs as written: its python blocks, its TOML files and its polymodal commands."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAGE = Path(__file__).resolve().parents[1] / "docs" / "own-data.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks(text: str) -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2).strip(), m.group(3)) for m in FENCE.finditer(text)]


def test_every_example_on_the_page_runs(tmp_path, monkeypatch):
    from polymodal.cli import main

    monkeypatch.chdir(tmp_path)
    found = blocks(PAGE.read_text(encoding="utf-8"))
    assert {lang for lang, _, _ in found} == {"python", "toml", "sh"}
    namespace: dict = {"__name__": "own_data_doc"}
    commands = 0
    for n, (lang, info, body) in enumerate(found):
        if lang == "toml":
            name = dict(part.split("=", 1) for part in info.split())["file"]
            Path(name).write_text(body, encoding="utf-8")
        elif lang == "python":
            exec(compile(body, f"{PAGE.name} block {n}", "exec"), namespace)  # noqa: S102 - our own page
        else:
            for line in body.splitlines():
                if not line.startswith("polymodal "):
                    continue
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    code = main(shlex.split(line)[1:])
                assert code == 0, f"{line!r} exited {code}:\n{out.getvalue()[-3000:]}"
                commands += 1
    assert commands >= 8
    assert Path("shards-preview.html").read_text().count("data:image/png;base64,") == 16  # --samples default
    assert Path("results/my-data/report.md").is_file()
