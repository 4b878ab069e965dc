"""``polymodal data inspect|preview TARGET``: look at a dataset before anything trains.

TARGET is a suite (file or registered name), an experiment file, or a
dataset name with ``--root`` and ``--param key=value``. Light at import
(argparse only); the data path is imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _param(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as TOML (``size=32``, ``path="m.csv"``), else as a string."""
    import tomllib

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value


def configure(parser: argparse.ArgumentParser) -> object:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("target", help="a suite file or name, an experiment file, or a dataset name")
    common.add_argument("--root", help="dataset root (with a dataset name)")
    common.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                        help="dataset parameter (with a dataset name), e.g. --param path=m.csv (repeatable)")
    common.add_argument("--splits", help="with a dataset name: splits to ask it for, e.g. train,val,test "
                                          "(default: the whole dataset as one split 'all')")
    common.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a key of the suite or experiment file")
    p = sub.add_parser("inspect", parents=[common], help="fields, label counts, one batch's shapes, failing samples")
    p.add_argument("--limit", type=int, help="check at most N samples per split for load failures")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p = sub.add_parser("preview", parents=[common], help="write an HTML page of samples")
    p.add_argument("--out", default="preview.html", help="HTML file to write (default: preview.html)")
    p.add_argument("--samples", type=int, default=16, help="samples per page (default: 16)")
    p.add_argument("--split", help="split to show (default: the training split)")

    def handler(args: argparse.Namespace) -> int:
        from polymodal import get_plugins
        from polymodal_plugins.datasets.inspection import data_configs

        plugins = get_plugins()
        configs = data_configs(args.target, plugins, root=args.root, params=dict(args.param), overrides=args.set,
                               splits=[s for s in (args.splits or "").split(",") if s] or None)
        if args.data_command == "preview":
            return _preview(args, configs, plugins)
        return _inspect(args, configs, plugins)

    return handler


def _inspect(args: argparse.Namespace, configs: list[Any], plugins: Any) -> int:
    from polymodal_plugins.datasets.inspection import format_report, inspect_experiment

    show = None if args.json or not sys.stderr.isatty() else (lambda m: print(f"\r{m}", end="", file=sys.stderr))
    reports = [inspect_experiment(label, cfg, plugins, check_limit=args.limit, progress=show) for label, cfg in configs]
    if args.json:
        json.dump(reports, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print("\n\n".join(format_report(r) for r in reports))
    return 1 if any(r["failures"] for r in reports) else 0


def _preview(args: argparse.Namespace, configs: list[Any], plugins: Any) -> int:
    from pathlib import Path

    from polymodal.data import build_modalities
    from polymodal.traits import traits_of
    from polymodal_plugins.datasets.preview import write_preview
    from polymodal_plugins.training.data_source import build_splits

    written = []
    for n, (label, cfg) in enumerate(configs):
        splits = build_splits(cfg, plugins, label)
        split = args.split or cfg.data.train_split
        if split not in splits:
            from polymodal.errors import ConfigError

            raise ConfigError(f"--split {split!r}: {label} has splits {', '.join(splits)}")
        out = Path(args.out) if len(configs) == 1 else Path(args.out).with_name(f"{Path(args.out).stem}-{n}.html")
        # Each field previews as its configured modality declares (its traits), never by name or type.
        fields = dict(getattr(splits[split], "fields", {}) or {})
        traits = {f: traits_of(m) for f, m in build_modalities(fields, cfg.data.modalities, plugins=plugins).items()}
        written.append(str(write_preview(splits[split], out, split=split, samples=args.samples,
                                         title=f"{label}: dataset {cfg.data.dataset!r}", traits=traits)))
    print("\n".join(written))
    return 0
