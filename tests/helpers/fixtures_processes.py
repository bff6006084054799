"""Process hygiene: whatever a test started through localmesos.procs is stopped by pid."""
import pytest

from localmesos import procs


@pytest.fixture(autouse=True, scope="session")
def _reap_processes_at_exit():
    yield
    procs.stop_all()
