"""Settings come from the environment: production parts switch on without code."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json
from django.conf import settings
import django
django.setup()
options = settings.STORAGES["recordings"].get("OPTIONS", {})
config = options.get("client_config")
s3_limits = config and {
    "connect_timeout": config.connect_timeout,
    "read_timeout": config.read_timeout,
    "retries": config.retries,
    "download_attempts": options["transfer_config"].num_download_attempts,
}
print(json.dumps({
    "s3_limits": s3_limits,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "db_options": settings.DATABASES["default"].get("OPTIONS", {}).get("options"),
    "cache": settings.CACHES["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "storage": settings.STORAGES["recordings"]["BACKEND"],
    "storage_options": {
        k: str(v) for k, v in settings.STORAGES["recordings"].get("OPTIONS", {}).items()
    },
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "secret_key": settings.SECRET_KEY,
    "secure_cookies": settings.SESSION_COOKIE_SECURE,
    "demo_page": settings.REPLAYHUB_DEMO_PAGE,
    "beat": {
        name: [entry["task"], str(entry["schedule"]), entry["options"]["expires"]]
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    },
}))
"""


STRONG_KEY = "k3y-" + "0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP"
PRODUCTION = {"REPLAYHUB_BASE_URL": "https://replay.example.com"}


def load_settings(tmp_path: Path, **environ: str) -> dict[str, object]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REPLAYHUB_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"))
    }
    env |= {"DJANGO_SETTINGS_MODULE": "replayhub.settings"}
    env |= {"REPLAYHUB_DATA_DIR": str(tmp_path)} | environ
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def test_embedded_defaults_need_no_server(tmp_path: Path) -> None:
    loaded = load_settings(tmp_path)
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["db_name"] == str(tmp_path / "replayhub.sqlite3")
    assert loaded["broker"] == "filesystem://"
    assert loaded["storage"] == "recordings.blobs.AtomicFileSystemStorage"
    assert loaded["storage_options"]["location"] == str(tmp_path / "blobs")  # type: ignore[index]
    # Shared by the web processes (the rate limit and the caches hold across them).
    assert loaded["cache"] == "django.core.cache.backends.db.DatabaseCache"


def test_a_generated_secret_key_is_kept_per_install(tmp_path: Path) -> None:
    first = load_settings(tmp_path)["secret_key"]
    assert first == load_settings(tmp_path)["secret_key"]
    assert len(str(first)) >= 50
    assert first != load_settings(tmp_path / "other")["secret_key"]


def test_production_parts_switch_on_from_the_environment(tmp_path: Path) -> None:
    loaded = load_settings(
        tmp_path,
        DATABASE_URL="postgres://rh@db.internal:5432/replayhub",
        REDIS_URL="redis://cache.internal:6379/0",
        REPLAYHUB_S3_BUCKET="recordings",
        REPLAYHUB_S3_ENDPOINT_URL="http://s3.internal:9000",
        REPLAYHUB_BASE_URL="https://replay.example.com",
        SECRET_KEY=STRONG_KEY,
    )
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["db_name"] == "replayhub"
    # Short queries with unreliable estimates: no JIT compiling (unless asked for).
    assert loaded["db_options"] == "-c jit=off"
    assert loaded["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert loaded["broker"] == "redis://cache.internal:6379/0"
    assert loaded["storage"] == "storages.backends.s3.S3Storage"
    assert loaded["storage_options"]["bucket_name"] == "recordings"  # type: ignore[index]
    assert "replay.example.com" in loaded["allowed_hosts"]  # type: ignore[operator]
    assert loaded["secret_key"] == STRONG_KEY
    assert loaded["secure_cookies"] is True


def test_postgresqls_jit_may_be_turned_back_on(tmp_path: Path) -> None:
    url = "postgres://rh@db.internal:5432/replayhub"
    loaded = load_settings(tmp_path, DATABASE_URL=url, REPLAYHUB_PG_JIT="true")
    assert loaded["db_options"] is None


def test_every_s3_call_is_bounded_in_time_and_attempts(tmp_path: Path) -> None:
    loaded = load_settings(tmp_path, REPLAYHUB_S3_BUCKET="recordings")
    assert loaded["s3_limits"] == {
        "connect_timeout": 2,
        "read_timeout": 3,
        "retries": {"total_max_attempts": 2, "mode": "standard"},
        "download_attempts": 1,  # boto3's own 5 would multiply the attempts
    }
    loaded = load_settings(
        tmp_path,
        REPLAYHUB_S3_BUCKET="recordings",
        REPLAYHUB_S3_CONNECT_TIMEOUT="1",
        REPLAYHUB_S3_READ_TIMEOUT="30",
        REPLAYHUB_S3_MAX_ATTEMPTS="3",
    )
    assert loaded["s3_limits"] == {
        "connect_timeout": 1,
        "read_timeout": 30,
        "retries": {"total_max_attempts": 3, "mode": "standard"},
        "download_attempts": 1,
    }
    with pytest.raises(AssertionError, match="REPLAYHUB_S3_MAX_ATTEMPTS must be 1"):
        load_settings(tmp_path, REPLAYHUB_S3_MAX_ATTEMPTS="0")


def test_a_bad_value_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="REPLAYHUB_INGEST_MAX_BYTES='lots'"):
        load_settings(tmp_path, REPLAYHUB_INGEST_MAX_BYTES="lots")


def test_the_beat_schedule_comes_from_cron_variables(tmp_path: Path) -> None:
    beat = load_settings(tmp_path)["beat"]
    task, schedule, expires = beat["compact-idle-recordings"]  # type: ignore[index]
    assert task == "recordings.tasks.recordings_compact"
    assert "*/5" in schedule
    assert expires < 300
    hourly = load_settings(tmp_path, REPLAYHUB_COMPACT_CRON="0 * * * *")["beat"]
    assert "<crontab: 0 *" in hourly["compact-idle-recordings"][1]  # type: ignore[index]
    off = load_settings(tmp_path, REPLAYHUB_COMPACT_CRON="disable")["beat"]
    assert "compact-idle-recordings" not in off  # type: ignore[operator]
    task, schedule, expires = beat["delete-orphan-blobs"]  # type: ignore[index]
    assert task == "recordings.tasks.orphan_blobs_delete"
    assert expires < 24 * 3600
    with pytest.raises(AssertionError, match="not a 5-field cron"):
        load_settings(tmp_path, REPLAYHUB_COMPACT_CRON="every minute")


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="SECRET_KEY .* is missing"):
        load_settings(tmp_path, **PRODUCTION)
    assert not (tmp_path / "secret_key").exists()  # and generated none


def test_a_placeholder_or_weak_secret_key_is_refused(tmp_path: Path) -> None:
    for weak in ("changeme", "django-insecure-" + "x" * 50, "short-key"):
        with pytest.raises(AssertionError, match="placeholder or too weak"):
            load_settings(tmp_path, SECRET_KEY=weak)


def test_debug_mode_may_run_with_a_generated_key(tmp_path: Path) -> None:
    loaded = load_settings(tmp_path, DEBUG="true", **PRODUCTION)
    assert loaded["secret_key"] == (tmp_path / "secret_key").read_text().strip()


def test_production_passes_the_deploy_checks(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REPLAYHUB_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"))
    }
    env |= {"REPLAYHUB_DATA_DIR": str(tmp_path), "SECRET_KEY": STRONG_KEY, **PRODUCTION}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    found = set(re.findall(r"\((security\.\w+)\)", result.stdout + result.stderr))
    # Left to the operator on purpose: HSTS for every subdomain and the preload
    # list commit hosts other than this one (REPLAYHUB_HSTS_INCLUDE_SUBDOMAINS, …).
    assert found <= {"security.W005", "security.W021"}, found


def test_the_demo_page_is_off_in_production_unless_turned_on(tmp_path: Path) -> None:
    assert load_settings(tmp_path)["demo_page"] is True  # `make run`: on
    production = PRODUCTION | {"SECRET_KEY": STRONG_KEY}
    assert load_settings(tmp_path, **production)["demo_page"] is False
    on = load_settings(tmp_path, **production, REPLAYHUB_DEMO_PAGE="true")
    assert on["demo_page"] is True
    off = load_settings(tmp_path, REPLAYHUB_DEMO_PAGE="false")
    assert off["demo_page"] is False


def test_allowed_hosts_adds_extra_names_to_the_defaults(tmp_path: Path) -> None:
    defaults = ["replay.example.com", "localhost", "127.0.0.1", "[::1]"]
    production = PRODUCTION | {"SECRET_KEY": STRONG_KEY}
    assert load_settings(tmp_path, **production)["allowed_hosts"] == defaults
    extra = load_settings(
        tmp_path, **production, ALLOWED_HOSTS="replay.internal, localhost,"
    )
    assert extra["allowed_hosts"] == [*defaults, "replay.internal"]


def test_every_beat_entry_names_a_registered_task() -> None:
    # A renamed task left behind in the schedule would be refused by the worker
    # as unregistered, every period, without failing anything else.
    from django.conf import settings

    from replayhub.celery import app

    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks and tasks <= set(app.tasks)


SETTING = re.compile(
    r"REPLAYHUB_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL|REDIS_URL|SECRET_KEY|ALLOWED_HOSTS|DEBUG"
)


def read_from_the_environment() -> set[str]:
    """Every variable settings.py, gunicorn.conf.py and the Procfile read."""
    names = set()
    for module in ("replayhub/settings.py", "gunicorn.conf.py"):
        for node in ast.walk(ast.parse((ROOT / module).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names |= {node.value} if SETTING.fullmatch(node.value) else set()
    procfile = (ROOT / "Procfile").read_text()
    names |= set(re.findall(r"\$\{(REPLAYHUB_[A-Z0-9_]+)", procfile))
    return names


def test_every_setting_is_documented() -> None:
    names = read_from_the_environment()
    # The scan itself: a variable read each way (env(), a cron, gunicorn, Procfile).
    assert {"DATABASE_URL", "REPLAYHUB_COMPACT_CRON", "REPLAYHUB_BIND"} <= names
    assert {"REPLAYHUB_ACCESS_LOG_IPS", "REPLAYHUB_WEB_MAX_REQUESTS_JITTER"} <= names
    table = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in table)
    assert missing == [], f"not in docs/configuration.md: {missing}"
