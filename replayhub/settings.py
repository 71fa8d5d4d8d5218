"""ReplayHub settings: one module, driven by the environment, with embedded defaults.

With no environment at all ReplayHub runs on an SQLite file, keeps blobs on the local
disk and uses a Celery broker that needs no server (kombu's filesystem transport), all
under REPLAYHUB_DATA_DIR. DATABASE_URL, REDIS_URL and REPLAYHUB_S3_BUCKET switch to the
production parts without a code change.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets ModelAdmin[Project] and friends be written at run time, as the stubs type them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envsecret(name: str) -> str:
    """Read a secret from NAME, or from the file named by NAME_FILE (Docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r}: {exc}") from exc
    return os.environ.get(name, "")


def _local_secret_key(data_dir: Path) -> str:
    """A per-install key kept in the data directory, so a laptop run needs no setup.

    Production sets SECRET_KEY (or SECRET_KEY_FILE); the key is never a fixed value
    shipped in the repository.
    """
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# Values that are placeholders, not secrets (compared lower-case).
_PLACEHOLDER_KEYS = {"changeme", "change-me", "secret", "secret_key", "replace-me"}


def _weak_secret_key(key: str) -> bool:
    """Django's own deploy-check yardstick: 50+ characters, 5+ distinct ones."""
    return (
        key.lower() in _PLACEHOLDER_KEYS
        or key.startswith("django-insecure")
        or len(key) < 50
        or len(set(key)) < 5
    )


def _secret_key(given: str, debug: bool, production: bool, data_dir: Path) -> str:
    """The configured key, checked; a generated per-install key only off production."""
    if given:
        if not debug and _weak_secret_key(given):
            raise ImproperlyConfigured(
                "SECRET_KEY is a placeholder or too weak (it needs 50+ characters, 5+ "
                "distinct). Generate one: python -c 'import secrets; "
                "print(secrets.token_urlsafe(50))'"
            )
        return given
    if production:
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) is missing. In production (https, DEBUG "
            "off) every web server must share one key; ReplayHub will not start with a "
            "generated or default one."
        )
    return _local_secret_key(data_dir)


# Paths
# Where ReplayHub writes on local disk (SQLite, blobs, broker queue); default ./var
DATA_DIR = Path(env("REPLAYHUB_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# Where `npm ci` put the browser packages ReplayHub serves (posthog-js, rrweb-player)
NODE_MODULES_DIR = Path(env("REPLAYHUB_NODE_MODULES", str(BASE_DIR / "node_modules")))

# Core
DEBUG = envbool("DEBUG", False)
# Public URL of this server, the snippet's api_host; default http://localhost:8000
REPLAYHUB_BASE_URL = env("REPLAYHUB_BASE_URL", "http://localhost:8000").rstrip("/")
_base = urlsplit(REPLAYHUB_BASE_URL)
if _base.scheme not in {"http", "https"} or not _base.hostname:
    raise ImproperlyConfigured(
        f"REPLAYHUB_BASE_URL={REPLAYHUB_BASE_URL!r} must be an http(s) URL"
    )
# Host names this server answers to: the base URL's host and local names, plus the
# extra names in ALLOWED_HOSTS (comma-separated; added to these, never instead)
_default_hosts = [_base.hostname, "localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS = list(dict.fromkeys(_default_hosts + envlist("ALLOWED_HOSTS", [])))
CSRF_TRUSTED_ORIGINS = envlist(
    "CSRF_TRUSTED_ORIGINS", [f"{_base.scheme}://{_base.netloc}"]
)
_https = _base.scheme == "https"
# Production mode: DEBUG off and served over https. It demands a real SECRET_KEY
# (shared by every web server) and turns on secure cookies, HSTS and the https
# redirect. A plain-http install (a laptop, `make run`) keeps a generated key instead.
PRODUCTION = _https and not DEBUG
SECRET_KEY = _secret_key(envsecret("SECRET_KEY"), DEBUG, PRODUCTION, DATA_DIR)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
# Only the admin's forms use the CSRF cookie, never JavaScript
CSRF_COOKIE_HTTPONLY = True
# Seconds browsers must keep to https (HSTS); default a year in production, else 0
SECURE_HSTS_SECONDS = envint("REPLAYHUB_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
# HSTS for every subdomain too, and the browsers' preload list: both commit more than
# this server (other hosts of the domain); default off, say yes when you know
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("REPLAYHUB_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("REPLAYHUB_HSTS_PRELOAD", False)
# Redirect plain http to https; default on in production
SECURE_SSL_REDIRECT = envbool("REPLAYHUB_SSL_REDIRECT", PRODUCTION)
# Load balancers probe the health check over plain http
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Browsers ignore COOP on plain http (and log an error for it), so send it only on https
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin" if _https else None
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if envbool("REPLAYHUB_BEHIND_PROXY", False)
    else None
)

INSTALLED_APPS = [
    # django.contrib.admin, with the site that lets in whoever holds a role
    "recordings.apps.ReplayAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Failed sign-ins, counted per username and per client address (Sign-in below)
    "axes",
    "rest_framework",
    "guardian",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "recordings",
    "playlists",
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its 429 page
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "replayhub.urls"
WSGI_APPLICATION = "replayhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username or address before any password is checked
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous visitors never hold object permissions
ANONYMOUS_USER_NAME = None

# Database
# DATABASE_URL (postgres://user@host:5432/name) or an SQLite file in the data directory
DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'replayhub.sqlite3'}"),
        conn_max_age=envint("REPLAYHUB_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so concurrent ingest
    # requests queue for it (up to `timeout` seconds) instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Tests use a file too: the live server of the browser tests reads and writes it
    # from its own thread and connection, as gunicorn workers do. One per process, so
    # that test runs side by side do not share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and not envbool(
    "REPLAYHUB_PG_JIT", False
):
    # ReplayHub's queries are short; PostgreSQL's JIT compiles any whose estimated
    # cost is high, and a filter's estimate is often far off (no statistics inside
    # JSON): 50-500 ms of compiling for a query that runs in less
    # (docs/benchmarks/query.md).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache
# REDIS_URL (redis://host:6379/0) for the cache; else a table in the database
# (`manage.py createcachetable`, which bootstrap runs): either way one cache that
# every web process shares. The ingest rate limit counts in Redis, or without it
# in its own table (recordings/capture/throttles.py)
REDIS_URL = env("REDIS_URL")
CACHES: dict[str, dict[str, Any]] = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "replayhub_cache",
        }
    )
}

# Storage
# REPLAYHUB_S3_BUCKET switches recording blobs to S3 (or any S3-protocol server)
REPLAYHUB_S3_BUCKET = env("REPLAYHUB_S3_BUCKET")
MEDIA_ROOT = DATA_DIR / "media"
STATIC_URL = "/assets/"  # /static/ belongs to posthog-js's script paths on the api_host
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [
    ("vendor/rrweb-player", NODE_MODULES_DIR / "rrweb-player" / "dist"),
    # rrweb's own Replayer: the admin's player (watch.js) drives one per window.
    ("vendor/rrweb", NODE_MODULES_DIR / "rrweb" / "dist"),
]
# Serve static files straight from the finders when developing (no collectstatic)
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_MIMETYPES = {".cjs": "text/javascript"}
# Every call to S3 is bounded, so a store that hangs (accepts connections, never
# answers) costs a request seconds, not minutes: boto's own defaults are 60 s per
# read and 5 attempts. Worst case per call: attempts x timeout, plus up to 1 s
# between attempts.
# Seconds to open a connection to the S3 server, per attempt; default 2
REPLAYHUB_S3_CONNECT_TIMEOUT = envint("REPLAYHUB_S3_CONNECT_TIMEOUT", 2)
# Seconds to wait for the S3 server's next bytes, per attempt; default 3
REPLAYHUB_S3_READ_TIMEOUT = envint("REPLAYHUB_S3_READ_TIMEOUT", 3)
# Attempts per S3 call, the first included (a retry rides out one dropped
# connection or 503 SlowDown); default 2
REPLAYHUB_S3_MAX_ATTEMPTS = envint("REPLAYHUB_S3_MAX_ATTEMPTS", 2)
for _name in ("CONNECT_TIMEOUT", "READ_TIMEOUT", "MAX_ATTEMPTS"):
    if globals()[f"REPLAYHUB_S3_{_name}"] < 1:
        raise ImproperlyConfigured(f"REPLAYHUB_S3_{_name} must be 1 or more")


def _recordings_storage() -> dict[str, Any]:
    if not REPLAYHUB_S3_BUCKET:
        return {
            "BACKEND": "recordings.blobs.AtomicFileSystemStorage",
            # Blob keys are content-addressed by batch id: a retried batch rewrites
            # the same key instead of getting a "_a1b2c3" suffixed copy.
            "OPTIONS": {"location": DATA_DIR / "blobs", "allow_overwrite": True},
        }
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": REPLAYHUB_S3_BUCKET,
            # Read by every storage call: capture, playback, compaction, retention,
            # erasure, redaction and the orphan sweep all go through this storage.
            "client_config": Config(
                connect_timeout=REPLAYHUB_S3_CONNECT_TIMEOUT,
                read_timeout=REPLAYHUB_S3_READ_TIMEOUT,
                retries={
                    "total_max_attempts": REPLAYHUB_S3_MAX_ATTEMPTS,
                    "mode": "standard",
                },
            ),
            # boto3's downloads retry a timed-out GET 5 more times on top of the
            # attempts above; the attempts above are all a read gets.
            "transfer_config": TransferConfig(num_download_attempts=1),
            "endpoint_url": env("REPLAYHUB_S3_ENDPOINT_URL") or None,
            "region_name": env("REPLAYHUB_S3_REGION") or None,
            "access_key": envsecret("REPLAYHUB_S3_ACCESS_KEY_ID") or None,
            "secret_key": envsecret("REPLAYHUB_S3_SECRET_ACCESS_KEY") or None,
            "location": env("REPLAYHUB_S3_PREFIX", "recordings"),
            "file_overwrite": True,
            # Not "Content-Encoding: gzip" (django-storages' guess from .json.gz):
            # some S3-compatible servers would then decompress on read.
            "object_parameters": {"ContentType": "application/gzip"},
            "default_acl": None,
            "querystring_auth": True,
        },
    }


STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "recordings": _recordings_storage(),
}

# Celery
# REDIS_URL as broker in production; kombu's filesystem transport (no server) by default
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _queue_dir = DATA_DIR / "celery-broker"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "store_processed": False,
        # Exchange bindings; kombu would otherwise write them to ./control.
        "control_folder": str(_queue_dir / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
# Queue that tasks go to and the worker of `make run` consumes; default "replayhub"
CELERY_TASK_DEFAULT_QUEUE = env("REPLAYHUB_CELERY_QUEUE", "replayhub")
CELERY_TASK_ALWAYS_EAGER = envbool("REPLAYHUB_CELERY_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False


# The periodic jobs: task, cron variable, default cron, and seconds just under the
# period: a queued run expires after them (a backlog never runs a sweep twice), and a
# running one is stopped, its run-once lock lapsing then (recordings/services/jobs.py)
PERIODIC_JOBS: dict[str, tuple[str, str, str, int]] = {
    "compact-idle-recordings": (
        "recordings.tasks.recordings_compact",
        "REPLAYHUB_COMPACT_CRON",
        "*/5 * * * *",
        240,
    ),
    "refresh-live-signals": (
        "recordings.tasks.recordings_signals_refresh",
        "REPLAYHUB_SIGNALS_CRON",
        "*/2 * * * *",
        100,
    ),
    "enforce-billing-caps": (
        "recordings.tasks.projects_cap_enforce",
        "REPLAYHUB_BILLING_CAP_CRON",
        "*/5 * * * *",
        240,
    ),
    "resume-erasures": (
        "privacy.tasks.erasures_resume",
        "REPLAYHUB_ERASURE_RESUME_CRON",
        "*/30 * * * *",
        1500,
    ),
    "expire-recordings": (
        "privacy.tasks.projects_expire",
        "REPLAYHUB_RETENTION_CRON",
        "20 3 * * *",
        23 * 3600,
    ),
    "delete-orphan-blobs": (
        "recordings.tasks.orphan_blobs_delete",
        "REPLAYHUB_ORPHAN_BLOBS_CRON",
        "40 3 * * *",
        23 * 3600,
    ),
}


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Periodic tasks, each with a cron from the environment ("disable" turns it off).

    `expires` stays under the period, so a backlog never runs a sweep twice.
    """
    from celery.schedules import crontab

    schedule: dict[str, dict[str, Any]] = {}
    for name, (task, variable, default, expires) in PERIODIC_JOBS.items():
        cron = env(variable, default).strip()
        if cron == "disable":
            continue
        fields = cron.split()
        if len(fields) != 5:
            raise ImproperlyConfigured(f"{variable}={cron!r} is not a 5-field cron")
        minute, hour, day, month, weekday = fields
        schedule[name] = {
            "task": task,
            "schedule": crontab(minute, hour, day, month, weekday),
            "options": {"expires": expires},
        }
    return schedule


CELERY_BEAT_SCHEDULE = beat_schedule()
# A periodic job running longer than its period is stopped (prefork workers, as the
# Procfile's), so a job whose worker died never holds its run-once lock for longer
CELERY_TASK_ANNOTATIONS = {
    task: {"time_limit": seconds} for task, _, _, seconds in PERIODIC_JOBS.values()
}

# Ingest
# A device clock off by more than this (received time minus the client's sent_at)
# has its session's event times corrected, seconds; default 300 (5 minutes)
REPLAYHUB_INGEST_CLOCK_SKEW_TOLERANCE_SECONDS = envint(
    "REPLAYHUB_INGEST_CLOCK_SKEW_TOLERANCE_SECONDS", 300
)
# Largest request body accepted as sent (compressed), bytes; default 20 MiB
REPLAYHUB_INGEST_MAX_BYTES = envint("REPLAYHUB_INGEST_MAX_BYTES", 20 * 1024 * 1024)
# Largest fully decompressed payload (outer gzip plus nested event gzip), bytes; 64 MiB
REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES = envint(
    "REPLAYHUB_INGEST_MAX_DECOMPRESSED_BYTES", 64 * 1024 * 1024
)
# Most sessions, $snapshot events and analytics events one capture request may
# carry (413 too_many_* above; recordings/ingest/limits.py); 10, 100, 1000
REPLAYHUB_INGEST_MAX_SESSIONS = envint("REPLAYHUB_INGEST_MAX_SESSIONS", 10)
REPLAYHUB_INGEST_MAX_SNAPSHOTS = envint("REPLAYHUB_INGEST_MAX_SNAPSHOTS", 100)
REPLAYHUB_INGEST_MAX_EVENTS = envint("REPLAYHUB_INGEST_MAX_EVENTS", 1000)
# Largest analytics event (its properties, $set, $set_once as JSON), bytes; 1 MiB
REPLAYHUB_INGEST_MAX_EVENT_BYTES = envint(
    "REPLAYHUB_INGEST_MAX_EVENT_BYTES", 1024 * 1024
)
# api_host the demo page gives posthog-js; default: the host the page was loaded from
REPLAYHUB_DEMO_API_HOST = env("REPLAYHUB_DEMO_API_HOST")
# Serve the demo page (/demo/, recording into the project marked as the demo); on by
# default, off by default in production mode, where anyone could fill its cap
REPLAYHUB_DEMO_PAGE = envbool("REPLAYHUB_DEMO_PAGE", not PRODUCTION)
# A request's batches of one window bigger than this (JSON bytes, before gzip) go to
# blob storage as one blob; smaller ones (nearly all) are committed in their chunk
# rows and reach storage only at compaction; default 8 MiB (docs/benchmarks/ingest.md)
REPLAYHUB_INGEST_ROW_MAX_BYTES = envint(
    "REPLAYHUB_INGEST_ROW_MAX_BYTES", 8 * 1024 * 1024
)
# A header a trusted proxy in front sets to the visitor's country (e.g. CF-IPCountry);
# empty (the default) reads none. Wins over the IP database below
REPLAYHUB_COUNTRY_HEADER = os.environ.get("REPLAYHUB_COUNTRY_HEADER", "").strip()
# Path of an offline IP-to-country database in MaxMind's format (GeoLite2-Country
# .mmdb) to look capture requests' addresses up in; empty (the default): no country
REPLAYHUB_GEOIP_DATABASE = os.environ.get("REPLAYHUB_GEOIP_DATABASE", "").strip()
# A live recording's signals and markers are recomputed at most this often while
# new data arrives (REPLAYHUB_SIGNALS_CRON runs the sweep), minutes; default 3
REPLAYHUB_SIGNALS_REFRESH_MINUTES = envint("REPLAYHUB_SIGNALS_REFRESH_MINUTES", 3)
# A delete by filter (the API's /recordings/delete/) of more recordings than this
# runs as a Celery task rather than in the request.
REPLAYHUB_PURGE_SYNC_MAX = envint("REPLAYHUB_PURGE_SYNC_MAX", 200)
# Seconds the recording list reuses the values its filter pickers offer (browsers,
# OS, devices, countries, event names: each a DISTINCT over the visible rows), per
# set of projects; 0 turns the cache off; 300
REPLAYHUB_FILTER_CHOICES_CACHE_SECONDS = envint(
    "REPLAYHUB_FILTER_CHOICES_CACHE_SECONDS", 300
)
# Minutes without a new batch before a recording is compacted into one blob; 15
REPLAYHUB_COMPACT_IDLE_MINUTES = envint("REPLAYHUB_COMPACT_IDLE_MINUTES", 15)
# Batches per minute one project may send (503 + Retry-After above it); 0 = no limit
REPLAYHUB_INGEST_RATE_PER_MINUTE = envint("REPLAYHUB_INGEST_RATE_PER_MINUTE", 6000)
# Seconds (Retry-After) a client waits before retrying a batch we could not store; 5
REPLAYHUB_INGEST_RETRY_AFTER = envint("REPLAYHUB_INGEST_RETRY_AFTER", 5)
# Seconds a web process reuses a project (and its privacy settings) looked up by
# capture token, so a change that stops capture reaches it this late (one that
# resumes it, at once: no 4xx comes from this cache); 0 turns the cache off; 5
REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS = envint(
    "REPLAYHUB_INGEST_PROJECT_CACHE_SECONDS", 5
)
# Seconds after an erasure's first pass that its final pass runs: past the capture
# cache above plus a request's longest run, so a batch admitted before the person's
# tombstone reached every web process is erased too; default 60
REPLAYHUB_ERASURE_SETTLE_SECONDS = envint("REPLAYHUB_ERASURE_SETTLE_SECONDS", 60)
# Minutes a blob with no chunk row is kept before the orphan sweeper deletes it
# (its commit may still be under way); default 60
REPLAYHUB_ORPHAN_BLOB_GRACE_MINUTES = envint("REPLAYHUB_ORPHAN_BLOB_GRACE_MINUTES", 60)
# Take a sender's IP from X-Forwarded-For's first entry (a proxy in front sets it); off
REPLAYHUB_TRUST_X_FORWARDED_FOR = envbool("REPLAYHUB_TRUST_X_FORWARDED_FOR", False)

# Sign-in
# Wrong passwords after which the admin's sign-in refuses that username (from any
# address) and that client address (for any username), django-axes; default 5
REPLAYHUB_LOGIN_FAILURE_LIMIT = envint("REPLAYHUB_LOGIN_FAILURE_LIMIT", 5)
# Minutes a lockout lasts, counted from the last failure (failures older than this
# are forgotten); default 30
REPLAYHUB_LOGIN_COOLOFF_MINUTES = envint("REPLAYHUB_LOGIN_COOLOFF_MINUTES", 30)
for _name in ("FAILURE_LIMIT", "COOLOFF_MINUTES"):
    if globals()[f"REPLAYHUB_LOGIN_{_name}"] < 1:
        raise ImproperlyConfigured(f"REPLAYHUB_LOGIN_{_name} must be 1 or more")
AXES_FAILURE_LIMIT = REPLAYHUB_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = dt.timedelta(minutes=REPLAYHUB_LOGIN_COOLOFF_MINUTES)
# Either one locks: a username guessed at from many addresses, an address trying
# many usernames
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The address capture uses too: REMOTE_ADDR, or X-Forwarded-For's first entry when
# REPLAYHUB_TRUST_X_FORWARDED_FOR says a proxy sets it
AXES_CLIENT_IP_CALLABLE = "recordings.client_address.client_ip"
AXES_LOCKOUT_CALLABLE = "recordings.admin_site.login_locked_out"
# Failures only: no table of every successful sign-in and its address
AXES_DISABLE_ACCESS_LOG = True

# REST framework
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication"
    ],
    # Not IsAdminUser: is_staff decides nothing in ReplayHub (see recordings.access)
    "DEFAULT_PERMISSION_CLASSES": ["recordings.permissions.MayUseReplayHub"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "ReplayHub management API",
    "DESCRIPTION": "Projects and session recordings. Authenticate with a personal "
    "API key (`Authorization: Bearer rhk_…`, made in the admin under API keys) or "
    "an admin session. Every object belongs to a project; you see only projects "
    "where you hold a role, and only the key's projects when you use a key.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "PREPROCESSING_HOOKS": ["recordings.viewsets.only_management_endpoints"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "recordings.viewsets.add_filter_components",
    ],
    # Swagger UI's files come from the sidecar package: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Internationalisation
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Logging
# REPLAYHUB_LOG_LEVEL: level of ReplayHub's own loggers; default INFO
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"level": env("REPLAYHUB_LOG_LEVEL", "INFO")}
        for name in ("recordings", "playlists", "privacy", "replayhub")
    },
}
