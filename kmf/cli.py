"""The `kmf` command: one argparse tree whose branches live beside the code they drive.

Each area contributes a module with `register(subparsers)`; a branch sets `func` on its parser,
which receives the parsed arguments and returns the process exit code.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from kmf import __version__

# Modules that add sub-commands. Each is imported lazily so that a broken or slow area does not
# stop the others (e.g. `kmf config validate` must not import pymesos).
COMMAND_MODULES = (
    "kmf.config_cli",
    "localmesos.cli",
    "scheduler.cli",
    "executor.cli",
    "kmf.operator_cli",
    "kmf.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kmf", description="Kafka Mesos Framework")
    parser.add_argument("--version", action="version", version=f"kmf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # the API commands' common options (--api, --token-file, --json, --timeout) also work here,
    # before the sub-command
    from kmf.operator_cli import common
    common(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name in (name, name.rsplit(".", 1)[0]):
                continue  # that area has no commands yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
