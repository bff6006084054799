"""Order alerts: the demo's Python consumer service, exactly once, with confluent-kafka.

    python -m streams.order_alerts --input orders-enriched --output order-alerts
                                   [--min-cents 50000] [--group order-alerts]

It reads the order pipeline's enriched orders (value ``region,orderId,amountCents``) and writes one
alert per order of at least ``--min-cents`` to the output topic (key: the order id, value:
``region,amountCents``). Each batch's alerts and its consumed offsets go in one Kafka transaction
(KIP-447: the consumer's group metadata), read read_committed: an order alerts once or, when its
batch fails, not until the batch comes again. No state but the offsets: a restarted or added
instance goes on from the committed offsets.

Its transactional id is ``<group>.<app>-<instance>`` from ``KMF_APP`` and ``KMF_INSTANCE``, so a
relaunched instance fences its predecessor; it joins with kmf's static membership
(``KMF_GROUP_INSTANCE_ID``, ``KMF_CLIENT_ID``, ``KMF_SESSION_TIMEOUT_MS``). Its state goes to
stdout in kmf's line protocol (kmfwire.app_state): REBALANCING once subscribed and when partitions
are revoked, RUNNING once it has partitions, PENDING_SHUTDOWN when stopping.

Exit codes: 0 after SIGTERM (the batch in hand committed or aborted first), 1 on a fatal Kafka
error (kmf relaunches it), 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from kmfwire.app_state import PENDING_SHUTDOWN, REBALANCING, RUNNING, state_line
from kmfwire.ready import READY_MARKER

log = logging.getLogger("streams.order_alerts")
TXN_TIMEOUT_S = 30.0


def alert(value: bytes | None, min_cents: int) -> tuple[bytes, bytes] | None:
    """The alert for one enriched order (key, value), None when it is too small. A malformed order
    raises ValueError: it is the pipeline's bug, and skipping it would hide it."""
    region, order_id, amount = (value or b"").decode().split(",")
    cents = int(amount)
    return (order_id.encode(), f"{region},{cents}".encode()) if cents >= min_cents else None


class Alerts:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop = threading.Event()
        self.ready = False
        app, instance = os.environ.get("KMF_APP", "order-alerts"), os.environ.get("KMF_INSTANCE", str(os.getpid()))
        self.consumer = Consumer({
            "bootstrap.servers": args.bootstrap_servers, "group.id": args.group,
            "client.id": os.environ.get("KMF_CLIENT_ID") or f"{app}-{instance}",
            **({"group.instance.id": os.environ["KMF_GROUP_INSTANCE_ID"]} if os.environ.get("KMF_GROUP_INSTANCE_ID") else {}),
            "session.timeout.ms": int(os.environ.get("KMF_SESSION_TIMEOUT_MS") or 10_000),
            "isolation.level": "read_committed", "enable.auto.commit": False, "auto.offset.reset": "earliest",
        })
        self.producer = Producer({"bootstrap.servers": args.bootstrap_servers,
                                  "transactional.id": f"{args.group}.{app}-{instance}",
                                  "transaction.timeout.ms": int(TXN_TIMEOUT_S * 1000)})
        self.orders = self.alerts = 0

    def tell(self, state: str) -> None:
        print(state_line(state), flush=True)

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.tell(RUNNING)
        if not self.ready:
            self.ready = True
            print(READY_MARKER, flush=True)

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # no transaction is open while the consumer polls: a batch ends before the next poll
        self.tell(REBALANCING)

    def process(self, batch: list[Message]) -> None:
        """`batch`'s alerts and offsets in one transaction; an abortable failure aborts it and
        rewinds to the batch's first offsets, so that it comes again."""
        first: dict[tuple[str, int], int] = {}
        last: dict[tuple[str, int], int] = {}
        try:
            self.producer.begin_transaction()
            made = 0
            for msg in batch:
                topic, part, offset = msg.topic(), msg.partition(), msg.offset()
                assert topic is not None and part is not None and offset is not None  # a record has all three
                first.setdefault((topic, part), offset)
                last[(topic, part)] = offset
                out = alert(msg.value(), self.args.min_cents)
                if out is not None:
                    self.producer.produce(self.args.output, key=out[0], value=out[1])
                    made += 1
            offsets = [TopicPartition(t, p, off + 1) for (t, p), off in sorted(last.items())]
            self.producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(), TXN_TIMEOUT_S)
            self.producer.commit_transaction(TXN_TIMEOUT_S)
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if not err.txn_requires_abort():
                raise
            log.warning("batch of %d orders aborted, to come again: %s", len(batch), err)
            self.producer.abort_transaction(TXN_TIMEOUT_S)
            for (t, p), off in first.items():
                self.consumer.seek(TopicPartition(t, p, off))
            return
        self.orders += len(batch)
        self.alerts += made

    def run(self) -> int:
        self.producer.init_transactions(TXN_TIMEOUT_S)
        self.consumer.subscribe([self.args.input], on_assign=self.on_assign, on_revoke=self.on_revoke,
                                on_lost=self.on_revoke)
        self.tell(REBALANCING)
        try:
            while not self.stop.is_set():
                batch = []
                for msg in self.consumer.consume(num_messages=500, timeout=0.5):
                    err = msg.error()
                    if err is None:
                        batch.append(msg)
                    elif err.fatal():
                        raise KafkaException(err)
                    elif err.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer: %s", err)
                if batch:
                    self.process(batch)
        finally:
            self.tell(PENDING_SHUTDOWN)
            self.consumer.close()
            log.info("stopped after %d orders, %d alerts", self.orders, self.alerts)
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m streams.order_alerts",
                                     description="Exactly-once alerts for large enriched orders.")
    parser.add_argument("--input", default="orders-enriched", help="enriched orders (default: %(default)s)")
    parser.add_argument("--output", default="order-alerts", help="alerts (default: %(default)s)")
    parser.add_argument("--min-cents", type=int, default=50_000, help="smallest order alerted (default: %(default)s)")
    parser.add_argument("--group", default="order-alerts", help="consumer group (default: %(default)s)")
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS)")
    args = parser.parse_args(argv)
    if not args.bootstrap_servers:
        print("order_alerts: --bootstrap-servers: not given and KAFKA_BOOTSTRAP_SERVERS is not set", file=sys.stderr)
        return 2
    if args.input == args.output:
        print(f"order_alerts: --output: must differ from --input ({args.input!r})", file=sys.stderr)
        return 2
    service = Alerts(args)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop.set())
    try:
        return service.run()
    except KafkaException as exc:
        print(f"order_alerts: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
