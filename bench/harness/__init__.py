"""What the benchmarks share: request bodies, servers and databases, load."""
