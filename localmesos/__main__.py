"""``python -m localmesos master|agent [flags]``: the two localmesos processes."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("master", "agent"):
        sys.stderr.write("usage: python -m localmesos master|agent [--flag=value ...]\n")
        return 2
    role, rest = argv[0], argv[1:]
    if role == "master":
        from localmesos.master.main import main as run
    else:
        from localmesos.agent.main import main as run  # written by the agent engineer
    return int(run(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
