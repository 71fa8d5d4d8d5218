"""The pure cores (house style 2) import nothing from Django."""

from __future__ import annotations

import subprocess
import sys

_CHECK = (
    "import sys\n"
    "import privacy.scrub, recordings.ingest.parse, recordings.ingest.rrweb\n"
    "import recordings.ingest.stats, recordings.ingest.images\n"
    "import recordings.ingest.playability, recordings.search.language\n"
    "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))\n"
)


def test_it_imports_the_pure_cores_without_django() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHECK], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
