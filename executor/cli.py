"""`kmf executor`: the same as `python -m executor` (run by a Mesos agent, not by hand)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("executor", help="run the kmf executor (started by a Mesos agent)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from executor.main import main
    return main()
