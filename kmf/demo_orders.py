"""The demo's order-processing stage: numbered orders through the Kafka Streams order pipeline
(streams/orders: a stream-table join with the customers table, a windowed aggregation per region,
exactly once) and the Python alert service (streams.order_alerts) kmf runs, with the results
checked exactly: every order in its region's windowed totals once, and one alert per large order.

The orders are keyed by customer, as the customers table is, and produced with Java's partitioner
(murmur2): the join looks a customer up in the partition of the table its order is in, so both
topics must put a key in the same partition, as a Java producer would.
"""
from __future__ import annotations

import collections
import random
import time
from typing import Any, Callable, Mapping, Sequence

from kmf.demo import DemoError, Narrator, http_json

REGIONS = ("emea", "americas", "apac")
CUSTOMERS = 60
ORDERS = 20_000
ALERT_CENTS = 50_000  # the alert service's --min-cents in config/local.yaml
SPREAD_S = 60  # the orders' timestamps span this many seconds: six 10-second windows


def customers() -> dict[str, str]:
    """customer id → region."""
    return {f"c{i}": REGIONS[i % len(REGIONS)] for i in range(CUSTOMERS)}


def orders(count: int = ORDERS, seed: int = 7) -> list[tuple[str, str, int]]:
    """(order id, customer id, amount in cents), the same every run."""
    rnd = random.Random(seed)
    return [(f"o{i}", f"c{rnd.randrange(CUSTOMERS)}", rnd.randrange(100, 100_000)) for i in range(count)]


def expected_totals(table: Mapping[str, str], sent: Sequence[tuple[str, str, int]]) -> dict[str, tuple[int, int]]:
    """region → (orders, cents)."""
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for _, customer, cents in sent:
        t = out[table[customer]]
        t[0] += 1
        t[1] += cents
    return {r: (n, c) for r, (n, c) in out.items()}


def produce_keyed(bootstrap: str, topic: str, records: Sequence[tuple[str, str]], timestamps: Sequence[int] = (),
                  timeout: float = 120.0) -> None:
    """Send (key, value) records with acks=all, partitioned as a Java producer would, each with its
    timestamp (ms) from `timestamps` when given."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "partitioner": "murmur2_random", "linger.ms": 20, "log_level": 0})
    errors: list[str] = []
    for i, (key, value) in enumerate(records):
        while True:
            try:
                producer.produce(topic, key=key.encode(), value=value.encode(),
                                 timestamp=timestamps[i] if timestamps else 0,  # 0: the producer's clock
                                 on_delivery=lambda err, _m: errors.append(str(err)) if err else None)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
    left = producer.flush(timeout)
    if left or errors:
        raise DemoError(f"producing to {topic} on {bootstrap}: {left} unsent, errors {errors[:3]}")


def read_topic(bootstrap: str, topic: str, done: Callable[[dict[str, list[str]]], bool], timeout: float,
               on_progress: Callable[[dict[str, list[str]]], None] | None = None) -> dict[str, list[str]]:
    """Every value of every key of `topic`, read read_committed from the beginning, once `done`
    says so (checked each second); DemoError after `timeout`."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"kmf-demo-check-{time.time_ns()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False, "log_level": 0})
    seen: dict[str, list[str]] = collections.defaultdict(list)
    try:
        parts = consumer.list_topics(topic, timeout=15).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        deadline = checked = time.monotonic()
        deadline += timeout
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                if msg.error() is None:
                    seen[(msg.key() or b"").decode()].append((msg.value() or b"").decode())
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                if done(seen):
                    return dict(seen)
                if on_progress is not None:
                    on_progress(seen)
    finally:
        consumer.close()
    raise DemoError(f"{topic} did not come right within {timeout:g}s")


def region_totals(seen: Mapping[str, list[str]]) -> dict[str, tuple[int, int]]:
    """region → (orders, cents): the latest total of each of its windows, added up."""
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for key, values in seen.items():
        n, cents = values[-1].split(",")
        t = out[key.split("@", 1)[0]]
        t[0] += int(n)
        t[1] += int(cents)
    return {r: (n, c) for r, (n, c) in out.items()}


def lag_line(api_url: str) -> str:
    """The pipeline's and the alert service's lag, as kmf samples it (GET /v1/lag)."""
    _, doc = http_json(api_url + "/v1/lag")
    apps: Mapping[str, Any] = doc.get("apps", {}) if isinstance(doc, dict) else {}
    lags = {name: (apps.get(name) or {}).get("lag") for name in ("orders", "order-alerts")}
    return ", ".join(f"{name} lag {'?' if lag is None else lag}" for name, lag in lags.items())


def run_orders(api_url: str, bootstrap: str, narrator: Narrator, timeout: float = 240.0) -> float:
    """Produce the customers, then the orders; check the totals and the alerts exactly. Returns
    the seconds from the first order to the last result."""
    # The orders' own times (what the windows go by) are spread over the last SPREAD_S seconds,
    # the customers' before them: Kafka Streams takes the oldest record of a join's two inputs
    # first, so every customer is in the table before an order looks it up.
    base = int(time.time() * 1000) - SPREAD_S * 1000
    table = customers()
    produce_keyed(bootstrap, "customers", sorted(table.items()), [base - 1000] * len(table))
    narrator.info(f"{len(table)} customers in the table 'customers' ({', '.join(REGIONS)})")
    sent = orders()
    started = time.monotonic()
    produce_keyed(bootstrap, "orders", [(customer, f"{oid},{cents}") for oid, customer, cents in sent],
                  [base + i * SPREAD_S * 1000 // len(sent) for i in range(len(sent))])
    narrator.info(f"{len(sent):,} orders produced to 'orders' in {time.monotonic() - started:.1f}s; {lag_line(api_url)}")
    want = expected_totals(table, sent)

    def totals_done(seen: dict[str, list[str]]) -> bool:
        got = region_totals(seen)
        over = {r: (got[r], want.get(r)) for r in got if r not in want or got[r][0] > want[r][0]}
        if over:
            raise DemoError(f"orders counted more than once or in the wrong region: {over}")
        return got == want

    last = [0.0]

    def progress(seen: dict[str, list[str]]) -> None:
        if time.monotonic() - last[0] >= 3:
            last[0] = time.monotonic()
            narrator.info(f"... {sum(n for n, _ in region_totals(seen).values()):,} orders totalled; {lag_line(api_url)}")
    seen = read_topic(bootstrap, "order-totals", totals_done, timeout, progress)
    for region, (n, cents) in sorted(region_totals(seen).items()):
        narrator.info(f"{region:>9}: {n:>6,} orders, {cents / 100:>14,.2f} in {sum(1 for k in seen if k.startswith(region + '@'))} "
                      "10-second windows (exactly as sent)")
    big = {oid for oid, _, cents in sent if cents >= ALERT_CENTS}

    def alerts_done(got: dict[str, list[str]]) -> bool:
        twice = {k: v for k, v in got.items() if len(v) > 1 or k not in big}
        if twice:
            raise DemoError(f"alerts raised twice or for small orders: {dict(list(twice.items())[:3])}")
        return set(got) == big
    read_topic(bootstrap, "order-alerts", alerts_done, timeout)
    narrator.info(f"{len(big):,} alerts for the orders of at least {ALERT_CENTS / 100:,.2f}, each raised once "
                  "(streams.order_alerts, exactly once)")
    return time.monotonic() - started
