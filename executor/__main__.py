"""`python -m executor`: what a Mesos agent starts for every kmf task."""
import sys

from kmfwire.artifacts import check_interpreter

# before any dependency is imported: a bundle's binary wheels fail obscurely on another Python
_wrong = check_interpreter()
if _wrong:
    print(f"kmf executor: {_wrong}", file=sys.stderr, flush=True)
    sys.exit(1)

import logging  # noqa: E402
import os  # noqa: E402

from executor.main import main  # noqa: E402

if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pymesos' IO thread is not a daemon; the work is done
