"""Server-side PII firewall: mask, block and scrub rrweb events before storage.

Every batch passes through `scrub_events` before it is written, whatever the SDK was
told to do: a client with masking switched off (or an old or hostile one) must not
get a card number or a typed email into storage. The rules follow rrweb's own
privacy options (wire-protocol §5), so a recording masked here looks like one masked
in the browser:

* input values (Input events' `text`, the `value` attribute of input/textarea/select
  in snapshots and attribute mutations) become one `*` per character, as rrweb's
  maskInputValue does. `mask_all_inputs` masks all of them, except the value of
  button-like inputs (submit, reset, button, image: a visible label, not typed data)
  and inputs under an unmask selector; password inputs and inputs under a mask
  selector are masked whatever the switches say.
* text (text nodes, Mutation `texts`) under a mask selector, or everywhere with
  `mask_all_text`, has each non-whitespace character replaced by `*`, as rrweb's
  maskTextClass does. CSS (`<style>`, `isStyle`) and `<script>` text is never masked:
  it is not user content and masking it would break the replay's layout.
* an element matching a block selector becomes rrweb's own placeholder: the element
  node is kept with its id, tag, `class` and any `rr_width`/`rr_height`/`rr_left`/
  `rr_top`/`rr_position` the client measured, and no children, so the replay keeps
  the layout hole. (The server cannot measure: an element the client did not block
  gets no size and takes whatever its class gives it.) Its descendants are gone, and
  later mutations, Input events and other events aimed at any id in the subtree are
  dropped; so are mutation adds under it.
* card numbers in any string the recording stores (text, attributes, input
  values, console and network plugin payloads, Meta `href`, custom events) get
  each digit replaced by `*`, separators kept ("**** **** **** ****"), so a replay
  still shows where a number was. A card number is 13-19 digits, bare or in groups
  split by single spaces or dashes, Luhn-valid, with an issuer prefix some card
  has (see `cards._could_be_card`: this keeps millisecond timestamps in URLs intact).
  Admin patterns are replaced by the fixed `[REDACTED]`: their matches have no
  shape worth keeping. Numbers in numeric JSON fields (timestamps, ids,
  coordinates) are never touched: only strings are.
* a cross-origin iframe (unless `record_cross_origin_iframes`) keeps its element
  and attributes but never its document: rrweb sends a frame's document as
  children of the iframe node or as a mutation add under the iframe's id (with
  `recordCrossOriginIframes`, the child page's own snapshot arrives that way), and
  both are dropped, with every node that later arrives inside them. A frame is
  cross-origin when the origin of its `src` (or `rr_src`, where rrweb puts the URL
  of a frame it could not read) differs from the page's, taken from the window's
  Meta `href` and kept in `ScrubState`; a `data:` frame or one sandboxed without
  `allow-same-origin` has an opaque origin, so it is cross-origin too; a frame
  with no URL (about:blank, `srcdoc`) has the page's origin. A page whose origin
  is unknown treats every frame with a URL as cross-origin. A frame whose `src`
  changes to another origin is treated as cross-origin from then on; it is not
  let back in until the next FullSnapshot. Console logs a frame's rrweb forwards
  carry no node id and cannot be told apart from the page's: they are kept,
  scrubbed like the page's own.

Cards typed into a field arrive one keystroke per Input event, and the 15-digit
prefix of a 16-digit card gives the card away (the last digit is the checksum). So
when card scrubbing is on, a field into which a whole card was typed is masked as an
input in the whole batch and in later ones (`ScrubState.card_inputs`), and an input
value made only of 12-19 digits and separators (not starting with 0) is taken for a
card being typed. What earlier batches stored of a card still being typed holds at
most 11 digits.

Mutation adds only name their parent (`parentId`), so which added nodes fall under a
blocked, masked or unmasked element is known from the ids seen before: `ScrubState`
keeps them, and the caller stores it (`to_dict`/`from_dict`) with the recording and
passes it back with the session's next batch — one state per replay track
(`$session_id` + `$window_id`), since every window numbers its nodes itself. A
FullSnapshot starts the sets again: the replayer rebuilds the whole DOM from it (and
rrweb numbers nodes from 1 again after a page load). Selectors are evaluated when a
node is serialised (snapshot or add): an element that only gains a blocking class
later is not blocked (rrweb would stop recording inside it from then on).

Events must be plain rrweb events: posthog's compressed `cv` fields are strings the
firewall cannot read, so a FullSnapshot or Mutation still carrying one is dropped
rather than stored unchecked (expand it first with
`recordings.ingest.parse.expand_event`; compressed StyleSheetRule CSS passes).
Events are changed in place; the list returned holds the events kept.
"""

from __future__ import annotations

from typing import Any

from privacy.scrub.cards import REDACTED, luhn_valid, scrub_text
from privacy.scrub.rules import CompiledRules, MaskRules, compile_rules
from privacy.scrub.scrubber import Scrubber
from privacy.scrub.state import MAX_TRACKED_IDS, ScrubReport, ScrubState

__all__ = [
    "MAX_TRACKED_IDS",
    "REDACTED",
    "CompiledRules",
    "MaskRules",
    "ScrubReport",
    "ScrubState",
    "compile_rules",
    "luhn_valid",
    "scrub_events",
    "scrub_text",
]


def scrub_events(
    events: list[dict[str, Any]], rules: CompiledRules, state: ScrubState
) -> tuple[list[dict[str, Any]], ScrubReport]:
    """Apply `rules` to a batch of plain rrweb events, in place and in order.

    Returns the events kept (the same dicts, changed) and what was done; `state` is
    updated for the next batch of the same replay track.
    """
    scrubber = Scrubber(rules, state)
    scrubber.find_card_inputs(events)
    kept: list[dict[str, Any]] = []
    dropped = 0
    for event in events:
        if not isinstance(event, dict) or scrubber.event(event):
            kept.append(event)
        else:
            dropped += 1
        state.check_size()
    return kept, scrubber.report(dropped)
