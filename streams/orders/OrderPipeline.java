package kmf.demo;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The demo's order pipeline, a Kafka Streams app kmf runs from a jar it fetches (apps[].uris).
 *
 * <p>orders (key: customer id, value: "orderId,amountCents") are enriched with the customer's
 * region from the customers table (key: customer id, value: region; a stream-table join, so both
 * topics must have as many partitions and be keyed alike) into orders-enriched (key: customer id,
 * value: "region,orderId,amountCents"; "unknown" for a customer not in the table). Per region, per
 * 10-second window of the orders' own timestamps, the orders are counted and their amounts summed
 * into order-totals (key: "region@windowStartMs", value: "count,sumCents"; each update of a window
 * replaces the one before). Exactly once (exactly_once_v2) unless the properties say otherwise:
 * read read_committed, the latest total of every window adds up to every order, once.
 *
 * <p>Usage: OrderPipeline PROPERTIES_FILE (the file kmf writes: application.id, bootstrap
 * servers, state.dir, the instance's identity, and the app's own properties).
 */
public final class OrderPipeline {
    static final String UNKNOWN = "unknown";
    // windows stay open for late orders long after they end: a rebalance or a restart may hold
    // some orders back for minutes, and an order past the grace would be dropped, not counted
    static final Duration WINDOW = Duration.ofSeconds(10);
    static final Duration GRACE = Duration.ofMinutes(30);

    private OrderPipeline() {
    }

    static Topology topology() {
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, String> customers = builder.table("customers");
        KStream<String, String> orders = builder.stream("orders");
        KStream<String, String> enriched = orders.leftJoin(customers,
                (order, region) -> (region == null ? UNKNOWN : region) + "," + order);
        enriched.to("orders-enriched");
        enriched.map((customer, line) -> {
                    String[] f = line.split(",");
                    return KeyValue.pair(f[0], f[2]);  // region -> amount
                })
                .groupByKey()
                .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE))
                .aggregate(() -> "0,0", (region, amount, total) -> {
                    String[] t = total.split(",");
                    return (Long.parseLong(t[0]) + 1) + "," + (Long.parseLong(t[1]) + Long.parseLong(amount));
                }, Materialized.<String, String, WindowStore<Bytes, byte[]>>as("region-totals"))
                .toStream((window, total) -> window.key() + "@" + window.window().start())
                .to("order-totals");
        return builder.build();
    }

    public static void main(String[] args) throws IOException, InterruptedException {
        if (args.length != 1) {
            System.err.println("usage: OrderPipeline PROPERTIES_FILE");
            System.exit(2);
        }
        Properties props = new Properties();
        try (InputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        props.putIfAbsent(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        props.putIfAbsent(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        props.putIfAbsent(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        KafkaStreams streams = new KafkaStreams(topology(), props);
        CountDownLatch stopped = new CountDownLatch(1);
        // kmf stops an instance with SIGTERM: close commits (or aborts) the transaction in hand and
        // leaves the group before the JVM exits
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            stopped.countDown();
        }, "order-pipeline-shutdown"));
        // a client in ERROR does no more work: exit, so that kmf relaunches the instance with its
        // backoff instead of leaving a process that only looks alive
        AtomicBoolean failed = new AtomicBoolean();
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR) {
                failed.set(true);
                stopped.countDown();
            }
        });
        streams.start();
        stopped.await();
        if (failed.get()) {
            System.err.println("order pipeline: Kafka Streams is in ERROR; exiting");
            System.exit(1);
        }
    }
}
