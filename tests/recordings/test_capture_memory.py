"""A decompression bomb is refused without the process growing past ~2x the bound.

Measured in a fresh process: its peak resident size (VmHWM) is reset right before
the request, so the figure is what handling the bomb cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOUND = 32 * 1024 * 1024
PROBE = r"""
import json, zlib
from pathlib import Path
import django
django.setup()
from django.test import Client

def status_kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
zeros = b"\0" * (1 << 20)
parts = [compressor.compress(zeros) for _ in range(1024)]
bomb = b"".join(parts) + compressor.flush()
client = Client()
client.get("/healthz")  # warm up imports and lazy state
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
before = status_kb("VmRSS")
response = client.post("/s/", data=bomb, content_type="text/plain")
print(json.dumps({
    "status": response.status_code,
    "error": response.json()["error"],
    "bomb_bytes": len(bomb),
    "growth": (status_kb("VmHWM") - before) * 1024,
}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux only")
def test_a_gzip_bomb_is_refused_within_twice_the_bound(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "replayhub.settings",
        "REPLAYHUB_DATA_DIR": str(tmp_path),
        "REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES": str(BOUND),
        "ALLOWED_HOSTS": "testserver",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == 413
    assert report["error"] == "decompressed_too_large"
    assert report["bomb_bytes"] < 2 * 1024 * 1024  # 1 GiB of zeros, inflated
    assert report["growth"] < 2 * BOUND, report
