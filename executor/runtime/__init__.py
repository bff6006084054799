"""What the executor runs: Kafka runtimes (kafka_dist), brokers (broker_config pure, broker I/O),
and Kafka's own tools and Streams examples (tools)."""
