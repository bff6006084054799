"""One Apache Mesos cluster with one kmf service on it, shared by the ordered steps of the tier.

Deploying three KRaft brokers on an unoptimised Mesos build takes a while on two cores, so the
steps of ``test_kmf_on_apache.py`` run against one deployed service, in file order, each asserting
on what Mesos, the agents, Kafka and ZooKeeper say. The master authenticates HTTP frameworks
(basic), so every step also runs with kmf's principal and secret, as on a secured cluster.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from kazoo.client import KazooClient

from tests.helpers.fixtures_localmesos import APACHE_FAST_MASTER_FLAGS, start_apache_cluster
from tests.helpers.fixtures_scheduler import AGENT_FLAGS, AGENT_RESOURCES, KmfEnv

PRINCIPAL, SECRET = "kmf", "apache-tier-s3cret"


class ApacheEnv(KmfEnv):
    """A KmfEnv on Apache Mesos that also knows its credentials and shared notes between steps."""

    def __init__(self, *args, credentials: Path, secret_file: Path, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.credentials = credentials
        self.secret_file = secret_file
        self.notes: dict = {}  # what one step leaves for the next (ids, timings)

    def config(self, **kwargs) -> dict:
        doc = super().config(**kwargs)
        doc["mesos"].update(principal=PRINCIPAL, secret_file=str(self.secret_file))
        # the scheduler listens on the cluster's address, as on an agent Marathon chose
        doc["api"]["bind"] = self.lm.ip
        return doc


@pytest.fixture(scope="module")
def apache_env(apache_home, zookeeper, tmp_path_factory, fresh_artifacts) -> Iterator[ApacheEnv]:
    base = tmp_path_factory.mktemp("apache-tier")
    root = f"/kmftest-{uuid.uuid4().hex[:12]}"
    zk = KazooClient(hosts=zookeeper.connect_string)
    zk.start(timeout=15)
    zk.ensure_path(root)
    credentials = base / "credentials.json"
    credentials.write_text(json.dumps({"credentials": [{"principal": PRINCIPAL, "secret": SECRET}]}))
    secret_file = base / "secret"
    secret_file.write_text(SECRET + "\n")
    # HTTP framework authentication on: kmf must register with its principal and secret
    flags = APACHE_FAST_MASTER_FLAGS + ("--authenticate_http_frameworks", "--http_framework_authenticators=basic",
                                        f"--credentials={credentials}")
    env = None
    try:
        lm = start_apache_cluster(base / "mesos", apache_home, f"zk://{zookeeper.connect_string}{root}/mesos",
                                  4, flags, AGENT_RESOURCES, AGENT_FLAGS)
        env = ApacheEnv(lm, zookeeper.connect_string, root, base, credentials=credentials, secret_file=secret_file)
        yield env
    finally:
        if env is not None:
            env.stop()
        zk.delete(root, recursive=True)
        zk.stop()
        zk.close()
