"""Conformance fixtures: the same test against localmesos and Apache Mesos.

``engine`` is parametrised over ``local`` and ``apache``; ``cluster(agents=N, ...)`` builds a
cluster of that engine with ``lm_factory`` or ``apache_factory`` (the Apache side skips, saying
why, when there is no install). Tests read ``request.node.callspec`` or the cluster's ``engine``
to assert where the two differ on purpose.
"""
from __future__ import annotations

import pytest

ENGINES = ("local", "apache")


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def cluster(engine, request):
    """``cluster(agents=1, master_flags=None, agent_flags=())`` of the parametrised engine."""
    if engine == "apache":
        factory = request.getfixturevalue("apache_factory")

        def make(agents: int = 1, master_flags=None, agent_flags=(), **kw):
            return factory(agents=agents, zk=False, master_flags=master_flags,
                           agent_flags=agent_flags, **kw)
    else:
        factory = request.getfixturevalue("lm_factory")

        def make(agents: int = 1, master_flags=None, agent_flags=(), **kw):
            return factory(agents=agents, master_flags=master_flags, agent_flags=agent_flags, **kw)
    return make
