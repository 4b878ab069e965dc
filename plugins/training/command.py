"""``polymodal train CONFIG [--set key=value ...] [--resume] [--out DIR]``.

Kept light: argparse only at import; torch is imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> object:
    parser.add_argument("config", help="experiment TOML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set model.fusion=attention (repeatable)")
    parser.add_argument("--out", help="output folder (default: runs/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress display")

    def handler(args: argparse.Namespace) -> int:
        from polymodal.distributed import distributed_context
        from polymodal import get_plugins
        from polymodal_plugins.training.trainer import train_experiment

        # Under torchrun every rank trains its part of each batch (DDP); only rank 0 prints.
        with distributed_context(None) as dist:
            outcome = train_experiment(args.config, overrides=args.overrides, out=args.out, resume=args.resume,
                                       plugins=get_plugins(), progress=not args.quiet)
        if dist.rank != 0:
            return 0
        if args.json:
            json.dump(outcome.to_json(), sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(f"trained {outcome.steps} steps in {outcome.seconds:.1f}s "
                  f"({outcome.samples_per_second:.0f} samples/s); checkpoint: {outcome.checkpoint}")
            for split, figures in outcome.metrics.items():
                print(f"  {split}: " + "  ".join(f"{k} {v:.4f}" for k, v in figures.items()))
        return 0

    return handler
