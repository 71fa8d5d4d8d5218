"""Storage benchmarks: bytes per recorded minute, signals at compaction."""
