"""Capture benchmarks: the `/s/` path against the floor, its rungs and its costs."""
