"""`kmf config validate|show FILE`."""
from __future__ import annotations

import argparse
import json
import sys

import yaml


def register(subparsers: argparse._SubParsersAction) -> None:
    from kmf.operator_cli import _guard, common, config_declared, config_target, config_update
    parser = subparsers.add_parser("config", help="validate or show a service config file; the running "
                                                  "service's target config, or update it")
    common(parser)  # --api etc. before the action too
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    validate = sub.add_parser("validate", help="check a config file: exit 0 and a summary, or exit 2 "
                                               "and every problem with its line")
    validate.add_argument("file")
    validate.add_argument("--check-files", action="store_true",
                          help="also require secret and token files to be readable")
    validate.set_defaults(func=_validate)
    show = sub.add_parser("show", help="print the resolved config with every default")
    show.add_argument("file")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)  # or before `show`
    show.set_defaults(func=_show)
    target = sub.add_parser("target", help="the running service's target config (from the API)")
    common(target)
    target.set_defaults(func=_guard(config_target))
    update = sub.add_parser("update", help="send a new config to the scheduler: shows the diff, starts the update")
    update.add_argument("file")
    update.add_argument("--yes", action="store_true",
                        help="confirm an update that needs it (e.g. one that removes brokers)")
    update.add_argument("--yes-delete", action="store_true",
                        help="confirm that declared topics and users removed from the file are deleted from Kafka")
    common(update)
    update.set_defaults(func=_guard(config_update))
    declared = sub.add_parser("declared", help="how Kafka matches the declared topics and users (GET /v1/declared)")
    declared.add_argument("--wait", action="store_true",
                          help="until Kafka matches the current target config: exit 0, or 1 on a reconciler error")
    declared.add_argument("--wait-timeout", type=float, default=300.0, metavar="S")
    common(declared)
    declared.set_defaults(func=_guard(config_declared))


def _load(args: argparse.Namespace):
    from config import ConfigError, load_file
    try:
        return load_file(args.file, check_files=getattr(args, "check_files", False))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    spec = _load(args)
    if spec is None:
        return 2
    apps = ", ".join(f"{a.name}×{a.count}" for a in spec.apps) or "no apps"
    declared = (f", declared: {len(spec.topics)} topic(s), {len(spec.users)} user(s)"
                if spec.topics or spec.users else "")
    print(f"{args.file}: OK: service {spec.name}, {spec.kafka.brokers} Kafka {spec.kafka.version} "
          f"brokers ({spec.kafka.mode}), {apps}{declared}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from config import spec_to_json
    spec = _load(args)
    if spec is None:
        return 1
    doc = spec_to_json(spec)
    print(json.dumps(doc, indent=2) if getattr(args, "json", False) else yaml.safe_dump(doc, sort_keys=False), end="")
    return 0
