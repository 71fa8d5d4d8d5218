"""The data of bench/query/million.py: recordings, people, analytics events and markers.

Made up, seeded, in the shapes of the shared fixtures: the analytics events carry
the properties posthog-js 1.449.2 sent in `09a-i-v0-e-exception` (its debug and
server-side-config keys left out), with the per-session and per-event ones
replaced; markers have the kinds, labels and details recordings/ingest/signal_scan.py
makes; a recording's counts are those of its markers, as compaction leaves them.

The site is a SaaS product with a shop-like checkout and an LLM assistant; its
visitors follow a long tail (a few people with hundreds of sessions, most with
one), and a quarter of the sessions send analytics events but were not recorded
(sampling), as posthog-js does with a sample rate.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.harness.corpus import FIXTURES
from recordings.ingest.flags import feature_flags_of

DAYS = 90
Weights = tuple[tuple[str, float], ...]
HOST = "https://app.northwind.io"
LIB_VERSIONS: Weights = (
    ("1.449.2", 40),
    ("1.448.0", 25),
    ("1.445.1", 15),
    ("1.430.3", 12),
    ("1.396.0", 8),
)
# Per recording: the share of sessions that only sent analytics events.
UNRECORDED_SHARE = 0.25
PEOPLE_PER_RECORDING = 0.3
IDENTIFIED_SHARE = 0.7
PLANS: Weights = (
    ("free", 55),
    ("starter", 20),
    ("growth", 15),
    ("enterprise", 5),
    ("trial", 5),
)
LLM_MODELS: Weights = (
    ("claude-3-5-sonnet", 35),
    ("gpt-4o", 30),
    ("gpt-4o-mini", 20),
    ("claude-3-haiku", 15),
)
FEEDBACK_POSITIVE = "Good response"
FEEDBACK_NEGATIVE = "Bad response"
FLAG = "new_checkout_flow"
# posthog-js's properties worth keeping from the captured event (the rest are
# debug and server-config keys that change nothing for a query).
_DROPPED_PREFIXES = ("$sdk_debug_", "$exception", "$lib_custom", "$debug_")
_DROPPED_SUFFIXES = ("_server_side",)
_DROPPED = {"token", "$feature_flag_payloads", "$browser_type", "$config_defaults"}


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    device_type: str
    browser: str
    weight: float
    versions: tuple[str, ...]
    user_agent: str
    screens: tuple[tuple[int, int], ...]


_DESKTOP = ((1920, 1080), (1440, 900), (1536, 864), (2560, 1440), (1366, 768))
_PHONE = ((390, 844), (393, 873), (414, 896), (375, 667), (412, 915))
_TABLET = ((820, 1180), (768, 1024), (1024, 1366))
_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
_IOS = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
_DROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36"
_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
PLATFORMS = (
    Platform("Windows", "Desktop", "Chrome", 28, ("131", "130", "129"), _WIN, _DESKTOP),
    Platform("Windows", "Desktop", "Microsoft Edge", 8, ("131", "130"), _WIN, _DESKTOP),
    Platform("Windows", "Desktop", "Firefox", 4, ("133", "132"), _WIN, _DESKTOP),
    Platform("Mac OS X", "Desktop", "Chrome", 12, ("131", "130"), _MAC, _DESKTOP),
    Platform("Mac OS X", "Desktop", "Safari", 7, ("18.1", "17.6"), _MAC, _DESKTOP),
    Platform("Mac OS X", "Desktop", "Firefox", 2, ("133",), _MAC, _DESKTOP),
    Platform("Linux", "Desktop", "Chrome", 2, ("131",), _LINUX, _DESKTOP),
    Platform("iOS", "Mobile", "Mobile Safari", 14, ("18.1", "17.6"), _IOS, _PHONE),
    Platform("iOS", "Mobile", "Chrome iOS", 3, ("131",), _IOS, _PHONE),
    Platform("Android", "Mobile", "Chrome", 14, ("131", "130"), _DROID, _PHONE),
    Platform("Android", "Mobile", "Samsung Internet", 2, ("26.0",), _DROID, _PHONE),
    Platform("iOS", "Tablet", "Mobile Safari", 2.5, ("18.1",), _IOS, _TABLET),
    Platform("Android", "Tablet", "Chrome", 1.5, ("131",), _DROID, _TABLET),
)
COUNTRIES: Weights = (
    ("US", 34),
    ("GB", 8),
    ("DE", 7),
    ("IN", 6),
    ("FR", 5),
    ("BR", 5),
    ("CA", 4),
    ("NL", 3),
    ("AU", 3),
    ("ES", 3),
    ("JP", 3),
    ("PL", 2),
    ("IT", 2),
    ("SE", 2),
    ("MX", 2),
    ("KR", 1),
    ("", 3),
)
# Entry pages, then where a visitor goes from anywhere (path, weight); "{n}" is a
# number (a blog post, a docs page, a project id: many distinct URLs).
ENTRY_PAGES: Weights = (
    ("/", 30),
    ("/pricing", 10),
    ("/blog/{n}", 15),
    ("/docs/{n}", 10),
    ("/login", 10),
    ("/app/dashboard", 20),
    ("/signup", 5),
)
NEXT_PAGES: Weights = (
    ("/", 8),
    ("/pricing", 8),
    ("/features", 5),
    ("/blog/{n}", 6),
    ("/docs/{n}", 8),
    ("/signup", 4),
    ("/login", 3),
    ("/app/dashboard", 14),
    ("/app/projects/{n}", 12),
    ("/app/settings", 4),
    ("/app/assistant", 7),
    ("/account/billing", 2),
    ("/checkout", 3),
)


def weighted(pairs: Iterable[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    """Values and cumulative weights, for `rng.choices(values, cum_weights=...)`."""
    values, total, cums = [], 0.0, []
    for value, weight in pairs:
        total += weight
        values.append(value)
        cums.append(total)
    return values, cums


def uuid7(ms: int, rng: random.Random) -> str:
    """A UUIDv7 string (posthog-js's session, window and event ids) at `ms`."""
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64
    value |= 0b10 << 62 | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def event_template() -> dict[str, Any]:
    """The properties of a real posthog-js event, as captured (fixture 09a)."""
    path = FIXTURES / "decoded" / "09a-i-v0-e-exception.json"
    properties = orjson.loads(path.read_bytes())["payload"]["batch"][0]["properties"]
    return {
        key: value
        for key, value in properties.items()
        if key not in _DROPPED
        and not key.startswith(_DROPPED_PREFIXES)
        and not key.endswith(_DROPPED_SUFFIXES)
    }


# --- people -------------------------------------------------------------------------


@dataclass(slots=True)
class PersonPlan:
    distinct_id: str
    identified: bool
    first_seen_ms: int
    weight: float
    flags: dict[str, Any]
    properties: dict[str, Any]


def plan_people(rng: random.Random, count: int, anchor_ms: int) -> list[PersonPlan]:
    """`count` people first seen over 180 days; ~70 % identified (a Person row)."""
    plans, cums = weighted(PLANS)
    day = 86_400_000
    people = []
    for i in range(count):
        first_seen = anchor_ms - int(rng.random() * 180 * day)
        # A long tail of sessions per person, fewer for those seen only lately.
        active_days = min(DAYS, (anchor_ms - first_seen) / day) / DAYS
        identified = rng.random() < IDENTIFIED_SHARE
        distinct_id = f"usr_{i:07d}" if identified else uuid7(first_seen, rng)
        props: dict[str, Any] = {}
        if identified:
            plan = rng.choices(plans, cum_weights=cums)[0]
            props = {
                "email": f"person{i}@example{i % 9000}.com",
                "name": f"Person {i}",
                "plan": plan,
                "company": f"Company {i % 40_000}",
                "seats": rng.choice((1, 1, 1, 3, 5, 12, 40)),
                "$initial_referring_domain": rng.choice(("$direct", "www.google.com")),
            }
        people.append(
            PersonPlan(
                distinct_id=distinct_id,
                identified=identified,
                first_seen_ms=first_seen,
                weight=min(300.0, rng.paretovariate(1.8)) * max(active_days, 0.05),
                flags=_flags(rng),
                properties=props,
            )
        )
    return people


def _flags(rng: random.Random) -> dict[str, Any]:
    """The feature flags posthog-js evaluated for a person (none for 30 %)."""
    if rng.random() < 0.3:
        return {}
    return {
        FLAG: rng.random() < 0.3,
        "llm-assistant-v2": rng.choice(("control", "test")),
        "dark-mode": rng.random() < 0.5,
    }


def person_row(project_id: int, person: PersonPlan) -> tuple[Any, ...]:
    """A Person row (project_id, distinct_id, properties, anon ids, created,
    updated)."""
    created = from_ms(person.first_seen_ms)
    props = orjson.dumps(person.properties).decode()
    return (project_id, person.distinct_id, props, "[]", created, created)


# --- sessions -----------------------------------------------------------------------


@dataclass(slots=True)
class Mark:
    offset_ms: int
    kind: str
    label: str
    details: dict[str, Any]


@dataclass(slots=True)
class Happening:
    """An analytics event of the session: name, offset and its own properties."""

    offset_ms: int
    name: str
    properties: dict[str, Any]


@dataclass(slots=True)
class SessionPlan:
    session_id: str
    person: PersonPlan
    platform: Platform
    started_ms: int
    duration_ms: int
    windows: list[str]
    pages: list[tuple[int, str]]  # (offset ms, URL)
    marks: list[Mark] = field(default_factory=list)
    events: list[Happening] = field(default_factory=list)
    version: str = ""  # the browser's
    lib_version: str = ""
    country: str = ""
    screen: tuple[int, int] = (0, 0)


class SessionMaker:
    """Plans sessions: pages, markers and analytics events that agree."""

    def __init__(self, rng: random.Random, people: list[PersonPlan], anchor_ms: int):
        self.rng = rng
        self.people = people
        self.person_cums = weighted((p, p.weight) for p in people)[1]
        self.anchor_ms = anchor_ms
        self.platforms = weighted((p, p.weight) for p in PLATFORMS)
        self.countries = weighted(COUNTRIES)
        self.entry = weighted(ENTRY_PAGES)
        self.next = weighted(NEXT_PAGES)
        self.models = weighted(LLM_MODELS)
        self.versions = weighted(LIB_VERSIONS)

    def people_for(self, count: int) -> list[PersonPlan]:
        return self.rng.choices(self.people, cum_weights=self.person_cums, k=count)

    def plan(self, person: PersonPlan) -> SessionPlan:
        rng = self.rng
        window_start = max(person.first_seen_ms, self.anchor_ms - DAYS * 86_400_000)
        started = window_start + int(rng.random() * (self.anchor_ms - window_start))
        # Log-normal: median 2.5 min, a long tail to hours; the last ones still live.
        duration = int(min(4 * 3600_000, max(1000, rng.lognormvariate(11.9, 1.3))))
        duration = min(duration, max(1000, self.anchor_ms - started))
        windows = [uuid7(started, rng)]
        while len(windows) < 3 and rng.random() < 0.12:
            windows.append(uuid7(started + 1000 * len(windows), rng))
        platform = rng.choices(self.platforms[0], cum_weights=self.platforms[1])[0]
        session = SessionPlan(
            session_id=uuid7(started, rng),
            person=person,
            platform=platform,
            started_ms=started,
            duration_ms=duration,
            windows=windows,
            pages=self._pages(duration),
            version=rng.choice(platform.versions),
            lib_version=rng.choices(self.versions[0], cum_weights=self.versions[1])[0],
            country=rng.choices(self.countries[0], cum_weights=self.countries[1])[0],
            screen=rng.choice(platform.screens),
        )
        self._happenings(session)
        return session

    def _url(self, pairs: tuple[list[str], list[float]]) -> str:
        path = self.rng.choices(pairs[0], cum_weights=pairs[1])[0]
        if "{n}" in path:
            path = path.format(n=int(self.rng.paretovariate(0.8)) % 5000)
        return HOST + path

    def _pages(self, duration: int) -> list[tuple[int, str]]:
        rng = self.rng
        count = 1
        while count < 30 and rng.random() < 0.62:
            count += 1
        count = min(count, 1 + duration // 4000)
        offsets = sorted(int(rng.random() * duration) for _ in range(count - 1))
        urls = [self._url(self.entry)]
        for _ in offsets:
            url = self._url(self.next)
            urls.append(url if url != urls[-1] else HOST + "/features")
        return list(zip([0, *offsets], urls, strict=True))

    def _happenings(self, s: SessionPlan) -> None:
        """Markers and analytics events: pages, clicks, errors, checkout, LLM."""
        for offset, url in s.pages:
            s.marks.append(Mark(offset, "page_change", url[:200], {"url": url}))
            s.events.append(Happening(offset, "$pageview", {"$current_url": url}))
        self._clicks(s)
        self._errors(s)
        if any(url.endswith("/checkout") for _, url in s.pages) or self._p(0.03):
            self._checkout(s)
        if any(url.endswith("/app/assistant") for _, url in s.pages) or self._p(0.01):
            self._llm(s)
        if self._p(0.6):
            s.events.append(Happening(s.duration_ms, "$pageleave", {}))

    def _p(self, p: float) -> bool:
        return self.rng.random() < p

    def _at(self, s: SessionPlan) -> int:
        return int(self.rng.random() * s.duration_ms)

    def _tail(self, p: float, cap: int) -> int:
        """0 with probability 1 - p, else a long-tailed count from 1 up to `cap`."""
        if self.rng.random() >= p:
            return 0
        return min(cap, int(self.rng.paretovariate(1.6)))

    def _clicks(self, s: SessionPlan) -> None:
        rng = self.rng
        for _ in range(min(12, int(rng.expovariate(1 / 3)))):
            text = rng.choice(("Save", "Next", "Open", "Search", "Menu", "Load more"))
            s.events.append(Happening(self._at(s), "$autocapture", _click(text)))
        element = {"tag": "button", "id": "buy", "text": "Buy now"}
        for _ in range(self._tail(0.03, 20)):
            at = self._at(s)
            label = f'Rage click (5×) on button#buy "{element["text"]}"'
            details = {"element": element, "source": "both", "clicks": 5}
            s.marks.append(Mark(at, "rage_click", label, details))
            s.events.append(Happening(at, "$rageclick", _click(element["text"])))
        mobile = s.platform.device_type == "Mobile"
        for _ in range(self._tail(0.12 if mobile else 0.07, 30)):
            at = self._at(s)
            details = {"element": element, "source": "replay"}
            s.marks.append(Mark(at, "dead_click", 'Dead click on button#buy"', details))
        for kind, p, label in (
            ("mouse_thrash", 0.02, "Mouse thrashing"),
            ("u_turn", 0.04, "U-turn: back from /pricing after 2.1 s"),
        ):
            for _ in range(self._tail(p, 5)):
                s.marks.append(Mark(self._at(s), kind, label, {}))

    def _errors(self, s: SessionPlan) -> None:
        for _ in range(self._tail(0.13, 300)):
            self._console_error(s, self._at(s), "TypeError: x is undefined")
        for _ in range(self._tail(0.04, 10)):
            self._exception(s, self._at(s))
        for _ in range(self._tail(0.1, 40)):
            status = 500 if self._p(0.25) else 404
            self._network_error(s, self._at(s), status, "/api/items")
        if self._p(0.02):
            at = self._at(s)
            label = "Error after click on button#pay: TypeError"
            s.marks.append(Mark(at, "error_click", label, {"error": "TypeError"}))

    def _console_error(self, s: SessionPlan, at: int, message: str) -> None:
        s.marks.append(Mark(at, "console_error", message, {"message": message}))

    def _exception(self, s: SessionPlan, at: int) -> None:
        message = "Cannot read properties of undefined (reading 'total')"
        details = {"type": "TypeError", "message": message, "handled": False}
        s.marks.append(Mark(at, "exception", f"TypeError: {message}", details))
        self._console_error(s, at, f"Uncaught TypeError: {message}")
        exc = {"$exception_list": [{"type": "TypeError", "value": message}]}
        s.events.append(Happening(at, "$exception", exc))

    def _network_error(self, s: SessionPlan, at: int, status: int, path: str) -> None:
        details = {"url": HOST + path, "method": "POST", "status": status}
        label = f"POST {path} {status}"
        s.marks.append(Mark(at, "network_error", label, details | {"duration_ms": 120}))

    def _custom(
        self, s: SessionPlan, at: int, name: str, props: dict[str, Any]
    ) -> None:
        s.events.append(Happening(at, name, props))
        s.marks.append(Mark(at, "custom_event", name, {"name": name}))

    def _checkout(self, s: SessionPlan) -> None:
        at = self._at(s)
        cart = {"cart_value": round(self.rng.uniform(9, 900), 2), "currency": "USD"}
        self._custom(s, at, "checkout_started", cart)
        later = min(s.duration_ms, at + int(self.rng.random() * 120_000))
        if self._p(0.2):
            reason = self.rng.choice(("card_declined", "insufficient_funds", "3ds"))
            self._custom(s, later, "payment_failed", cart | {"reason": reason})
            if self._p(0.4):
                self._custom(s, s.duration_ms, "checkout_completed", cart)
        elif self._p(0.6):
            self._custom(s, later, "checkout_completed", cart)

    def _llm(self, s: SessionPlan) -> None:
        rng = self.rng
        for _ in range(1 + min(7, int(rng.expovariate(1 / 1.5)))):
            at = self._at(s)
            model = rng.choices(self.models[0], cum_weights=self.models[1])[0]
            props = {"model": model, "latency_ms": int(rng.uniform(300, 9000))}
            self._custom(s, at, "llm_call_completed", props)
            if self._p(0.12):  # the assistant's answer broke the page
                err = min(s.duration_ms, at + int(rng.uniform(500, 60_000)))
                kind = rng.random()
                if kind < 0.5:
                    self._exception(s, err)
                elif kind < 0.8:
                    self._network_error(s, err, 502, "/api/assistant/chat")
                else:
                    self._console_error(s, err, "Failed to render answer")
            if self._p(0.3):
                answer = min(s.duration_ms, at + int(rng.uniform(2000, 90_000)))
                text = FEEDBACK_POSITIVE if self._p(0.75) else FEEDBACK_NEGATIVE
                s.events.append(Happening(answer, "$autocapture", _click(text)))


def _click(text: str) -> dict[str, Any]:
    feedback = text in (FEEDBACK_POSITIVE, FEEDBACK_NEGATIVE)
    attr = f'attr__data-feedback="{text.split()[0].lower()}"' if feedback else ""
    chain = f'button.btn:{attr}nth-child="1"nth-of-type="1"text="{text}"'
    return {"$event_type": "click", "$el_text": text, "$elements_chain": chain}


# --- rows ---------------------------------------------------------------------------


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


MARKER_COLUMNS: tuple[str, ...] = (
    "recording_id",
    "kind",
    "timestamp",
    "offset_ms",
    "window_id",
    "label",
    "details",
)
EVENT_COLUMNS: tuple[str, ...] = (
    "project_id",
    "uuid",
    "name",
    "distinct_id",
    "session_id",
    "timestamp",
    "properties",
    "created",
)
PERSON_COLUMNS: tuple[str, ...] = (
    "project_id",
    "distinct_id",
    "properties",
    "anon_distinct_ids",
    "created",
    "updated",
)


def marker_rows(recording_id: int, s: SessionPlan) -> Iterator[tuple[Any, ...]]:
    window = s.windows[0]
    for mark in sorted(s.marks, key=lambda m: m.offset_ms):
        yield (
            recording_id,
            mark.kind,
            from_ms(s.started_ms + mark.offset_ms),
            mark.offset_ms,
            window,
            mark.label[:200],
            orjson.dumps(mark.details).decode(),
        )


class EventWriter:
    """Analytics event rows: the captured properties with this session's values."""

    def __init__(self, rng: random.Random, project_id: int) -> None:
        self.rng = rng
        self.project_id = project_id
        self.template = event_template()

    def session_part(self, s: SessionPlan) -> str:
        """The properties every event of the session shares, as JSON members."""
        p = s.platform
        entry = s.pages[0][1]
        props = self.template | {
            "$browser": p.browser,
            "$browser_version": float(s.version.split(".")[0]),
            "$os": p.os,
            "$device_type": p.device_type,
            "$raw_user_agent": p.user_agent,
            "$screen_width": s.screen[0],
            "$screen_height": s.screen[1],
            "$viewport_width": s.screen[0],
            "$viewport_height": s.screen[1] - 120,
            "$session_id": s.session_id,
            "$window_id": s.windows[0],
            "$device_id": s.person.distinct_id,
            "$lib_version": s.lib_version,
            "$is_identified": s.person.identified,
            "$host": HOST.removeprefix("https://"),
            "$session_entry_url": entry,
            "$session_entry_host": HOST.removeprefix("https://"),
            "$session_entry_pathname": entry.removeprefix(HOST),
            "$active_feature_flags": [k for k, v in s.person.flags.items() if v],
        }
        for flag, value in s.person.flags.items():
            props[f"$feature/{flag}"] = value
        return orjson.dumps(props).decode()[1:-1]

    def rows(self, s: SessionPlan) -> Iterator[tuple[Any, ...]]:
        shared = self.session_part(s)
        rng = self.rng
        pages = s.pages
        for happening in sorted(s.events, key=lambda h: h.offset_ms):
            ms = s.started_ms + happening.offset_ms
            url = pages[0][1]
            for offset, page in pages:
                if offset > happening.offset_ms:
                    break
                url = page
            own = happening.properties | {
                "$current_url": url,
                "$pathname": url.removeprefix(HOST),
                "$time": ms / 1000,
                "$insert_id": f"{rng.getrandbits(64):016x}",
            }
            properties = orjson.dumps(own).decode()[:-1] + "," + shared + "}"
            stamp = from_ms(ms)
            yield (
                self.project_id,
                uuid7(ms, rng),
                happening.name,
                s.person.distinct_id,
                s.session_id,
                stamp,
                properties,
                from_ms(ms + 800),
            )


def recording_values(
    s: SessionPlan, rng: random.Random, anchor_ms: int
) -> dict[str, Any]:
    """A recording's columns, its counts those of its markers."""
    kinds: dict[str, int] = {}
    for mark in s.marks:
        kinds[mark.kind] = kinds.get(mark.kind, 0) + 1
    failed = [m for m in s.marks if m.kind == "network_error"]
    duration = s.duration_ms
    active = int(duration * rng.uniform(0.15, 0.95))
    seconds = duration / 1000
    clicks = sum(1 for h in s.events if h.name == "$autocapture")
    clicks += 5 * kinds.get("rage_click", 0) + kinds.get("dead_click", 0)
    requests = len(failed) + int(seconds / 4 * rng.random())
    started = from_ms(s.started_ms)
    ended = from_ms(s.started_ms + duration)
    last_batch = from_ms(s.started_ms + duration + 2000)
    urls = [
        {"url": url, "timestamp_ms": s.started_ms + offset, "window_id": s.windows[0]}
        for offset, url in s.pages
    ]
    rrweb = s.platform.browser == "Safari" and rng.random() < 0.2
    lib = "rrweb" if rrweb else "web"
    values = {
        "session_id": s.session_id,
        "distinct_id": s.person.distinct_id,
        "started_at": started,
        "ended_at": ended,
        "duration_ms": duration,
        "click_count": clicks,
        "keypress_count": int(seconds * rng.random()) if rng.random() < 0.3 else 0,
        "console_error_count": kinds.get("console_error", 0),
        "first_url": s.pages[0][1],
        "last_url": s.pages[-1][1],
        "has_full_snapshot": rng.random() < 0.985,
        "size_bytes": int(seconds * 1200 * rng.uniform(0.5, 2)) + 8000,
        # The fixtures' main session: 356 rrweb events in 72 s.
        "event_count": int(seconds * 5 * rng.uniform(0.5, 1.5)) + 2,
        "lib": lib,
        "lib_version": "" if rrweb else s.lib_version,
        "max_gap_ms": int(rng.expovariate(1 / 8000)),
        "last_batch_at": last_batch,
        # Compaction runs once a recording has been idle for 10 minutes.
        "compacted": s.started_ms + duration < anchor_ms - 600_000,
        "legal_hold": rng.random() < 0.0005,
        "rage_click_count": kinds.get("rage_click", 0),
        "dead_click_count": kinds.get("dead_click", 0),
        "mouse_thrash_count": kinds.get("mouse_thrash", 0),
        "u_turn_count": kinds.get("u_turn", 0),
        "error_click_count": kinds.get("error_click", 0),
        "active_ms": active,
        "mouse_activity_count": int(active / 1000 * rng.uniform(1, 6)),
        "scroll_count": int(active / 1000 * rng.uniform(0, 1)),
        "console_log_count": int(rng.expovariate(1 / 6)),
        "console_warn_count": int(rng.expovariate(1 / 1.5)),
        "network_request_count": requests,
        "network_4xx_count": sum(1 for m in failed if m.details["status"] < 500),
        "network_5xx_count": sum(1 for m in failed if m.details["status"] >= 500),
        "slowest_request_ms": int(rng.lognormvariate(6, 0.8)) if requests else 0,
        "slowest_request_url": HOST + "/api/items" if requests else "",
        "page_count": len(s.pages),
        "window_count": len(s.windows),
        "urls": orjson.dumps(urls).decode(),
        "browser": s.platform.browser,
        "browser_version": s.version,
        "os": s.platform.os,
        "device_type": s.platform.device_type,
        "viewport_width": s.screen[0],
        "viewport_height": s.screen[1] - 120,
        "country": s.country,
        "user_agent": s.platform.user_agent,
        "signals_at": last_batch,
        # What the signals fold from the session's events: every event carries
        # the person's `$feature/<flag>` values (event_rows' session_part).
        "feature_flags": orjson.dumps(
            feature_flags_of([{f"$feature/{k}": v for k, v in s.person.flags.items()}])
        ).decode(),
        "created": started,
    }
    return values
