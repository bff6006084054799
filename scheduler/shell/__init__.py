"""The scheduler's I/O shell: ZooKeeper store, leader election, pymesos adapter, event loop."""
