"""`python -m executor`: what a Mesos agent starts for every kmf task."""
import logging
import os
import sys

from executor.main import main

if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pymesos' IO thread is not a daemon; the work is done
