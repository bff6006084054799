"""`python -m scheduler --config FILE` (the same as `kmf scheduler`)."""
import sys

from kmf.cli import main

if __name__ == "__main__":
    sys.exit(main(["scheduler", *sys.argv[1:]]))
