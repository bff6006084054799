"""`kmf scheduler --config FILE`, and `python -m scheduler --config FILE` (the same command)."""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

HELP = "run the kmf Mesos scheduler (leader or standby)"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="service YAML (see docs/configuration.md)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scheduler", help=HELP)
    _arguments(parser)
    parser.set_defaults(func=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scheduler`: `kmf scheduler` without the rest of kmf's command line (the
    scheduler does not import the application's top package)."""
    parser = argparse.ArgumentParser(prog="kmf scheduler")
    _arguments(parser)
    args = parser.parse_args(argv)
    # as kmf's command line sets it up
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from scheduler.main import run
    return run(args.config)
