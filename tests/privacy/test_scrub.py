"""The server-side PII firewall (privacy.scrub): plain functions, no database.

The rrweb fixtures were recorded with client-side input masking off, so they carry
the test card and the email in clear text (shared/fixtures/README.md): what the
server must catch.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from privacy.scrub import (
    REDACTED,
    MaskRules,
    ScrubReport,
    ScrubState,
    compile_rules,
    luhn_valid,
    scrub_events,
    scrub_text,
)
from tests.fixtures import fixtures_dir

CARD = "4242 4242 4242 4242"
EMAIL = "jane.doe@example.com"
FIXTURES = ["signup", "checkout", "browse"]
EMAIL_PATTERN = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"

Event = dict[str, Any]


def load(name: str) -> list[Event]:
    path = fixtures_dir() / "rrweb" / f"{name}.json"
    events: list[Event] = json.loads(path.read_text(encoding="utf-8"))
    return events


def run(
    events: list[Event], rules: MaskRules | None = None, state: ScrubState | None = None
) -> tuple[list[Event], ScrubReport]:
    return scrub_events(
        events, compile_rules(rules or MaskRules()), state or ScrubState()
    )


# --- building events ---------------------------------------------------------------


def el(
    node_id: int, tag: str, attributes: dict[str, Any] | None = None, *children: Any
) -> dict[str, Any]:
    return {
        "type": 2,
        "tagName": tag,
        "attributes": attributes or {},
        "childNodes": list(children),
        "id": node_id,
    }


def txt(node_id: int, content: str, **extra: Any) -> dict[str, Any]:
    return {"type": 3, "textContent": content, "id": node_id, **extra}


def full_snapshot(*body: Any) -> Event:
    html = el(3, "html", {}, el(4, "head"), el(5, "body", {}, *body))
    document = {"type": 0, "childNodes": [html], "id": 1}
    return {
        "type": 2,
        "data": {"node": document, "initialOffset": {"left": 0, "top": 0}},
        "timestamp": 1795340661622,
    }


def mutation(**changes: Any) -> Event:
    data = {"source": 0, "texts": [], "attributes": [], "removes": [], "adds": []}
    data.update(changes)
    return {"type": 3, "data": data, "timestamp": 1795340661700}


def typed(node_id: int, text: str) -> Event:
    data = {"source": 5, "text": text, "isChecked": False, "id": node_id}
    return {"type": 3, "data": data, "timestamp": 1795340661800}


def nodes(root: Any) -> Iterator[dict[str, Any]]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.get("childNodes", []))


def node_ids(events: list[Event]) -> list[int]:
    """Ids of every serialised node, snapshots and mutation adds, in order."""
    ids: list[int] = []
    for event in events:
        data = event["data"]
        if event["type"] == 2:
            ids.extend(n["id"] for n in nodes(data["node"]))
        elif event["type"] == 3 and data["source"] == 0:
            for add in data["adds"]:
                ids.extend(n["id"] for n in nodes(add["node"]))
    return ids


def by_id(events: list[Event], node_id: int) -> dict[str, Any]:
    snapshot = next(e for e in events if e["type"] == 2)
    return next(n for n in nodes(snapshot["data"]["node"]) if n["id"] == node_id)


# --- the fixtures ------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_default_rules_remove_the_card_and_the_email(name: str) -> None:
    out, report = run(load(name))
    dumped = json.dumps(out, ensure_ascii=False)
    assert CARD not in dumped
    assert CARD.replace(" ", "") not in dumped
    assert EMAIL not in dumped
    assert report.events_dropped == 0


def test_the_fixtures_did_hold_the_card_and_the_email() -> None:
    # Otherwise the tests above prove nothing.
    assert CARD in json.dumps(load("checkout"))
    assert EMAIL in json.dumps(load("signup"))


@pytest.mark.parametrize("name", FIXTURES)
def test_card_scrubbing_works_without_input_masking(name: str) -> None:
    rules = MaskRules(mask_all_inputs=False)
    out, _ = run(load(name), rules)
    dumped = json.dumps(out, ensure_ascii=False)
    assert CARD not in dumped
    assert CARD.replace(" ", "") not in dumped
    if name == "signup":
        assert f'"text": "{EMAIL}"' in dumped  # the admin allowed clear inputs


def test_unmasked_inputs_still_mask_every_keystroke_of_a_card_field() -> None:
    # The 15-digit prefix of a card gives away its last digit (the checksum), so
    # every keystroke of the field the card went into is masked, not only the last.
    out, report = run(load("checkout"), MaskRules(mask_all_inputs=False))
    inputs = [e["data"] for e in out if e["type"] == 3 and e["data"]["source"] == 5]
    card_field = [d["text"] for d in inputs if d["id"] == 83]
    assert len(card_field) == len(CARD)
    assert all(set(text) <= {"*"} for text in card_field)
    assert [len(text) for text in card_field] == list(range(1, len(CARD) + 1))
    # Other fields stay as typed: expiry, CVC, the cardholder's name.
    assert [d["text"] for d in inputs if d["id"] == 90][-1] == "12 / 34"
    assert [d["text"] for d in inputs if d["id"] == 95][-1] == "123"
    assert [d["text"] for d in inputs if d["id"] == 78][-1] == "Jane Doe"
    assert report.inputs_masked == len(CARD)


def test_default_rules_mask_every_typed_input_keeping_its_length() -> None:
    out, report = run(load("signup"))
    inputs = [e["data"] for e in out if e["type"] == 3 and e["data"]["source"] == 5]
    email = [d["text"] for d in inputs if d["id"] == 52]
    assert email[-1] == "*" * len(EMAIL)
    typed_in = [d for d in inputs if d["id"] != 71]
    assert all(set(d["text"]) <= {"*"} for d in typed_in)
    assert by_id(out, 62)["attributes"]["value"] == "****"  # the plan <select>
    # The terms checkbox: its value is the page's, and its checked state replays.
    assert [(d["text"], d["isChecked"]) for d in inputs if d["id"] == 71] == [
        ("on", True)
    ]
    # The password was masked by rrweb already and is not counted again.
    assert report.inputs_masked == len([d for d in typed_in if d["id"] != 57]) + 1


@pytest.mark.parametrize("name", FIXTURES)
def test_the_scrubbed_fixtures_still_form_a_replay(name: str) -> None:
    original = load(name)
    out, report = run(copy.deepcopy(original))
    assert len(out) == len(original) - report.events_dropped
    assert [(e["type"], e["timestamp"]) for e in out] == [
        (e["type"], e["timestamp"]) for e in original
    ]
    assert out[0]["type"] == 4 and out[1]["type"] == 2
    assert node_ids(out) == node_ids(original)
    # Everything but strings is as it was: ids, coordinates, timestamps.
    for before, after in zip(original, out, strict=True):
        assert _shape(before) == _shape(after)


def _shape(value: Any) -> Any:
    """A JSON value with its strings blanked: what scrubbing must not change."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return "" if isinstance(value, str) else value


@pytest.mark.parametrize("name", FIXTURES)
def test_scrubbing_twice_changes_nothing_more(name: str) -> None:
    once, _ = run(load(name))
    twice, report = run(copy.deepcopy(once))
    assert twice == once
    assert report.inputs_masked == report.cards_scrubbed == 0


def test_the_client_placeholder_of_a_blocked_field_is_kept() -> None:
    out, report = run(load("signup"))
    placeholder = by_id(out, 74)
    assert placeholder["attributes"] == {
        "class": "ph-no-capture",
        "rr_width": "880px",
        "rr_height": "71px",
    }
    assert placeholder["childNodes"] == []
    assert report.nodes_blocked == 1


# --- blocking ----------------------------------------------------------------------


def blocked_page() -> Event:
    return full_snapshot(
        el(
            10,
            "div",
            {"class": "panel ph-no-capture", "id": "ref", "rr_width": "880px"},
            el(11, "input", {"value": "FRIEND-2026", "name": "referral"}),
            el(12, "p", {}, txt(13, "Referral code for Jane")),
        ),
        el(20, "section", {"data-ph-no-capture": "", "title": "x"}, txt(21, "gone")),
        el(30, "p", {}, txt(31, "visible")),
    )


def test_block_selectors_remove_the_subtree_and_keep_a_placeholder() -> None:
    events = [blocked_page()]
    out, report = run(events)
    body = by_id(out, 5)
    assert [child["id"] for child in body["childNodes"]] == [10, 20, 30]
    assert body["childNodes"][0] == {
        "type": 2,
        "tagName": "div",
        "attributes": {"class": "panel ph-no-capture", "rr_width": "880px"},
        "childNodes": [],
        "id": 10,
    }
    assert body["childNodes"][1]["attributes"] == {}
    assert body["childNodes"][1]["childNodes"] == []
    dumped = json.dumps(out)
    assert "FRIEND" not in dumped and "Referral" not in dumped and "gone" not in dumped
    assert "visible" in dumped
    assert report.nodes_blocked == 2


def test_later_events_inside_a_blocked_subtree_are_dropped() -> None:
    events = [
        blocked_page(),
        typed(11, "FRIEND-2027"),
        mutation(texts=[{"id": 13, "value": "Referral for Bob"}]),
        mutation(attributes=[{"id": 11, "attributes": {"value": "FRIEND-2028"}}]),
        mutation(
            adds=[{"parentId": 12, "nextId": None, "node": txt(40, "secret")}],
            removes=[{"parentId": 12, "id": 13}],
        ),
        # Allowed parts of a mutation stay, the rest of it goes.
        mutation(
            texts=[{"id": 31, "value": "still visible"}, {"id": 21, "value": "no"}],
            attributes=[{"id": 10, "attributes": {"class": "open"}}],
        ),
        {"type": 3, "data": {"source": 2, "type": 2, "id": 11, "x": 1, "y": 2}},
        {"type": 3, "data": {"source": 2, "type": 2, "id": 30, "x": 1, "y": 2}},
        {"type": 3, "data": {"source": 1, "positions": [{"id": 11, "x": 1}]}},
    ]
    out, report = run(events)
    assert report.events_dropped == 5
    assert [e["data"].get("source") for e in out] == [None, 0, 2, 1]
    assert out[1]["data"]["texts"] == [{"id": 31, "value": "still visible"}]
    assert out[1]["data"]["attributes"] == []
    dumped = json.dumps(out)
    assert "FRIEND" not in dumped and "secret" not in dumped and "Bob" not in dumped
    assert report.nodes_blocked == 3  # two placeholders, one add under one


def test_an_added_blocked_element_becomes_a_placeholder_in_any_add_order() -> None:
    # The child's add comes first; it must still be seen as inside the blocked div.
    events = [
        full_snapshot(el(30, "p")),
        mutation(
            adds=[
                {"parentId": 41, "nextId": None, "node": txt(42, "card on file")},
                {
                    "parentId": 5,
                    "nextId": None,
                    "node": el(
                        41, "div", {"data-ph-no-capture": "", "rr_height": "9px"}
                    ),
                },
                {"parentId": 42, "nextId": None, "node": txt(43, "deeper")},
            ]
        ),
        typed(42, "x"),
    ]
    out, report = run(events)
    adds = out[1]["data"]["adds"]
    assert [add["node"]["id"] for add in adds] == [41]
    assert adds[0]["node"]["attributes"] == {"rr_height": "9px"}
    assert report.nodes_blocked == 3
    assert report.events_dropped == 1


def test_a_blocked_node_stays_blocked_in_the_next_batch() -> None:
    state = ScrubState()
    run([blocked_page()], state=state)
    stored = json.loads(json.dumps(state.to_dict()))

    def batch_2() -> list[Event]:
        adds = [
            {"parentId": 10, "nextId": None, "node": el(50, "span")},
            {"parentId": 50, "nextId": None, "node": txt(51, "jane@corp.test")},
            {"parentId": 30, "nextId": None, "node": txt(52, "ok")},
        ]
        return [mutation(adds=adds), typed(11, "FRIEND")]

    out, report = run(batch_2(), state=ScrubState.from_dict(stored))
    assert [add["node"]["id"] for add in out[0]["data"]["adds"]] == [52]
    assert len(out) == 1 and report.events_dropped == 1
    # A fresh state would have let them through: the stored state did the work.
    out, _ = run(batch_2(), state=ScrubState())
    assert len(out[0]["data"]["adds"]) == 3


def test_a_full_snapshot_starts_the_state_again() -> None:
    # After a page load rrweb numbers nodes from 1 again: id 11 is something else.
    state = ScrubState()
    run([blocked_page()], state=state)
    assert 11 in state.blocked
    out, _ = run(
        [full_snapshot(el(11, "p", {}, txt(12, "hi"))), typed(11, "a")], state=state
    )
    assert len(out) == 2
    assert 11 not in state.blocked


# --- masking -----------------------------------------------------------------------


def masking_page() -> Event:
    return full_snapshot(
        el(10, "style", {}, txt(11, "p { color: red }", isStyle=True)),
        el(12, "script", {}, txt(13, "SCRIPT_PLACEHOLDER")),
        el(14, "p", {}, txt(15, "Hello Jane")),
        el(16, "div", {"class": "ph-mask"}, el(17, "b", {}, txt(18, "Jane Doe"))),
        el(
            20,
            "div",
            {"class": "ph-no-mask"},
            txt(21, "Public text"),
            el(22, "input", {"type": "text", "value": "public"}),
            el(23, "input", {"type": "password", "value": "hunter2"}),
            el(24, "span", {"data-ph-mask": ""}, txt(25, "secret inside")),
        ),
        el(26, "input", {"type": "submit", "value": "Pay now"}),
        el(27, "input", {"type": "email", "value": EMAIL}),
        el(28, "textarea", {"value": "my note"}, txt(29, "my note")),
        el(30, "select", {"value": "Germany"}),
    )


def test_mask_all_text_masks_text_but_not_css_scripts_or_unmasked_subtrees() -> None:
    out, report = run([masking_page()], MaskRules(mask_all_text=True))
    text = {n["id"]: n.get("textContent") for n in nodes(out[0]["data"]["node"])}
    assert text[11] == "p { color: red }"
    assert text[13] == "SCRIPT_PLACEHOLDER"
    assert text[15] == "***** ****"  # whitespace kept, as rrweb does
    assert text[18] == "**** ***"
    assert text[21] == "Public text"
    assert text[25] == "****** ******"  # a mask selector beats the unmask above it
    assert report.texts_masked == 3


def test_mask_all_inputs_masks_values_except_labels_and_unmasked_inputs() -> None:
    out, report = run([masking_page()])
    values = {
        n["id"]: n["attributes"].get("value")
        for n in nodes(out[0]["data"]["node"])
        if n["type"] == 2
    }
    assert values[22] == "public"
    assert values[23] == "*******"  # a password is masked even under ph-no-mask
    assert values[26] == "Pay now"
    assert values[27] == "*" * len(EMAIL)
    assert values[28] == "*******"
    assert values[30] == "*******"
    assert by_id(out, 28)["childNodes"][0]["textContent"] == "*******"
    text = {n["id"]: n.get("textContent") for n in nodes(out[0]["data"]["node"])}
    assert text[15] == "Hello Jane"  # mask_all_text is off
    assert text[18] == "**** ***"  # but .ph-mask is not
    assert report.inputs_masked == 5


def test_without_mask_all_inputs_only_passwords_and_masked_inputs_are_masked() -> None:
    page = masking_page()
    events = [
        page,
        typed(27, "new@example.com"),
        typed(23, "hunter3"),
        mutation(
            adds=[
                {
                    "parentId": 16,
                    "nextId": None,
                    "node": el(40, "input", {"value": "in a mask"}),
                },
                {"parentId": 18, "nextId": None, "node": txt(41, "added text")},
            ]
        ),
        typed(40, "typed in a mask"),
        # A field that becomes a password field stays masked.
        mutation(attributes=[{"id": 27, "attributes": {"type": "password"}}]),
        typed(27, "s3cret"),
    ]
    out, _ = run(events, MaskRules(mask_all_inputs=False))
    assert out[1]["data"]["text"] == "new@example.com"
    assert out[2]["data"]["text"] == "*******"
    adds = out[3]["data"]["adds"]
    assert adds[0]["node"]["attributes"]["value"] == "*********"
    assert adds[1]["node"]["textContent"] == "***** ****"
    assert out[4]["data"]["text"] == "*" * len("typed in a mask")
    assert out[6]["data"]["text"] == "******"


def test_choice_values_survive_mask_all_inputs_but_not_a_mask_selector() -> None:
    page = full_snapshot(
        el(60, "input", {"type": "radio", "name": "plan", "value": "growth"}),
        el(61, "input", {"type": "CheckBox", "value": "yes"}),
        el(62, "input", {"type": "checkbox", "value": "secret", "class": "ph-mask"}),
        el(63, "input", {"type": "text", "value": "typed"}),
    )
    state = ScrubState()
    out, _ = run([page], state=state)
    snapshot = out[0]
    assert by_id([snapshot], 60)["attributes"]["value"] == "growth"
    assert by_id([snapshot], 61)["attributes"]["value"] == "yes"
    assert by_id([snapshot], 62)["attributes"]["value"] == "******"
    assert by_id([snapshot], 63)["attributes"]["value"] == "*****"
    # The next batch knows which ids are choices; a type change is followed.
    state = ScrubState.from_dict(json.loads(json.dumps(state.to_dict())))
    batch_2 = [
        typed(60, "growth"),
        typed(62, "secret"),
        typed(63, "more"),
        mutation(attributes=[{"id": 60, "attributes": {"type": "text"}}]),
        typed(60, "now typed"),
    ]
    out, _ = run(batch_2, state=state)
    assert [e["data"].get("text") for e in out if e["data"]["source"] == 5] == [
        "growth",
        "******",
        "****",
        "*********",
    ]


def test_masked_and_unmasked_subtrees_carry_over_to_the_next_batch() -> None:
    rules = MaskRules(mask_all_text=True)
    state = ScrubState()
    run([masking_page()], rules, state)
    state = ScrubState.from_dict(json.loads(json.dumps(state.to_dict())))
    batch_2 = [
        mutation(
            texts=[
                {"id": 18, "value": "John Roe"},
                {"id": 21, "value": "Still public"},
                {"id": 11, "value": "p { color: blue }"},
                {"id": 15, "value": "Hi Bob"},
            ],
            adds=[{"parentId": 20, "nextId": None, "node": txt(45, "Public too")}],
        ),
        typed(22, "typed in the open"),
    ]
    out, _ = run(batch_2, MaskRules(mask_all_text=True, mask_all_inputs=True), state)
    texts = [t["value"] for t in out[0]["data"]["texts"]]
    assert texts == ["**** ***", "Still public", "p { color: blue }", "** ***"]
    assert out[0]["data"]["adds"][0]["node"]["textContent"] == "Public too"
    assert out[1]["data"]["text"] == "typed in the open"


# --- scrubbing strings -------------------------------------------------------------


def console(*args: str) -> Event:
    payload = {"level": "log", "trace": ["pay (http://shop.test/a.js:1:2)"]}
    payload["payload"] = list(args)
    return {"type": 6, "data": {"plugin": "rrweb/console@1", "payload": payload}}


def network() -> Event:
    request = {
        "name": f"https://shop.test/api/pay?email={EMAIL}&card=4242424242424242",
        "initiatorType": "fetch",
        "method": "POST",
        "status": 500,
        "startTime": 1795340661622,
        "requestHeaders": {"content-type": "application/json", "x-user": EMAIL},
        "requestBody": json.dumps({"email": EMAIL, "card": CARD}),
        "responseHeaders": {"content-type": "application/json"},
        "responseBody": json.dumps({"error": f"card {CARD} declined for {EMAIL}"}),
    }
    payload = {"requests": [request]}
    return {"type": 6, "data": {"plugin": "rrweb/network@1", "payload": payload}}


def test_custom_patterns_and_cards_are_removed_from_plugin_payloads() -> None:
    rules = MaskRules(extra_patterns=(EMAIL_PATTERN,))
    events = [
        console(json.dumps(f"charging {CARD}"), json.dumps({"user": EMAIL}), "42"),
        network(),
        {"type": 4, "data": {"href": f"https://shop.test/?card={CARD}", "width": 1}},
        {"type": 5, "data": {"tag": "checkout", "payload": {"who": [EMAIL]}}},
    ]
    out, report = run(events, rules)
    dumped = json.dumps(out)
    assert EMAIL not in dumped
    assert "4242" not in dumped
    assert out[0]["data"]["payload"]["payload"] == [
        '"charging **** **** **** ****"',
        '{"user": "[REDACTED]"}',
        "42",
    ]
    request = out[1]["data"]["payload"]["requests"][0]
    assert request["name"] == (
        "https://shop.test/api/pay?email=[REDACTED]&card=****************"
    )
    assert json.loads(request["requestBody"]) == {
        "email": REDACTED,
        "card": "**** **** **** ****",
    }
    assert request["requestHeaders"]["x-user"] == REDACTED
    assert request["startTime"] == 1795340661622  # numbers are never scrubbed
    assert out[2]["data"]["href"] == "https://shop.test/?card=**** **** **** ****"
    assert out[3]["data"]["payload"] == {"who": [REDACTED]}
    assert report.patterns_scrubbed == 6
    assert report.cards_scrubbed == 5


def test_cards_in_text_and_attributes_are_scrubbed() -> None:
    page = full_snapshot(
        el(
            10,
            "p",
            {"title": f"card {CARD}", "data-n": "4242-4242-4242-4242"},
            txt(11, f"Your card {CARD} was charged"),
        ),
        el(12, "input", {"placeholder": "1234 1234 1234 1234"}),
    )
    out, report = run([page, mutation(texts=[{"id": 11, "value": CARD}])])
    p = by_id(out, 10)
    assert p["attributes"]["title"] == "card **** **** **** ****"
    assert p["attributes"]["data-n"] == "****-****-****-****"
    assert (
        p["childNodes"][0]["textContent"] == "Your card **** **** **** **** was charged"
    )
    # Not Luhn-valid: the usual placeholder text stays.
    assert by_id(out, 12)["attributes"]["placeholder"] == "1234 1234 1234 1234"
    assert out[1]["data"]["texts"][0]["value"] == "**** **** **** ****"
    assert report.cards_scrubbed == 4


def test_a_card_being_typed_is_scrubbed_from_twelve_digits_on() -> None:
    # A batch boundary can fall mid-card: no whole card to find yet.
    events = [
        typed(7, "4242 4242"),
        typed(7, "4242 4242 424"),
        typed(7, "4242 4242 4242"),
        typed(7, "0049 3012 3456 78"),  # phone numbers start with 0; no card does
    ]
    out, report = run(events, MaskRules(mask_all_inputs=False))
    assert [e["data"]["text"] for e in out] == [
        "4242 4242",
        "4242 4242 424",
        "**** **** ****",
        "0049 3012 3456 78",
    ]
    assert report.cards_scrubbed == 1


def test_scrub_card_numbers_can_be_switched_off() -> None:
    rules = compile_rules(MaskRules(scrub_card_numbers=False))
    assert scrub_text(f"card {CARD}", rules) == (f"card {CARD}", 0)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4242424242424242", True),
        ("4242424242424241", False),
        ("4222222222222", True),  # 13-digit Visa
        ("378282246310005", True),  # 15-digit Amex
        ("30569309025904", True),  # 14-digit Diners
        ("6011111111111117", True),
        ("5555555555554444", True),
        ("6212345678901265", True),  # UnionPay, 16
        ("4000000000000000006", True),  # 19 digits
        ("79927398713", True),  # the textbook example
        ("79927398710", False),
        ("0", True),
        ("", False),
        ("4242 4242", False),
        ("42a2", False),
        ("٤٢٤٢", False),  # Arabic-Indic digits are not card digits here
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("text", "expected", "count"),
    [
        (CARD, "**** **** **** ****", 1),
        ("4242424242424242", "****************", 1),
        ("4242-4242-4242-4242", "****-****-****-****", 1),
        ("4242\u00a04242\u00a04242\u00a04242", "****\u00a0****\u00a0****\u00a0****", 1),
        ("amex 3782 822463 10005.", "amex **** ****** *****.", 1),
        ("visa13=4222222222222;", "visa13=*************;", 1),
        ("19: 4000000000000000006", "19: *******************", 1),
        (
            "two 4242424242424242 and 5555555555554444",
            "two **************** and ****************",
            2,
        ),
        # Luhn-invalid, or too short, or too long: left alone.
        ("4242 4242 4242 4241", "4242 4242 4242 4241", 0),
        ("424242424242", "424242424242", 0),
        ("42424242424242424242", "42424242424242424242", 0),
        # A card inside a longer unbroken run of digits is not a card.
        ("order 94242424242424242", "order 94242424242424242", 0),
        ("id 424242424242424242424242", "id 424242424242424242424242", 0),
        # Groups are whole: a card followed by a CVC, or after a quantity.
        (f"{CARD} 123", "**** **** **** **** 123", 1),
        (f"qty 2 {CARD}", "qty 2 **** **** **** ****", 1),
        # Double separators end a run.
        ("4242  4242  4242  4242", "4242  4242  4242  4242", 0),
        # Timestamps and phone numbers: Luhn lets one in ten through, the issuer
        # prefix check stops them (1795340661622 is Luhn-valid).
        ("t=1795340661622", "t=1795340661622", 0),
        ("t=1795340661622123", "t=1795340661622123", 0),
        ("+49 0151 2345 6789 0", "+49 0151 2345 6789 0", 0),
        ("call 0049 1512 3456 7890", "call 0049 1512 3456 7890", 0),
        ("", "", 0),
        ("short 4242", "short 4242", 0),
    ],
)
def test_scrub_text_cards(text: str, expected: str, count: int) -> None:
    assert scrub_text(text, compile_rules(MaskRules())) == (expected, count)


def test_luhn_valid_timestamps_are_really_luhn_valid() -> None:
    # So the table above does test the prefix check, not Luhn.
    assert luhn_valid("1795340661622")


def test_numeric_fields_are_never_scrubbed() -> None:
    event = typed(4242424242424242, "4242424242424242")
    event["timestamp"] = 4242424242424242
    out, _ = run([event], MaskRules(mask_all_inputs=False))
    assert out[0]["timestamp"] == 4242424242424242
    assert out[0]["data"]["id"] == 4242424242424242
    assert out[0]["data"]["text"] == "*" * 16


def test_custom_patterns_are_redacted_whole() -> None:
    rules = compile_rules(MaskRules(extra_patterns=(EMAIL_PATTERN, r"ACME-\d{4}")))
    assert scrub_text(f"mail {EMAIL} or x@y.io, ref ACME-1234", rules) == (
        f"mail {REDACTED} or {REDACTED}, ref {REDACTED}",
        3,
    )
    # A pattern that can match nothing (a word boundary) inserts nothing.
    assert scrub_text("a b", compile_rules(MaskRules(extra_patterns=(r"\b",)))) == (
        "a b",
        0,
    )


# --- rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selector",
    [
        "div .note",  # descendant combinator
        "div > p",
        "a:hover",
        "[data-x^=y]",
        "*",
        ".",
        "#",
        ".a,",
        ", .a",
        "[data-x=unclosed",
        "p::before",
        "div.a b",
    ],
)
def test_unsupported_selectors_are_refused(selector: str) -> None:
    with pytest.raises(ValueError, match="unsupported selector"):
        compile_rules(MaskRules(block_selectors=(selector,)))


@pytest.mark.parametrize("pattern", ["(unclosed", "[a-", "x*", ""])
def test_bad_patterns_are_refused(pattern: str) -> None:
    if not pattern:  # an empty line is no pattern at all
        assert compile_rules(MaskRules(extra_patterns=(pattern,))).patterns == ()
        return
    with pytest.raises(ValueError, match="scrub pattern"):
        compile_rules(MaskRules(extra_patterns=(pattern,)))


# Under a backtracking engine (Python's `re`) this pattern takes time exponential in
# the run of "a"s on a string that ends otherwise: these tests would never finish.
CATASTROPHIC = r"(a+)+$"
ALMOST = "a" * 100_000 + "!"


def test_an_admin_pattern_that_would_backtrack_runs_in_linear_time() -> None:
    rules = compile_rules(MaskRules(extra_patterns=(CATASTROPHIC,)))
    assert scrub_text(ALMOST, rules) == (ALMOST, 0)
    assert scrub_text("ba" * 3, rules) == (f"babab{REDACTED}", 1)
    page = full_snapshot(el(10, "p", {"title": ALMOST}, txt(11, ALMOST)))
    out, report = run([page], MaskRules(extra_patterns=(CATASTROPHIC,)))
    assert report.patterns_scrubbed == 0
    assert ALMOST in json.dumps(out)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(?=secret)\w+", "lookahead"),
        (r"(?<!x)y", "lookbehind"),
        (r"(\w)\1", "backreferences"),
        (r"a++", "possessive"),
        (r"(?>a|ab)c", "atomic"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_saying_why(pattern: str, why: str) -> None:
    with pytest.raises(ValueError, match="RE2") as refused:
        compile_rules(MaskRules(extra_patterns=(pattern,)))
    assert why in str(refused.value)
    assert pattern in str(refused.value)


def test_supported_selectors_match_the_element_itself() -> None:
    rules = MaskRules(
        block_selectors=(
            "div.note.big, #secret , [data-kind='a,b'], iframe, [data-flag]",
            "  ",
        )
    )
    page = full_snapshot(
        el(10, "div", {"class": "note big"}, txt(11, "blocked 1")),
        el(12, "div", {"class": "note"}, txt(13, "kept 1")),
        el(14, "span", {"class": "note big"}, txt(15, "kept 2")),
        el(16, "p", {"id": "secret"}, txt(17, "blocked 2")),
        el(18, "p", {"data-kind": "a,b"}, txt(19, "blocked 3")),
        el(20, "p", {"data-kind": "a"}, txt(21, "kept 3")),
        el(22, "IFRAME", {}, txt(23, "blocked 4")),
        el(24, "p", {"data-flag": ""}, txt(25, "blocked 5")),
    )
    out, report = run([page], rules)
    dumped = json.dumps(out)
    assert "blocked" not in dumped
    assert all(f"kept {n}" in dumped for n in (1, 2, 3))
    assert report.nodes_blocked == 5


def test_compiled_rules_are_cached() -> None:
    assert compile_rules(MaskRules()) is compile_rules(MaskRules())


# --- state -------------------------------------------------------------------------


def test_state_round_trips_through_plain_json() -> None:
    state = ScrubState({3, 1}, {2}, {4}, {5}, {6}, False)
    stored = json.loads(json.dumps(state.to_dict()))
    assert stored["blocked"] == [1, 3]
    assert ScrubState.from_dict(stored) == state
    assert ScrubState.from_dict(None) == ScrubState()
    junk = {"blocked": "1,2", "masked": [1, "2", True, None], "saturated": "yes"}
    assert ScrubState.from_dict(junk) == ScrubState(masked={1})


def test_too_many_ids_fail_closed_until_the_next_full_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("privacy.scrub.state.MAX_TRACKED_IDS", 2)
    state = ScrubState()
    out, report = run(
        [
            blocked_page(),  # blocks 10-13 and 20-21: more than 2 ids
            mutation(adds=[{"parentId": 30, "nextId": None, "node": txt(60, "x")}]),
            typed(30, "y"),
            {"type": 3, "data": {"source": 3, "id": 5, "x": 0, "y": 10}},
        ],
        state=state,
    )
    assert state.saturated and not state.blocked
    assert [e["data"].get("source") for e in out] == [None, 3]
    assert report.events_dropped == 2
    assert ScrubState.from_dict(state.to_dict()).saturated
    run([full_snapshot(el(30, "p"))], state=state)
    assert not state.saturated


def test_compressed_events_are_dropped_not_stored_unchecked() -> None:
    events = [
        {"type": 2, "cv": "2024-10", "data": "\x1f\x8b..."},
        {"type": 3, "cv": "2024-10", "data": {"source": 0, "adds": "\x1f\x8b..."}},
    ]
    out, report = run(events)
    assert out == [] and report.events_dropped == 2


# --- size and speed ----------------------------------------------------------------


def test_a_600_deep_tree_is_scrubbed_without_recursion() -> None:
    leaf: dict[str, Any] = el(
        2000, "p", {"class": "ph-mask"}, txt(2001, f"Deep {CARD}")
    )
    blocked = el(1999, "div", {"class": "ph-no-capture"}, txt(1998, "hidden"))
    node = leaf
    for depth in range(600):
        children = [node, blocked] if depth == 300 else [node]
        node = el(1000 + depth, "div", {"title": f"level {depth}"}, *children)
    out, report = run([full_snapshot(node)], MaskRules(mask_all_text=True))
    # Too deep for json.dumps too: read the tree with an explicit stack.
    found = list(nodes(out[0]["data"]["node"]))
    texts = {n["id"]: n.get("textContent") for n in found}
    assert texts[2001] == "**** **** **** **** ****"
    assert 1998 not in texts and by_id(out, 1999)["childNodes"] == []
    assert by_id(out, 1000)["attributes"]["title"] == "level 0"
    assert len(found) == 600 + 2 + 1 + 4  # levels, p + text, placeholder, page
    assert report.texts_masked == 1
    assert report.nodes_blocked == 1


def test_scrubbing_the_browse_fixture_takes_under_50_ms() -> None:
    rules = compile_rules(
        MaskRules(mask_all_text=True, extra_patterns=(EMAIL_PATTERN,))
    )
    original = load("browse")
    assert len(json.dumps(original)) > 40_000
    timings = []
    for _ in range(3):
        events = copy.deepcopy(original)
        start = time.perf_counter()
        scrub_events(events, rules, ScrubState())
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.050
