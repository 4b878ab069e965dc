"""``polymodal report RESULTS_DIR [--format html|markdown|json] [--out FILE]``.

Light on purpose: the CLI builds every command's parser at start-up, so this
module imports only the core; the reporter (matplotlib for HTML) loads when
the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from polymodal import component


def make_command(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="a folder written by 'polymodal run'")
    parser.add_argument("--format", "-f", default="html",
                        help="reporter name: html (default), markdown, json, or one a plugin adds")
    parser.add_argument("--all", action="store_true",
                        help="write html, markdown and json next to the results (ignores --format/--out)")
    parser.add_argument("--out", "-o", metavar="FILE", help="output file (default: RESULTS_DIR/report.<ext>)")

    def handler(args: argparse.Namespace) -> int:
        from polymodal.errors import ConfigError
        from polymodal.report import render, write_reports

        if args.all:
            if args.out:
                raise ConfigError("--all writes every format into RESULTS_DIR; it cannot be combined with --out")
            for path in write_reports(args.results_dir):
                print(path)
            return 0
        print(render(args.results_dir, args.format, args.out))
        return 0

    return handler


plugin = component("commands", "report", "polymodal_plugins.commands.report:make_command",
                   description="Render a results folder as an HTML, Markdown or JSON report.")
