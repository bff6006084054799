"""kmf's small I/O helpers that the scheduler, localmesos, the executor and the command line share
(a sibling of config and mesoslib in the layers: it may import only kmfwire)."""
