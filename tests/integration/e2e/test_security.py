"""Security end to end: framework authentication, ZooKeeper digest ACLs, the API token, and no
secret in anything kmf writes (scheduler log, ZooKeeper, the master's task infos, the web page)."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
from kazoo.exceptions import NoAuthError

from tests.helpers.fixtures_zookeeper import node_texts, zk_session

pytestmark = [pytest.mark.timeout(300), pytest.mark.kafka]

SECRET, TOKEN, ZK_PASSWORD = "fw-s3cr3t-9f2", "api-t0ken-77a", "zk-passw0rd-31c"


def test_authentication_acls_and_no_secret_leaks(kmf_env, tmp_path, zookeeper):
    creds = tmp_path / "credentials"
    creds.write_text(json.dumps({"credentials": [{"principal": "kmf", "secret": SECRET}]}))
    env = kmf_env(agents=1, master_flags=("--authenticate_frameworks", f"--credentials={creds}"))
    (tmp_path / "secret").write_text(SECRET + "\n")
    (tmp_path / "wrong").write_text("not-the-secret\n")
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "zkpass").write_text(ZK_PASSWORD + "\n")

    # a wrong framework secret: the master refuses, the scheduler says why and exits non-zero
    bad = env.config(brokers=1)
    bad["mesos"].update(principal="kmf", secret_file=str(tmp_path / "wrong"))
    bad["name"] = env.name + "-bad"
    path = tmp_path / "bad.yaml"
    import yaml
    path.write_text(yaml.safe_dump(bad))
    run = subprocess.run([sys.executable, "-m", "scheduler", "--config", str(path)],
                         capture_output=True, text=True, timeout=90)
    assert run.returncode != 0, run.stderr[-3000:]
    assert "401" in run.stderr or "authenticat" in run.stderr.lower() or "refused" in run.stderr.lower(), run.stderr[-2000:]

    good = env.config(brokers=1)
    good["mesos"].update(principal="kmf", secret_file=str(tmp_path / "secret"))
    good["zookeeper"].update(digest_user="kmf", digest_password_file=str(tmp_path / "zkpass"))
    good["api"]["token_file"] = str(tmp_path / "token")
    s = env.start_scheduler(config=good)
    s.wait_deployed()

    # ZooKeeper: without the digest nobody reads or writes the service's state
    base = f"{env.zk_root}/{env.name}"
    with zk_session(env.zk_connect) as stranger:
        with pytest.raises(NoAuthError):
            stranger.get_children(f"{base}/tasks")
        with pytest.raises(NoAuthError):
            stranger.create(f"{base}/tasks/evil", b"{}")

    # the API token is needed for mutations
    assert s.request("POST", "/v1/pod/broker-0/restart")[0] == 401

    # no secret anywhere kmf writes or shows
    texts = {
        "master state": json.dumps(env.lm.get("/master/state")),
        "web page and API": urllib.request.urlopen(s.url + "/", timeout=10).read().decode()
        + json.dumps(s.get("/v1/config/target")) + json.dumps(s.get("/v1/pod/broker-0/info")),
    }
    with zk_session(env.zk_connect, f"kmf:{ZK_PASSWORD}") as owner:
        dumps = node_texts(owner, base)
        s.stop()
        owner.delete(base, recursive=True)  # the chroot fixture has no digest to clean it up
    texts["zookeeper"] = "\n".join(dumps)
    texts["scheduler log"] = s.log(10**7)
    for where, text in texts.items():
        for secret in (SECRET, TOKEN, ZK_PASSWORD):
            assert secret not in text, f"{secret!r} leaked into the {where}"
    assert len(texts["zookeeper"]) > 100 and "broker-0" in texts["master state"]
