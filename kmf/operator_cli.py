"""Operator commands that talk to a running scheduler's HTTP API.

`kmf plan show|interrupt|continue|restart|force-complete`, `kmf pods`, `kmf pod info|restart|replace`,
`kmf endpoints`, `kmf scale brokers|app`, `kmf topic list|describe|create|delete`,
`kmf user create|list|delete` (SASL/SCRAM users; a password only ever from a file), `kmf uninstall`
(and `kmf config target|update`, registered by config.cli). Human output by default, `--json` for
scripts. Exit codes: 0 done, 1 refused or failed, 2 bad usage, 3 the API cannot be reached.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class Unreachable(Exception):
    pass


def call(args: argparse.Namespace, method: str, path: str, body: Any = None,
         raw: bytes | None = None) -> tuple[int, Any]:
    url = args.api.rstrip("/") + path
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    token = _token(args)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"error": text.decode(errors="replace")}
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"cannot reach the kmf API at {args.api}: {getattr(exc, 'reason', exc)}") from None


def _token(args: argparse.Namespace) -> str | None:
    path = args.token_file or os.environ.get("KMF_TOKEN_FILE")
    if not path:
        return None
    with open(path) as f:
        return f.read().strip()


def _print(args: argparse.Namespace, doc: Any, human: str) -> None:
    print(json.dumps(doc, indent=2) if args.json else human)


def _result(args: argparse.Namespace, status: int, doc: Any) -> int:
    if status >= 400:
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            message = doc.get("error") if isinstance(doc, dict) else doc
            print(f"refused ({status}): {message}", file=sys.stderr)
            for problem in (doc.get("problems") or []) if isinstance(doc, dict) else []:
                print(f"  {problem}", file=sys.stderr)
        return EXIT_REFUSED
    message = doc.get("message") if isinstance(doc, dict) else None
    _print(args, doc, message or json.dumps(doc))
    for line in (doc.get("diff") or []) if isinstance(doc, dict) else []:
        if not args.json:
            print(f"  {line}")
    return EXIT_OK


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*(str(c) for c in r)) for r in rows])


def plan_text(plan: dict) -> str:
    lines = [f"{plan['name']} ({plan['strategy']}) {plan['status']}"]
    for phase in plan.get("phases", []):
        lines.append(f"├─ {phase['name']} ({phase['strategy']}) {phase['status']}")
        for step in phase.get("steps", []):
            msg = f"  {step['message']}" if step.get("message") and step["status"] != "COMPLETE" else ""
            lines.append(f"│  ├─ {step['name']} {step['status']}{msg}")
    return "\n".join(lines)


def progress(plan: dict, width: int = 30) -> str:
    steps = [s for ph in plan.get("phases", []) for s in ph.get("steps", [])]
    done = sum(1 for s in steps if s["status"] == "COMPLETE")
    filled = int(width * done / len(steps)) if steps else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{len(steps)} {plan['status']}"


# ------------------------------------------------------------------------------------ commands

def plan_show(args: argparse.Namespace) -> int:
    if args.plan is None:
        status, names = call(args, "GET", "/v1/plans")
        if status >= 400:
            return _result(args, status, names)
        docs = [call(args, "GET", f"/v1/plans/{n}")[1] for n in names]
        _print(args, docs, "\n".join(plan_text(d) for d in docs))
        return EXIT_OK
    deadline = time.monotonic() + args.wait_timeout
    while True:
        status, doc = call(args, "GET", f"/v1/plans/{args.plan}")
        if status >= 400:
            return _result(args, status, doc)
        if not args.wait:
            _print(args, doc, plan_text(doc))
            return EXIT_OK
        if not args.json:
            print("\r" + progress(doc), end="", flush=True)
        if doc["status"] in ("COMPLETE", "ERROR") or time.monotonic() > deadline:
            if not args.json:
                print()
            _print(args, doc, plan_text(doc)) if args.json else print(plan_text(doc))
            return EXIT_OK if doc["status"] == "COMPLETE" else EXIT_REFUSED
        time.sleep(1)


def plan_command(args: argparse.Namespace) -> int:
    body = {k: v for k, v in (("phase", args.phase), ("step", args.step)) if v}
    status, doc = call(args, "POST", f"/v1/plans/{args.plan}/{args.plan_command}", body)
    return _result(args, status, doc)


def pods(args: argparse.Namespace) -> int:
    status, names = call(args, "GET", "/v1/pod")
    if status >= 400:
        return _result(args, status, names)
    infos = [call(args, "GET", f"/v1/pod/{n}/info")[1] for n in names]
    rows = [[i["name"], i.get("state", ""), "yes" if i.get("ready") else "no",
             {True: "yes", False: "no"}.get(i.get("healthy"), "-"), i.get("hostname") or "-",
             i.get("not_placed_because") or i.get("message") or ""] for i in infos]
    _print(args, infos, table(rows, ["POD", "STATE", "READY", "HEALTHY", "HOST", "MESSAGE"]))
    return EXIT_OK


def pod_command(args: argparse.Namespace) -> int:
    if args.pod_command == "info":
        status, doc = call(args, "GET", f"/v1/pod/{args.name}/info")
        if status >= 400:
            return _result(args, status, doc)
        _print(args, doc, "\n".join(f"{k:>20}: {v}" for k, v in doc.items()))
        return EXIT_OK
    status, doc = call(args, "POST", f"/v1/pod/{args.name}/{args.pod_command}")
    return _result(args, status, doc)


def endpoints(args: argparse.Namespace) -> int:
    status, doc = call(args, "GET", f"/v1/endpoints/{args.name}" if args.name else "/v1/endpoints")
    if status >= 400:
        return _result(args, status, doc)
    human = doc.get("bootstrap_servers", "") if isinstance(doc, dict) else "\n".join(doc)
    if isinstance(doc, dict) and ("tls" in doc or "sasl" in doc):
        lines = [f"PLAINTEXT  {human}"]
        lines += [f"{doc[k]['security_protocol']:<10} {doc[k]['bootstrap_servers']}" for k in ("tls", "sasl") if k in doc]
        ca = (doc.get("tls") or {}).get("ca_cert")
        if ca and getattr(args, "ca_file", None):
            with open(args.ca_file, "w") as f:
                f.write(ca)
            lines.append(f"CA certificate written to {args.ca_file}")
        human = "\n".join(lines)
    _print(args, doc, human)
    return EXIT_OK


def scale(args: argparse.Namespace) -> int:
    body = {"kind": "brokers", "count": args.count, "confirm": bool(getattr(args, "yes", False))} \
        if args.what == "brokers" else \
        {"kind": "app", "name": args.name, "count": args.count}
    return _result(args, *call(args, "POST", "/v1/scale", body))


def topic(args: argparse.Namespace) -> int:
    if args.topic_command == "list":
        status, doc = call(args, "GET", "/v1/topics")
        if status >= 400:
            return _result(args, status, doc)
        _print(args, doc, "\n".join(doc))
        return EXIT_OK
    if args.topic_command == "describe":
        status, doc = call(args, "GET", f"/v1/topics/{args.name}")
        if status >= 400:
            return _result(args, status, doc)
        rows = [[p["partition"], p["leader"], ",".join(map(str, p["replicas"])), ",".join(map(str, p["isr"])),
                 "yes" if p["under_replicated"] else "", "yes" if p["offline"] else ""] for p in doc["partitions"]]
        _print(args, doc, table(rows, ["PARTITION", "LEADER", "REPLICAS", "ISR", "UNDER-REPLICATED", "OFFLINE"]))
        return EXIT_OK
    if args.topic_command == "create":
        config = dict(item.split("=", 1) for item in args.config or [])
        body = {"name": args.name, "partitions": args.partitions, "replication": args.replication, "config": config}
        return _result(args, *call(args, "POST", "/v1/topics", body))
    return _result(args, *call(args, "DELETE", f"/v1/topics/{args.name}"))


def user(args: argparse.Namespace) -> int:
    if args.user_command == "list":
        status, doc = call(args, "GET", "/v1/users")
        if status >= 400:
            return _result(args, status, doc)
        _print(args, doc, table([[u["name"], ",".join(u["mechanisms"])] for u in doc], ["USER", "MECHANISMS"]))
        return EXIT_OK
    if args.user_command == "create":
        # from a file (or stdin with -), never from argv: command lines are visible to every user
        try:
            text = sys.stdin.read() if args.password_file == "-" else Path(args.password_file).read_text()
        except OSError as exc:
            print(f"{args.password_file}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        password = text.rstrip("\r\n")
        return _result(args, *call(args, "POST", "/v1/users", {"name": args.name, "password": password}))
    return _result(args, *call(args, "DELETE", f"/v1/users/{args.name}"))


def uninstall(args: argparse.Namespace) -> int:
    if not args.yes:
        answer = input("Uninstall kills every broker and app and deletes their data. Type 'yes': ")
        if answer.strip() != "yes":
            print("not uninstalled", file=sys.stderr)
            return EXIT_REFUSED
    return _result(args, *call(args, "POST", "/v1/uninstall"))


def config_target(args: argparse.Namespace) -> int:
    status, doc = call(args, "GET", "/v1/config/target")
    if status >= 400:
        return _result(args, status, doc)
    import yaml
    _print(args, doc, f"# config {doc['id']}\n" + yaml.safe_dump(doc["config"], sort_keys=False))
    return EXIT_OK


def config_update(args: argparse.Namespace) -> int:
    try:
        text = open(args.file, "rb").read()
    except OSError as exc:
        print(f"{args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    return _result(args, *call(args, "PUT", "/v1/config", raw=text))


def _guard(func):  # noqa: ANN001, ANN202
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except Unreachable as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_UNREACHABLE
    return run


def common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=os.environ.get("KMF_API", "http://127.0.0.1:8080"),
                        help="the scheduler's API URL (default: $KMF_API or %(default)s)")
    parser.add_argument("--token-file", default=None, help="file with the API token (or $KMF_TOKEN_FILE)")
    parser.add_argument("--json", action="store_true", help="JSON output for scripts")
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds")


def register(subparsers: argparse._SubParsersAction) -> None:
    plan = subparsers.add_parser("plan", help="show or steer plans (deploy, recovery, update)")
    psub = plan.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    show = psub.add_parser("show", help="show one plan or all")
    show.add_argument("plan", nargs="?")
    show.add_argument("--wait", action="store_true", help="follow the plan with a progress bar until it ends")
    show.add_argument("--wait-timeout", type=float, default=1800.0)
    common(show)
    show.set_defaults(func=_guard(plan_show))
    for name in ("interrupt", "continue", "restart", "force-complete"):
        p = psub.add_parser(name, help=f"{name} a plan (or one step of it)")
        p.add_argument("plan")
        p.add_argument("--phase")
        p.add_argument("--step", help="pod name of the step")
        common(p)
        p.set_defaults(func=_guard(plan_command))

    p = subparsers.add_parser("pods", help="list pods with their state")
    common(p)
    p.set_defaults(func=_guard(pods))
    pod = subparsers.add_parser("pod", help="one pod: info, restart (in place) or replace (elsewhere)")
    podsub = pod.add_subparsers(dest="pod_command", required=True, metavar="ACTION")
    for name in ("info", "restart", "replace"):
        p = podsub.add_parser(name)
        p.add_argument("name")
        common(p)
        p.set_defaults(func=_guard(pod_command))

    p = subparsers.add_parser("endpoints", help="bootstrap servers and broker addresses")
    p.add_argument("name", nargs="?")
    p.add_argument("--ca-file", help="with kafka.tls: write the CA certificate (PEM) clients trust here")
    common(p)
    p.set_defaults(func=_guard(endpoints))

    sc = subparsers.add_parser("scale", help="change the number of brokers or of an app's instances")
    scsub = sc.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = scsub.add_parser("brokers")
    p.add_argument("count", type=int)
    p.add_argument("--yes", action="store_true", help="confirm a scale-in (it deletes the removed brokers' data)")
    common(p)
    p.set_defaults(func=_guard(scale), name=None)
    p = scsub.add_parser("app")
    p.add_argument("name")
    p.add_argument("count", type=int)
    common(p)
    p.set_defaults(func=_guard(scale))

    tp = subparsers.add_parser("topic", help="Kafka topics through the scheduler")
    tsub = tp.add_subparsers(dest="topic_command", required=True, metavar="ACTION")
    p = tsub.add_parser("list")
    common(p)
    p.set_defaults(func=_guard(topic))
    for name in ("describe", "delete"):
        p = tsub.add_parser(name)
        p.add_argument("name")
        common(p)
        p.set_defaults(func=_guard(topic))
    p = tsub.add_parser("create")
    p.add_argument("name")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--replication", type=int, default=-1)
    p.add_argument("--config", action="append", metavar="KEY=VALUE")
    common(p)
    p.set_defaults(func=_guard(topic))

    us = subparsers.add_parser("user", help="SASL/SCRAM users of the brokers (kafka.sasl)")
    usub = us.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    p = usub.add_parser("create", help="create a user or set a new password")
    p.add_argument("name")
    p.add_argument("--password-file", required=True, help="file holding the password (- for stdin)")
    common(p)
    p.set_defaults(func=_guard(user))
    p = usub.add_parser("list")
    common(p)
    p.set_defaults(func=_guard(user))
    p = usub.add_parser("delete")
    p.add_argument("name")
    common(p)
    p.set_defaults(func=_guard(user))

    p = subparsers.add_parser("uninstall", help="kill everything, release reservations, remove the framework")
    p.add_argument("--yes", action="store_true", help="do not ask")
    common(p)
    p.set_defaults(func=_guard(uninstall))
