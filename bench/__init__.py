"""ReplayHub's benchmarks, grouped by subject: tools for a person to rerun, not tests.

Run each from the repository's root as a module, e.g.
`.venv/bin/python -m bench.ingest.ceiling --help`. docs/benchmarks/index.md lists
every study, its latest figures and its command.

    harness/   what the benchmarks share: the realistic request bodies (corpus),
               gunicorn and scratch databases (servers), load and sampling (loadgen)
    ingest/    capture: throughput against the floor, the ceiling's rungs, cost per
               request and per MB, the firewall, the rate limit, the in-process
               profile, a worker's memory under hostile load
    query/     the filter language at a million recordings: data, loader, filters
    playback/  the admin player's first frame, the export's memory
    storage/   stored bytes per recorded minute, signals at compaction and backfill
"""
