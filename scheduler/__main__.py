"""`python -m scheduler --config FILE` (the same as `kmf scheduler`)."""
import sys

from kmfwire.artifacts import check_interpreter

# before any dependency is imported: a bundle's binary wheels fail obscurely on another Python
_wrong = check_interpreter()
if _wrong:
    print(f"kmf scheduler: {_wrong}", file=sys.stderr, flush=True)
    sys.exit(2)

from scheduler.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
