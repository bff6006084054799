"""The declared topics and users: the pure diff against Kafka's view (hypothesis: applying the
changes gives the declared view, and nothing undeclared is touched), and config updates that
remove declared objects only with the operator's confirmation."""
from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given, settings, strategies as st

from scheduler.core import declared as d
from scheduler.core import events as ev
from scheduler.core.declared import Acl, Declared, Deleting, KafkaView, Topic, plan_changes
from tests.helpers.core_kit import deployed, spec
from tests.helpers.core_kit.runner import BASE

# --- a model of Kafka applying the changes (what the shell asks Kafka to do) --------------------


def apply(view: KafkaView, changes: tuple[Any, ...]) -> KafkaView:
    topics, users, acls = dict(view.topics), set(view.users), set(view.acls)
    quotas = {u: dict(q) for u, q in view.quotas.items()}
    for c in changes:
        if isinstance(c, d.CreateTopic):
            assert c.topic.name not in topics, f"{c} of an existing topic"
            topics[c.topic.name] = c.topic
        elif isinstance(c, d.AddPartitions):
            assert c.total > topics[c.topic].partitions, f"{c} does not add partitions"
            topics[c.topic] = attrs.evolve(topics[c.topic], partitions=c.total)
        elif isinstance(c, d.AlterTopicConfigs):
            cfg = {k: v for k, v in topics[c.topic].configs.items() if k not in c.to_delete}
            topics[c.topic] = attrs.evolve(topics[c.topic], configs={**cfg, **c.to_set})
        elif isinstance(c, d.DeleteTopic):
            del topics[c.topic]
        elif isinstance(c, d.UpsertCredential):
            users.add(c.user)
        elif isinstance(c, d.DeleteCredential):
            users.remove(c.user)
        elif isinstance(c, d.CreateAcls):
            acls |= set(c.acls)
        elif isinstance(c, d.DeleteAcls):
            assert set(c.acls) <= acls, f"{c} of ACLs Kafka does not have"
            acls -= set(c.acls)
        elif isinstance(c, d.SetQuotas):
            q = {k: v for k, v in quotas.get(c.user, {}).items() if k not in c.to_delete}
            quotas[c.user] = {**q, **c.to_set}
            if not quotas[c.user]:
                del quotas[c.user]
        else:
            raise AssertionError(f"unknown change {c!r}")
    return KafkaView(topics, frozenset(users), frozenset(acls), quotas)


# --- strategies ---------------------------------------------------------------------------------

TOPICS = st.sampled_from(["a", "b", "c", "d", "e"])
USERS = st.sampled_from(["u1", "u2", "u3", "u4"])
CONFIGS = st.dictionaries(st.sampled_from(["retention.ms", "cleanup.policy", "segment.bytes"]),
                          st.sampled_from(["1", "2", "compact"]), max_size=3)
QUOTAS = st.dictionaries(st.sampled_from(["producer_byte_rate", "consumer_byte_rate", "request_percentage"]),
                         st.sampled_from([100.0, 2048.0, 50.0]), max_size=3)


def acls_for(users: st.SearchStrategy[str]) -> st.SearchStrategy[Acl]:
    return st.builds(Acl, users, st.sampled_from(["topic", "group"]), TOPICS, st.sampled_from(["literal", "prefixed"]),
                     st.sampled_from(["read", "write", "describe"]), st.sampled_from(["allow", "deny"]))


@st.composite
def worlds(draw: Any) -> tuple[Declared, KafkaView, Deleting]:
    rf = draw(st.integers(1, 3))
    declared_topics = draw(st.dictionaries(TOPICS, st.tuples(st.integers(1, 6), CONFIGS, st.sampled_from([None, rf])),
                                           max_size=4))
    declared_users = draw(st.frozensets(USERS, max_size=3))
    declared = Declared(
        {n: Topic(n, p, r, c) for n, (p, c, r) in declared_topics.items()}, declared_users,
        frozenset(draw(st.lists(acls_for(st.sampled_from(sorted(declared_users))), max_size=6))
                  if declared_users else []),
        {u: draw(QUOTAS) for u in declared_users}, rf)
    # Kafka: any topics (also undeclared ones, with fewer partitions than declared so the diff can
    # bring them up), any users, ACLs and quotas, of declared names and of others
    kafka_topics = draw(st.dictionaries(TOPICS, st.tuples(st.integers(1, 6), CONFIGS), max_size=5))
    view = KafkaView(
        {n: Topic(n, min(p, declared.topics[n].partitions) if n in declared.topics else p, rf, c)
         for n, (p, c) in kafka_topics.items()},
        draw(st.frozensets(USERS)), frozenset(draw(st.lists(acls_for(USERS), max_size=8))),
        {u: q for u, q in draw(st.dictionaries(USERS, QUOTAS)).items() if q})
    deleting = Deleting(draw(st.frozensets(TOPICS, max_size=3)), draw(st.frozensets(USERS, max_size=2)))
    return declared, view, deleting


def _concerned(view: KafkaView, topics: set[str], users: set[str]) -> tuple:
    return ({n: t for n, t in view.topics.items() if n in topics}, view.users & users,
            {a for a in view.acls if a.user in users}, {u: q for u, q in view.quotas.items() if u in users})


@settings(max_examples=300, deadline=None)
@given(worlds(), st.booleans())
def test_applying_the_changes_gives_the_declared_view_and_touches_nothing_undeclared(world, refresh):
    declared, view, deleting = world
    plan = plan_changes(declared, view, deleting, refresh)
    after = apply(view, plan.changes)
    # every declared object is in Kafka as declared
    for name, topic in declared.topics.items():
        t = after.topics[name]
        assert (t.partitions, dict(t.configs)) == (topic.partitions, dict(topic.configs))
        # a replication left out is the service's default when kmf creates the topic, else Kafka's
        expected = topic.replication or (declared.default_replication if name not in view.topics
                                         else view.topics[name].replication)
        assert t.replication == expected
    assert declared.users <= after.users
    assert {a for a in after.acls if a.user in declared.users} == set(declared.acls)
    for user in declared.users:
        assert after.quotas.get(user, {}) == dict(declared.quotas[user])
    # what is being deleted (and not declared again) is gone, ACLs and quotas with it
    gone_topics, gone_users = deleting.topics - set(declared.topics), deleting.users - declared.users
    assert not gone_topics & set(after.topics)
    assert not gone_users & after.users
    assert not {a for a in after.acls if a.user in gone_users} and not gone_users & set(after.quotas)
    # what was never declared nor deleted is exactly as it was
    others_t = set(view.topics) - set(declared.topics) - deleting.topics
    others_u = (view.users | {a.user for a in view.acls} | set(view.quotas)) - declared.users - deleting.users
    assert _concerned(after, others_t, others_u) == _concerned(view, others_t, others_u)
    # and a second pass has nothing left to do (idempotent)
    assert plan_changes(declared, after, deleting).changes == ()


def test_replication_and_fewer_partitions_are_reported_never_changed():
    declared = Declared({"t": Topic("t", 2, 3, {})})
    plan = plan_changes(declared, KafkaView({"t": Topic("t", 4, 1, {})}))
    assert plan.changes == ()
    assert any("replication is 1 in Kafka, 3 declared" in p for p in plan.problems)
    assert any("4 partitions in Kafka, 2 declared" in p for p in plan.problems)
    # a replication the YAML leaves out is not compared: a new service default changes no topic
    assert plan_changes(Declared({"t": Topic("t", 4, None, {})}, default_replication=3),
                        KafkaView({"t": Topic("t", 4, 1, {})})) == d.Plan()


def test_credentials_are_set_when_missing_or_on_refresh_only():
    declared = Declared(users=frozenset({"alice"}))
    assert plan_changes(declared, KafkaView(users=frozenset({"alice"}))).changes == ()
    assert plan_changes(declared, KafkaView(users=frozenset({"alice"})), refresh_credentials=True).changes == (
        d.UpsertCredential("alice"),)
    assert plan_changes(declared, KafkaView()).changes == (d.UpsertCredential("alice"),)


# --- the spec side and config updates -----------------------------------------------------------

SASL = BASE.replace("placement: ['hostname:UNIQUE']}",
                    "placement: ['hostname:UNIQUE'], sasl: {enabled: true, authorizer: true}}")
DECLARED = SASL + """\
topics:
  - {name: orders, partitions: 3, configs: {retention.ms: '1000'}}
  - {name: audit}
users:
  - name: alice
    password_env: ALICE_PW
    acls: [{resource_type: topic, name: orders, operations: [write, describe]}]
    quotas: {producer_byte_rate: 1024}
"""


def test_declared_of_fills_the_services_defaults():
    got = d.declared_of(spec(DECLARED))
    assert got.topics["audit"] == Topic("audit", 1, None, {}) and got.default_replication == 3
    create = plan_changes(got, KafkaView()).changes[0]
    assert create == d.CreateTopic(Topic("audit", 1, 3, {}))
    assert got.acls == {Acl("alice", "topic", "orders", "literal", "write", "allow"),
                        Acl("alice", "topic", "orders", "literal", "describe", "allow")}
    assert got.quotas == {"alice": {"producer_byte_rate": 1024.0}}


def test_removing_a_declared_topic_or_user_needs_the_delete_confirmation():
    sim = deployed(DECLARED)
    sim.send.command("update_config", "u0", spec=spec(DECLARED)).replied(ok=True)
    without = spec(DECLARED.replace("  - {name: audit}\n", "").split("users:")[0])
    sim.send.command("update_config", "u1", spec=without, confirm=True).replied(
        ok=False, contains=["deletes from Kafka topic audit, user alice", "--yes-delete"],
        delete_confirm_required=True, would_delete=["topic audit", "user alice"])
    assert sim.state.spec.topics == spec(DECLARED).topics and d.DELETING not in sim.state.properties
    sim.send.command("update_config", "u2", spec=without, confirm_delete=True).replied(ok=True)
    assert [t.name for t in sim.state.spec.topics] == ["orders"] and sim.state.spec.users == ()
    assert d.deleting_of(sim.state.properties) == Deleting(frozenset({"audit"}), frozenset({"alice"}))
    assert sim.store.properties[d.DELETING] == "topic audit\nuser alice"  # persisted for a restarted leader
    # declared again before the reconciler got to it: no longer to be deleted
    sim.send.command("update_config", "u3", spec=spec(DECLARED.split("users:")[0])).replied(ok=True)
    assert d.deleting_of(sim.state.properties) == Deleting(frozenset(), frozenset({"alice"}))
    sim.send.event(ev.DeclaredDeleted((), ("alice",), sim.now))
    assert d.DELETING not in sim.state.properties and d.DELETING not in sim.store.properties


def test_declared_objects_change_no_broker_but_the_authorizer_rolls_them():
    import config
    plain = spec(SASL)
    assert not config.broker_restart_required(plain, spec(DECLARED))
    assert config.broker_restart_required(spec(BASE.replace("placement: ['hostname:UNIQUE']}",
                                                            "placement: ['hostname:UNIQUE'], sasl: {enabled: true}}")),
                                          plain)


def test_brokers_get_the_authorizer_with_kmfs_principal_as_super_user():
    from scheduler.core.pods import desired_pods
    from scheduler.core.taskinfo import bootstrap_servers, task_data, voters
    sim = deployed(SASL)
    pods = desired_pods(sim.state.spec)
    pod = next(p for p in pods if p.name == "broker-0")
    quorum, boot = voters(sim.state.tasks, pods), bootstrap_servers(sim.state.tasks, pods)
    data = task_data(sim.state.spec, pod, sim.state.tasks["broker-0"], {"cluster_id": "x"}, quorum, boot)
    overrides = data.broker.overrides
    assert overrides["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert overrides["allow.everyone.if.no.acl.found"] == "false" and overrides["super.users"] == "User:ANONYMOUS"
    plain = spec(SASL.replace(", authorizer: true", ""))
    assert "authorizer.class.name" not in task_data(plain, pod, sim.state.tasks["broker-0"], {"cluster_id": "x"},
                                                    quorum, boot).broker.overrides
