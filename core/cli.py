"""The ``polymodal`` command line.

The core provides only the basics (``plugins``, ``list``, ``info``); every
other command is registered by a plugin through ``register_commands``.
Errors raised as :class:`PolymodalError` print one line and exit 2; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from polymodal import __version__
from polymodal.errors import PolymodalError
from polymodal.plugins import PLUGIN_API_VERSION, PluginSettings, Plugins, build_plugin_manager, set_plugins
from polymodal.registry import KINDS, kind_of, singular

Handler = Callable[[argparse.Namespace], int]


def _settings(argv: Sequence[str]) -> PluginSettings:
    """Plugin settings from ``--config``/``POLYMODAL_CONFIG``, the environment and ``--strict``."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--strict", action="store_true")
    known, _ = pre.parse_known_args(argv)
    path = known.config or os.environ.get("POLYMODAL_CONFIG")
    if path:
        from polymodal.config import load_toml, plugin_settings_from

        settings = plugin_settings_from(load_toml(path), path)
    else:
        settings = PluginSettings.from_env()
    if known.strict:
        settings = PluginSettings(settings.load, settings.disable, True, settings.trace)
    return settings


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def _cmd_plugins(plugins: Plugins) -> Handler:
    def run(args: argparse.Namespace) -> int:
        records = sorted(plugins.records.values(), key=lambda r: r.name)
        if args.json:
            _print_json({"plugins": [r.to_json() for r in records], "conflicts": plugins.conflicts()})
            return 0
        width = max((len(r.name) for r in records), default=4)
        for r in records:
            made = sum(len(v) for v in r.registered.values())
            what = ", ".join(f"{len(v)} {k}" for k, v in sorted(r.registered.items()))
            line = f"{r.name:<{width}}  {r.status:<8}  {r.distribution} {r.version}"
            if r.status == "loaded":
                line += f"  [{what or 'nothing registered'}]" if made else "  [nothing registered]"
                line += "".join(f"  DEPRECATED: {n}" for n in r.notes)
            else:
                line += f"  {r.reason}"
            print(line)
        for c in plugins.conflicts():
            print(f"CONFLICT: {c}")
        if args.verbose:
            for r in records:
                if r.detail:
                    print(f"\n--- {r.name} ---\n{r.detail}")
        return 0

    return run


def _cmd_list(plugins: Plugins) -> Handler:
    def run(args: argparse.Namespace) -> int:
        kinds = [kind_of(args.kind)] if args.kind else list(KINDS)
        listing = {k: [s.to_json() for s in plugins.list(k, args.pattern)] for k in kinds}
        if args.json:
            _print_json(listing)
            return 0
        for kind in kinds:
            if not args.kind:
                print(f"{kind}:")
            for spec in listing[kind]:
                indent = "  " if not args.kind else ""
                print(f"{indent}{spec['name']:<24} {spec['description']}  [{spec['plugin']}]")
        return 0

    return run


def _cmd_info(plugins: Plugins) -> Handler:
    def run(args: argparse.Namespace) -> int:
        spec = plugins.get(args.kind, args.name)
        info = spec.to_json()
        if spec.kind == "suites":
            # A suite is a file: show where it is and what it says, not the object that locates it.
            from polymodal.suite import resolve_suite_path

            path = resolve_suite_path(spec.name, plugins)
            info.update(path=str(path), content=path.read_text(encoding="utf-8"))
            if args.json:
                _print_json(info)
                return 0
            print(f"suite {spec.name}: {spec.description}")
            print(f"  provided by plugin {spec.plugin!r} ({spec.distribution})")
            print(f"  file: {path}\n")
            print(info["content"].rstrip("\n"))
            return 0
        info["parameters"] = {k: v for k, v in spec.parameters().items()}
        types = spec.parameter_types()
        if types:
            info["parameter_types"] = types
        from polymodal.traits import ModalityTraits

        from polymodal.evaluation import metric_feeds

        factory = spec.load()
        traits = getattr(factory, "traits", None)  # a modality's declared facts (class attribute)
        if isinstance(traits, ModalityTraits):
            info["traits"] = traits.to_json()
        feeds = metric_feeds(factory)  # an axis's declared fact: which metrics a suite may choose for it
        if feeds is not None:
            info["metric_feeds"] = sorted(feeds)
        if args.json:
            _print_json(info)
            return 0
        print(f"{singular(spec.kind)} {spec.name}: {spec.description}")
        print(f"  provided by plugin {spec.plugin!r} ({spec.distribution}), {spec.target}")
        if spec.capabilities:
            print(f"  capabilities: {', '.join(sorted(spec.capabilities))}")
        if "traits" in info:
            print("  traits: " + ", ".join(f"{k}={v!r}" for k, v in info["traits"].items()))
        if "metric_feeds" in info:
            print("  metrics = [...]: " + (f"metrics declaring {', '.join(info['metric_feeds'])}"
                                          if info["metric_feeds"] else "not choosable (fixed figures)"))
        if info["parameters"]:
            print("  parameters:")
            for k, v in info["parameters"].items():
                print(f"    {k}{': ' + types[k] if k in types else ''} = {v!r}")
        return 0

    return run


def _cmd_run(plugins: Plugins) -> Handler:
    def run(args: argparse.Namespace) -> int:
        from pathlib import Path

        from polymodal.distributed import distributed_context
        from polymodal.runner import RunOptions, default_out, run_suite
        from polymodal.suite import expand_suite, load_suite_dict, resolve_suite_path

        with distributed_context(args.device) as dist:
            out = Path(args.out) if args.out else None
            if out is None:
                path = resolve_suite_path(args.suite, plugins)
                out = default_out(expand_suite(load_suite_dict(path, args.set), str(path)))
            options = RunOptions(out=out, resume=args.resume, device=args.device, limit=args.limit,
                                 fail_fast=args.fail_fast, progress=not args.quiet,
                                 rank=dist.rank, world_size=dist.world_size)
            suite, manifest = run_suite(args.suite, plugins=plugins, overrides=args.set,
                                        seeds=args.seed, options=options)
            if dist.rank == 0 and not args.no_report:
                from polymodal.report import DEFAULT_FORMATS, write_reports

                formats = [f for f in DEFAULT_FORMATS if f in plugins.registry("reporters")]
                write_reports(out, formats, plugins=plugins)
            if dist.rank == 0:
                _print_json({"out": str(out), "runs": len(manifest.get("runs", [])),
                             "failed_runs": manifest.get("failed_runs", 0)})
        return 1 if manifest.get("failed_runs") else 0

    return run


def build_parser(plugins: Plugins) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polymodal",
        description="Build, train and evaluate multimodal models from plugins.",
    )
    parser.add_argument("--version", action="version",
                        version=f"polymodal {__version__} (plugin API {PLUGIN_API_VERSION})")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--strict", action="store_true", help="fail when any plugin fails to load")
    parser.add_argument("--config", help="TOML file whose [plugins] table selects plugins")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list installed plugins and their status")
    p.add_argument("--json", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of failed plugins")
    p.set_defaults(handler=_cmd_plugins(plugins))

    p = sub.add_parser("list", help="list registered components, e.g. 'list encoders timm*'")
    p.add_argument("kind", nargs="?", help=f"one of (singular or plural): {', '.join(KINDS)}")
    p.add_argument("pattern", nargs="?", help="shell-style wildcard on the name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_list(plugins))

    p = sub.add_parser("info", help="describe one component: parameters and provider (a suite: its file)")
    p.add_argument("kind", help="singular or plural: modality, modalities, axis, axes, ...")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_info(plugins))

    p = sub.add_parser("run", help="run an evaluation suite (default: the built-in quickstart)",
                       description="Validate a suite, train and evaluate every run, stream results to "
                                   "OUT/results.jsonl and write the reports. Resumable with --resume.")
    p.add_argument("suite", nargs="?", default="quickstart", help="a suite file or the name of a registered suite")
    p.add_argument("--out", help="results folder (default: results/<suite name>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--seed", type=int, action="append", help="run with these seeds instead of the suite's (repeatable)")
    p.add_argument("--limit", type=int, help="use at most N samples per split (quick runs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a suite key")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing run")
    p.add_argument("--no-report", action="store_true", help="do not render reports at the end")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=_cmd_run(plugins))

    for spec in plugins.list("commands"):
        if spec.name in sub.choices:
            continue
        cmd = sub.add_parser(spec.name, help=spec.description, description=spec.description)
        try:
            handler = spec.load()(cmd)
        except Exception as exc:  # noqa: BLE001 - a broken command must not break the CLI
            msg = f"command {spec.name!r} from plugin {spec.plugin!r} is broken: {type(exc).__name__}: {exc}"

            def handler(args: argparse.Namespace, msg: str = msg) -> int:
                raise PolymodalError(msg)

        cmd.set_defaults(handler=handler)
    return parser


def process_exit(code: int) -> None:
    """End the process with ``code``, skipping C++ teardown in a ``torchrun`` worker.

    Why (issue 16; native backtrace from a core dump of a worker run with the
    normal exit): a torchrun worker sometimes aborted *after* its work was
    done and stored, ``terminate called without an active exception``
    (SIGABRT, no Python frame). The aborting thread is one of gloo's worker
    threads (``ProcessGroupGloo::runLoop``): it had just completed our last
    ``all_gather`` (the end-of-job barrier), and drops its reference to that
    work a moment after the main thread is released by it; destroying
    ``AsyncAllgatherWork`` releases tensors that have Python objects, which
    needs the GIL; by then the main thread is in ``Py_FinalizeEx``, so
    ``take_gil`` ends the thread with ``pthread_exit``, whose forced unwind
    through a ``noexcept`` destructor calls ``std::terminate``. It can only
    happen because the gloo group's threads are still running at exit:
    ``destroy_process_group`` joins them when nothing else holds the group,
    but PyTorch keeps the group alive past it (a) once ``torch._dynamo`` was
    imported *after* ``init_process_group`` (torchmetrics, torchvision, DDP
    and AdamW all import it; pure torch: 4 threads left after destroy with
    that import, 1 without or with it imported first) and (b) while a
    ``DistributedDataParallel`` wrapper is alive. Upstream:
    pytorch/pytorch#107298 (threads left after destroy_process_group) and
    #179291 (this GIL-at-finalisation abort from gloo work; an atexit fix,
    abandoned). The source fix is in :func:`polymodal.distributed.distributed_context`:
    it imports ``torch._dynamo`` before creating the group and collects
    garbage (a DDP wrapper in a reference cycle) before destroying it, so the
    group's threads are joined there (1 thread left after destroy in both
    ``run`` and ``train``). This exit stays as the second line, for a group
    something else keeps alive (a plugin holding a DDP wrapper): the group is
    already destroyed and every result fsynced when this runs, so a worker
    flushes its streams, runs the ``atexit`` handlers and leaves with
    ``os._exit``, skipping the finalisation in which the race lives; one
    process exits normally.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("POLYMODAL_DEBUG") == "1"
    try:
        plugins = build_plugin_manager(_settings(argv))
        set_plugins(plugins)
        parser = build_parser(plugins)
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 0
        return int(args.handler(args) or 0)
    except PolymodalError as exc:
        if debug:
            traceback.print_exc()
        print(f"polymodal: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("polymodal: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
