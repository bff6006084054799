"""`kmf scheduler --config FILE`."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scheduler", help="run the kmf Mesos scheduler (leader or standby)")
    parser.add_argument("--config", required=True, help="service YAML (see docs/configuration.md)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from scheduler.main import run
    return run(args.config)
