"""Locate the captured browser fixtures (see shared/fixtures/README.md)."""

from __future__ import annotations

import os
from pathlib import Path

_ENV = "REPLAYHUB_FIXTURES"


def fixtures_dir() -> Path:
    """The shared fixtures directory; fails loudly, since skipping hides lost tests."""
    candidates = _candidates()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(path) for path in candidates)
    raise FileNotFoundError(
        f"ReplayHub fixtures not found (looked in {looked}); set {_ENV}"
    )


def _candidates() -> list[Path]:
    explicit = os.environ.get(_ENV)
    # An explicit setting must be right: falling back would test other data.
    if explicit:
        return [Path(explicit)]
    # The repo is checked out next to shared/ (e.g. /work/main and /work/shared).
    repo_root = Path(__file__).resolve().parents[1]
    sibling = repo_root.parent / "shared" / "fixtures"
    return [sibling, Path("/work/shared/fixtures")]
