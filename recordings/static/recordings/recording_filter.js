/* The recording list's filter: quick filters and an event builder over one
 * filter-language document (docs/filter-language.md), kept in the page's URL as
 * `?filter=<JSON>`.
 *
 * The page writes what this script needs into #replayhub-filter-data (a JSON
 * script element: the admin pages run no inline script). The document is split
 * in two: the top-level conditions the quick filters know (a date range, number
 * ranges, the environment, signals...) and everything else, which the builder
 * shows as a group of conditions. Applying joins them again and reloads the list
 * with the new URL; a condition neither part understands is kept as JSON.
 */
(function () {
  "use strict";

  const dataElement = document.getElementById("replayhub-filter-data");
  const mount = document.getElementById("replayhub-filter-ui");
  if (!dataElement || !mount) {
    return;
  }
  const data = JSON.parse(dataElement.textContent);

  const TEXT_OPS = [
    ["equals", "equals"],
    ["not_equals", "does not equal"],
    ["contains", "contains"],
    ["not_contains", "does not contain"],
    ["starts_with", "starts with"],
  ];
  const PROPERTY_OPS = [
    ["equals", "="],
    ["not_equals", "≠"],
    ["contains", "contains"],
    ["not_contains", "does not contain"],
    ["gt", ">"],
    ["gte", "≥"],
    ["lt", "<"],
    ["lte", "≤"],
    ["is_set", "is set"],
    ["is_not_set", "is not set"],
  ];
  const NUMBER_OPS = ["gt", "gte", "lt", "lte"];
  const NO_VALUE_OPS = ["is_set", "is_not_set"];
  const DATE_PRESETS = [
    ["", "Any time"],
    ["-24h", "Last 24 hours"],
    ["-7d", "Last 7 days"],
    ["-30d", "Last 30 days"],
    ["-90d", "Last 90 days"],
    ["custom", "Between…"],
  ];
  const RELATIVE = /^-\d+[mhdw]$/;
  const CHOICE_TERMS = [
    ["browser", "Browser"],
    ["os", "OS"],
    ["device_type", "Device"],
    ["country", "Country"],
    ["tag", "Tags"],
  ];
  const RANGE_TERMS = [
    ["duration", "Duration"],
    ["active_time", "Active time"],
  ];

  // ---- small DOM helpers ----------------------------------------------------

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(function ([key, value]) {
      if (value === undefined || value === null || value === false) {
        return;
      }
      if (key === "text") {
        node.textContent = value;
      } else if (key === "className") {
        node.className = value;
      } else if (key.startsWith("on")) {
        node.addEventListener(key.slice(2), value);
      } else if (value === true) {
        node.setAttribute(key, "");
      } else {
        node.setAttribute(key, value);
      }
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.append(child);
      }
    });
    return node;
  }

  function select(options, value, attributes) {
    const node = el("select", attributes);
    let found = false;
    options.forEach(function ([optionValue, label]) {
      const option = el("option", { value: optionValue, text: label });
      if (optionValue === value) {
        option.selected = true;
        found = true;
      }
      node.append(option);
    });
    if (!found && value) {
      node.append(el("option", { value: value, text: value, selected: true }));
    }
    return node;
  }

  function numberInput(value, attributes) {
    return el("input", Object.assign(
      { type: "number", step: "any", min: "0", value: value === undefined ? "" : value },
      attributes,
    ));
  }

  function readNumber(input) {
    const text = input.value.trim();
    if (text === "") {
      return undefined;
    }
    const number = Number(text);
    return Number.isFinite(number) ? number : text; // the server says what is wrong
  }

  function onlyKeys(object, allowed) {
    return Object.keys(object).every(function (key) {
      return allowed.includes(key);
    });
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function range(gte, lte) {
    const bounds = {};
    if (gte !== undefined) bounds.gte = gte;
    if (lte !== undefined) bounds.lte = lte;
    return bounds;
  }

  // ---- dates ----------------------------------------------------------------

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  // An ISO date or date-time as the value of a datetime-local input (local time).
  function toLocalInput(text) {
    if (!text) return "";
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) return null;
    return (
      date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes())
    );
  }

  function fromLocalInput(value) {
    if (!value) return undefined;
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return undefined;
    return date.toISOString().replace(/\.000Z$/, "Z");
  }

  // ---- the quick filters ----------------------------------------------------

  // At least one of gte/lte, each a number: what a number input can show.
  function numericBounds(node) {
    const bounds = [node.gte, node.lte].filter((value) => value !== undefined);
    return bounds.length > 0 && bounds.every((value) => typeof value === "number");
  }

  // Which top-level conditions the quick filters show: a shape each knows, once.
  function quickSlot(node, taken) {
    if (!isObject(node)) return null;
    if (isObject(node.not) && onlyKeys(node, ["not"])) {
      const inner = node.not;
      if (inner.term === "playability" && inner.problem === "any" &&
          onlyKeys(inner, ["term", "problem"])) {
        return taken.has("playability") ? null : "playability";
      }
      if (isViewedByMe(inner)) return taken.has("viewed") ? null : "viewed";
      return null;
    }
    let slot = null;
    switch (node.term) {
      case "started":
        if (!onlyKeys(node, ["term", "from", "to"])) return null;
        if (RELATIVE.test(node.from || "") && node.to === undefined) {
          slot = "started";
        } else if (!RELATIVE.test(node.from || "") && !RELATIVE.test(node.to || "") &&
                   toLocalInput(node.from) !== null && toLocalInput(node.to) !== null) {
          slot = "started";
        }
        break;
      case "duration":
      case "active_time":
        if (onlyKeys(node, ["term", "gte", "lte"]) && numericBounds(node)) slot = node.term;
        break;
      case "browser":
      case "os":
      case "device_type":
      case "country":
      case "tag":
        if (onlyKeys(node, ["term", "in"]) && Array.isArray(node.in) && node.in.length &&
            node.in.every((value) => typeof value === "string")) {
          slot = node.term;
        }
        break;
      case "signal":
        if (onlyKeys(node, ["term", "signal", "gte", "lte"]) && numericBounds(node) &&
            data.signals.some(([signal]) => signal === node.signal)) {
          slot = "signal:" + node.signal;
        }
        break;
      case "playability":
        if (onlyKeys(node, ["term", "problem"]) &&
            data.playability.some(([problem]) => problem === node.problem)) {
          slot = "playability";
        }
        break;
      case "legal_hold":
        if (onlyKeys(node, ["term", "value"]) && typeof node.value === "boolean") {
          slot = "legal_hold";
        }
        break;
      case "viewed":
        if (isViewedByMe(node)) slot = "viewed";
        break;
    }
    return slot && !taken.has(slot) ? slot : null;
  }

  function isViewedByMe(node) {
    return isObject(node) && node.term === "viewed" &&
      onlyKeys(node, ["term", "by"]) && (node.by === undefined || node.by === "me");
  }

  // The document's conditions, as {quick: {slot: node}, rest: group model}.
  function split(doc) {
    const quick = {};
    let children = [];
    let op = "all";
    const where = isObject(doc) ? doc.where : undefined;
    if (where === undefined) {
      children = [];
    } else if (isObject(where) && Array.isArray(where.all) && onlyKeys(where, ["all"])) {
      children = where.all;
    } else if (isObject(where) && Array.isArray(where.any) && onlyKeys(where, ["any"])) {
      return { quick: quick, rest: groupModel(where.any, "any", false) };
    } else {
      children = [where];
    }
    const taken = new Set();
    const rest = [];
    children.forEach(function (child) {
      const slot = quickSlot(child, taken);
      if (slot) {
        taken.add(slot);
        quick[slot] = child;
      } else {
        rest.push(child);
      }
    });
    return { quick: quick, rest: groupModel(rest, op, false) };
  }

  function QuickFilters(quick) {
    const inputs = {};
    const box = el("div", { className: "replayhub-quick", id: "replayhub-quick" });

    // When
    const started = quick.started || {};
    let preset = "";
    if (RELATIVE.test(started.from || "")) {
      preset = started.from;
    } else if (started.from || started.to) {
      preset = "custom";
    }
    const presetOptions = DATE_PRESETS.slice();
    if (preset && !presetOptions.some(([value]) => value === preset)) {
      presetOptions.splice(presetOptions.length - 1, 0, [preset, "Since " + preset.slice(1) + " ago"]);
    }
    inputs.when = select(presetOptions, preset, { id: "rf-when", name: "when" });
    inputs.from = el("input", {
      type: "datetime-local", id: "rf-from", value: preset === "custom" ? toLocalInput(started.from) : "",
    });
    inputs.to = el("input", {
      type: "datetime-local", id: "rf-to", value: preset === "custom" ? toLocalInput(started.to) : "",
    });
    const custom = el("span", { className: "replayhub-when-custom" }, [
      el("label", { for: "rf-from", text: "from " }), inputs.from,
      el("label", { for: "rf-to", text: " to " }), inputs.to,
      el("span", { className: "help", text: " (your time zone)" }),
    ]);
    custom.hidden = preset !== "custom";
    inputs.when.addEventListener("change", function () {
      custom.hidden = inputs.when.value !== "custom";
    });
    box.append(field("Started", [inputs.when, custom], "rf-when"));

    // Durations
    RANGE_TERMS.forEach(function ([term, label]) {
      const node = quick[term] || {};
      inputs[term + ":gte"] = numberInput(node.gte, { id: "rf-" + term + "-min", "aria-label": label + " at least (seconds)", placeholder: "min" });
      inputs[term + ":lte"] = numberInput(node.lte, { id: "rf-" + term + "-max", "aria-label": label + " at most (seconds)", placeholder: "max" });
      box.append(field(label, [inputs[term + ":gte"], " – ", inputs[term + ":lte"], " s"], "rf-" + term + "-min"));
    });

    // Errors (the console_errors signal, said simply)
    const errors = quick["signal:console_errors"] || {};
    let errorsValue = "";
    if (errors.gte === 1 && errors.lte === undefined) errorsValue = "yes";
    else if (errors.lte === 0 && errors.gte === undefined) errorsValue = "no";
    else if (errors.gte !== undefined || errors.lte !== undefined) errorsValue = "custom";
    inputs.errors = select(
      [["", "Any"], ["yes", "With console errors"], ["no", "Without console errors"], ["custom", "Counted below"]],
      errorsValue, { id: "rf-errors" },
    );
    box.append(field("Errors", [inputs.errors], "rf-errors"));

    // Plays well
    let playValue = "";
    if (quick.playability) {
      playValue = quick.playability.not ? "ok" : quick.playability.problem;
    }
    inputs.playability = select(
      [["", "Any"], ["ok", "Plays well"]].concat(data.playability), playValue, { id: "rf-playability" },
    );
    box.append(field("Playback", [inputs.playability], "rf-playability"));

    // Legal hold
    let holdValue = "";
    if (quick.legal_hold) holdValue = quick.legal_hold.value ? "yes" : "no";
    inputs.legal_hold = select(
      [["", "Any"], ["yes", "On legal hold"], ["no", "Not on legal hold"]], holdValue, { id: "rf-legal-hold" },
    );
    box.append(field("Legal hold", [inputs.legal_hold], "rf-legal-hold"));

    // Seen by me
    let seenValue = "";
    if (quick.viewed) seenValue = quick.viewed.not ? "no" : "yes";
    inputs.viewed = select(
      [["", "Any"], ["yes", "Seen by me"], ["no", "Not seen by me"]], seenValue, { id: "rf-viewed" },
    );
    box.append(field("Seen", [inputs.viewed], "rf-viewed"));

    // Environment: the values the user's recordings have
    CHOICE_TERMS.forEach(function ([term, label]) {
      const chosen = (quick[term] || {}).in || [];
      const values = (data.choices[term] || []).slice();
      chosen.forEach(function (value) {
        if (!values.includes(value)) values.push(value);
      });
      inputs[term] = [];
      const options = values.map(function (value, index) {
        const id = "rf-" + term + "-" + index;
        const checkbox = el("input", { type: "checkbox", id: id, value: value, checked: chosen.includes(value) });
        inputs[term].push(checkbox);
        return el("label", { for: id, className: "replayhub-choice" }, [checkbox, " " + value]);
      });
      const body = options.length ? options : [el("span", { className: "help", text: "none recorded" })];
      box.append(el("fieldset", { className: "replayhub-choices", "data-term": term }, [el("legend", { text: label })].concat(body)));
    });

    // Signals: a count range each
    const rows = data.signals.map(function ([signal, label]) {
      const node = quick["signal:" + signal] || {};
      inputs["signal:" + signal + ":gte"] = numberInput(node.gte, { step: "1", id: "rf-signal-" + signal + "-min", "aria-label": label + " at least", placeholder: "min" });
      inputs["signal:" + signal + ":lte"] = numberInput(node.lte, { step: "1", id: "rf-signal-" + signal + "-max", "aria-label": label + " at most", placeholder: "max" });
      return el("tr", {}, [
        el("th", { scope: "row", text: label }),
        el("td", {}, [inputs["signal:" + signal + ":gte"]]),
        el("td", {}, [inputs["signal:" + signal + ":lte"]]),
      ]);
    });
    const anySignal = data.signals.some(([signal]) => quick["signal:" + signal]);
    const signals = el("details", { className: "replayhub-signals", id: "rf-signals", open: anySignal }, [
      el("summary", { text: "Signals (counts)" }),
      el("table", {}, [
        el("thead", {}, [el("tr", {}, [el("th", { text: "Signal" }), el("th", { text: "at least" }), el("th", { text: "at most" })])]),
        el("tbody", {}, rows),
      ]),
    ]);
    box.append(signals);

    // "Errors" and the console-errors row are one condition: keep them in step.
    const errorMin = inputs["signal:console_errors:gte"];
    const errorMax = inputs["signal:console_errors:lte"];
    inputs.errors.addEventListener("change", function () {
      if (inputs.errors.value === "yes") {
        errorMin.value = "1";
        errorMax.value = "";
      } else if (inputs.errors.value === "no") {
        errorMin.value = "";
        errorMax.value = "0";
      } else if (inputs.errors.value === "") {
        errorMin.value = "";
        errorMax.value = "";
      } else {
        signals.open = true;
      }
    });
    [errorMin, errorMax].forEach(function (input) {
      input.addEventListener("input", function () {
        const min = errorMin.value.trim();
        const max = errorMax.value.trim();
        if (min === "" && max === "") inputs.errors.value = "";
        else if (min === "1" && max === "") inputs.errors.value = "yes";
        else if (min === "" && max === "0") inputs.errors.value = "no";
        else inputs.errors.value = "custom";
      });
    });

    function conditions() {
      const nodes = [];
      const when = inputs.when.value;
      if (when === "custom") {
        const from = fromLocalInput(inputs.from.value);
        const to = fromLocalInput(inputs.to.value);
        if (from || to) {
          const node = { term: "started" };
          if (from) node.from = from;
          if (to) node.to = to;
          nodes.push(node);
        }
      } else if (when) {
        nodes.push({ term: "started", from: when });
      }
      RANGE_TERMS.forEach(function ([term]) {
        const bounds = range(readNumber(inputs[term + ":gte"]), readNumber(inputs[term + ":lte"]));
        if (Object.keys(bounds).length) nodes.push(Object.assign({ term: term }, bounds));
      });
      CHOICE_TERMS.forEach(function ([term]) {
        const chosen = inputs[term].filter((box) => box.checked).map((box) => box.value);
        if (chosen.length) nodes.push({ term: term, in: chosen });
      });
      data.signals.forEach(function ([signal]) {
        const bounds = range(
          readNumber(inputs["signal:" + signal + ":gte"]), readNumber(inputs["signal:" + signal + ":lte"]),
        );
        if (Object.keys(bounds).length) nodes.push(Object.assign({ term: "signal", signal: signal }, bounds));
      });
      const play = inputs.playability.value;
      if (play === "ok") nodes.push({ not: { term: "playability", problem: "any" } });
      else if (play) nodes.push({ term: "playability", problem: play });
      const hold = inputs.legal_hold.value;
      if (hold) nodes.push({ term: "legal_hold", value: hold === "yes" });
      const seen = inputs.viewed.value;
      if (seen === "yes") nodes.push({ term: "viewed", by: "me" });
      else if (seen === "no") nodes.push({ not: { term: "viewed", by: "me" } });
      return nodes;
    }

    return { element: box, conditions: conditions };
  }

  function field(label, controls, forId) {
    return el("div", { className: "replayhub-field" }, [
      el("label", { for: forId, className: "replayhub-field-label", text: label }),
      el("span", { className: "replayhub-field-controls" }, controls),
    ]);
  }

  // ---- the builder's model --------------------------------------------------

  function groupModel(nodes, op, negate) {
    return { kind: "group", op: op, negate: negate, children: nodes.map(model) };
  }

  function conditionModels(where) {
    if (where === undefined) return [];
    if (!Array.isArray(where)) return null;
    const conditions = [];
    for (const condition of where) {
      if (!isObject(condition) || !onlyKeys(condition, ["key", "op", "value"])) return null;
      conditions.push(valueModel(condition.key, condition.op, condition.value));
    }
    return conditions;
  }

  // A value as the text of an input, remembering that it was not a string.
  function valueModel(key, op, value) {
    const typed = value !== undefined && typeof value !== "string";
    return { key: key || "", op: op || "equals", value: typed ? JSON.stringify(value) : (value || ""), typed: typed };
  }

  function valueOf(condition) {
    if (NO_VALUE_OPS.includes(condition.op)) return undefined;
    if (NUMBER_OPS.includes(condition.op)) {
      const number = Number(condition.value);
      return condition.value.trim() !== "" && Number.isFinite(number) ? number : condition.value;
    }
    if (condition.typed) {
      try {
        return JSON.parse(condition.value);
      } catch (error) {
        return condition.value;
      }
    }
    return condition.value;
  }

  function eventModel(node, negate) {
    const keys = ["term", "name", "where", "count", "followed_by"];
    if (!onlyKeys(node, keys) || typeof node.name !== "string") return null;
    const where = conditionModels(node.where);
    if (where === null) return null;
    const event = {
      kind: "event", negate: negate, name: node.name, where: where,
      count: { gte: undefined, lte: undefined }, follow: null,
    };
    // What the controls could not show as given stays JSON (`count` and
    // `followed_by` together, a bound that is not a number...).
    if (node.count !== undefined && node.followed_by !== undefined) return null;
    if (node.count !== undefined) {
      if (!isObject(node.count) || !onlyKeys(node.count, ["gte", "lte"]) || !numericBounds(node.count)) {
        return null;
      }
      event.count = { gte: node.count.gte, lte: node.count.lte };
    }
    if (node.followed_by !== undefined) {
      const follow = node.followed_by;
      if (!isObject(follow) || !onlyKeys(follow, ["within", "target", "absent"]) || !isObject(follow.target) ||
          typeof follow.within !== "number" || (follow.absent !== undefined && typeof follow.absent !== "boolean")) {
        return null;
      }
      const target = follow.target;
      const followed = { within: follow.within, absent: follow.absent === true, type: "error", event: "", marker: "", where: [] };
      if (target.error === true && onlyKeys(target, ["error"])) {
        followed.type = "error";
      } else if (typeof target.marker === "string" && onlyKeys(target, ["marker"])) {
        followed.type = "marker";
        followed.marker = target.marker;
      } else if (typeof target.event === "string" && onlyKeys(target, ["event", "where"])) {
        followed.type = "event";
        followed.event = target.event;
        followed.where = conditionModels(target.where);
        if (followed.where === null) return null;
      } else {
        return null;
      }
      event.follow = followed;
    }
    return event;
  }

  // A document node as the builder's model; what it cannot edit stays as JSON.
  function model(node) {
    let negate = false;
    let inner = node;
    if (isObject(node) && onlyKeys(node, ["not"]) && isObject(node.not)) {
      negate = true;
      inner = node.not;
    }
    let found = null;
    if (isObject(inner)) {
      if (Array.isArray(inner.all) && onlyKeys(inner, ["all"])) {
        found = groupModel(inner.all, "all", negate);
      } else if (Array.isArray(inner.any) && onlyKeys(inner, ["any"])) {
        found = groupModel(inner.any, "any", negate);
      } else if (inner.term === "event") {
        found = eventModel(inner, negate);
      } else if ((inner.term === "url" || inner.term === "first_url") && onlyKeys(inner, ["term", "op", "value"]) &&
                 typeof inner.value === "string") {
        found = { kind: "text", term: inner.term, negate: negate, op: inner.op, value: inner.value };
      } else if (inner.term === "person" && onlyKeys(inner, ["term", "key", "op", "value"])) {
        found = Object.assign({ kind: "person", negate: negate }, valueModel(inner.key, inner.op, inner.value));
      } else if (inner.term === "feature_flag" && onlyKeys(inner, ["term", "flag", "value"]) &&
                 ["undefined", "string", "boolean"].includes(typeof inner.value)) {
        found = { kind: "flag", negate: negate, flag: inner.flag || "", value: inner.value === undefined ? "" : String(inner.value) };
      } else if ((inner.term === "distinct_id" || inner.term === "session_id") &&
                 onlyKeys(inner, ["term", "in"]) && Array.isArray(inner.in) &&
                 inner.in.every((value) => typeof value === "string" && !/[\n,]/.test(value))) {
        found = { kind: "ids", term: inner.term, negate: negate, values: inner.in.join("\n") };
      }
    }
    return found || { kind: "json", negate: false, text: JSON.stringify(node, null, 2) };
  }

  function negated(node, negate) {
    return negate ? { not: node } : node;
  }

  function conditionNodes(conditions) {
    return conditions.map(function (condition) {
      const node = { key: condition.key, op: condition.op };
      const value = valueOf(condition);
      if (value !== undefined) node.value = value;
      return node;
    });
  }

  // The model as a document node (invalid JSON conditions throw).
  function toNode(item) {
    switch (item.kind) {
      case "group":
        return negated({ [item.op]: item.children.map(toNode) }, item.negate);
      case "event": {
        const node = { term: "event", name: item.name };
        if (item.where.length) node.where = conditionNodes(item.where);
        if (item.follow) {
          const follow = item.follow;
          let target = { error: true };
          if (follow.type === "marker") target = { marker: follow.marker };
          if (follow.type === "event") {
            target = { event: follow.event };
            if (follow.where.length) target.where = conditionNodes(follow.where);
          }
          node.followed_by = { within: follow.within, target: target };
          if (follow.absent) node.followed_by.absent = true;
        } else {
          const bounds = range(item.count.gte, item.count.lte);
          if (Object.keys(bounds).length) node.count = bounds;
        }
        return negated(node, item.negate);
      }
      case "text":
        return negated({ term: item.term, op: item.op, value: item.value }, item.negate);
      case "person": {
        const node = { term: "person", key: item.key, op: item.op };
        const value = valueOf(item);
        if (value !== undefined) node.value = value;
        return negated(node, item.negate);
      }
      case "flag": {
        const node = { term: "feature_flag", flag: item.flag };
        if (item.value !== "") {
          node.value = item.value === "true" ? true : item.value === "false" ? false : item.value;
        }
        return negated(node, item.negate);
      }
      case "ids":
        return negated({
          term: item.term,
          in: item.values.split(/[\n,]/).map((value) => value.trim()).filter(Boolean),
        }, item.negate);
      case "json":
        return negated(JSON.parse(item.text), item.negate);
    }
    throw new Error("unknown condition " + item.kind);
  }

  // ---- the builder's view ---------------------------------------------------

  const eventNames = { list: null, waiting: [], keys: {} };

  function loadEventNames() {
    if (eventNames.list !== null || eventNames.loading) return;
    eventNames.loading = true;
    fetch(data.event_names_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((answer) => (answer.ok ? answer.json() : { names: [] }))
      .catch(() => ({ names: [] }))
      .then(function (body) {
        eventNames.list = body.names || [];
        eventNames.waiting.splice(0).forEach((fill) => fill());
      });
  }

  function propertyKeys(name, datalist) {
    if (!name) return;
    if (!eventNames.keys[name]) {
      const url = data.event_names_url + "?name=" + encodeURIComponent(name);
      eventNames.keys[name] = fetch(url, { credentials: "same-origin" })
        .then((answer) => (answer.ok ? answer.json() : { keys: [] }))
        .then((body) => body.keys || [])
        .catch(() => []);
    }
    eventNames.keys[name].then(function (keys) {
      datalist.replaceChildren(...keys.map((key) => el("option", { value: key })));
    });
  }

  // A select of the event names seen, filled once they are loaded.
  function eventSelect(value, onChange, attributes) {
    const node = el("select", Object.assign({ className: "replayhub-event-name" }, attributes));
    function fill() {
      const names = (eventNames.list || []).slice();
      if (value && !names.includes(value)) names.unshift(value);
      const options = [el("option", { value: "", text: eventNames.list === null ? "loading event names…" : "pick an event" })];
      names.forEach(function (name) {
        options.push(el("option", { value: name, text: name, selected: name === value }));
      });
      node.replaceChildren(...options);
      node.value = value || "";
    }
    fill();
    if (eventNames.list === null) {
      eventNames.waiting.push(fill);
      loadEventNames();
    }
    node.addEventListener("change", function () {
      value = node.value;
      onChange(value);
    });
    return node;
  }

  let uid = 0;
  function nextId(prefix) {
    uid += 1;
    return prefix + "-" + uid;
  }

  function Builder(rootModel, changed) {
    const element = el("div", { className: "replayhub-builder", id: "replayhub-builder" });

    function render() {
      element.replaceChildren(renderGroup(rootModel, null, true));
      changed();
    }

    function removeButton(parent, item) {
      return el("button", {
        type: "button", className: "replayhub-remove", title: "Remove this condition",
        "aria-label": "Remove this condition", text: "×",
        onclick: function () {
          parent.children.splice(parent.children.indexOf(item), 1);
          render();
        },
      });
    }

    function negateSelect(item, labels) {
      return select([["", labels[0]], ["not", labels[1]]], item.negate ? "not" : "", {
        className: "replayhub-negate",
        onchange: function (event) {
          item.negate = event.target.value === "not";
          changed();
        },
      });
    }

    function input(item, key, attributes) {
      return el("input", Object.assign({
        type: "text", value: item[key] === undefined ? "" : item[key],
        oninput: function (event) {
          item[key] = event.target.value;
          changed();
        },
      }, attributes));
    }

    function renderConditions(conditions, eventName, className) {
      const list = el("div", { className: className || "replayhub-conditions" });
      const datalistId = nextId("rf-keys");
      const datalist = el("datalist", { id: datalistId });
      propertyKeys(eventName, datalist);
      conditions.forEach(function (condition) {
        const value = input(condition, "value", { className: "replayhub-condition-value", "aria-label": "value", placeholder: "value" });
        value.hidden = NO_VALUE_OPS.includes(condition.op);
        list.append(el("div", { className: "replayhub-condition" }, [
          el("span", { className: "replayhub-where", text: "where" }),
          input(condition, "key", { className: "replayhub-condition-key", list: datalistId, "aria-label": "property", placeholder: "property" }),
          select(PROPERTY_OPS, condition.op, {
            className: "replayhub-condition-op", "aria-label": "operator",
            onchange: function (event) {
              condition.op = event.target.value;
              value.hidden = NO_VALUE_OPS.includes(condition.op);
              changed();
            },
          }),
          value,
          el("button", {
            type: "button", className: "replayhub-remove", text: "×", title: "Remove this property condition",
            "aria-label": "Remove this property condition",
            onclick: function () {
              conditions.splice(conditions.indexOf(condition), 1);
              render();
            },
          }),
        ]));
      });
      list.append(datalist);
      list.append(el("button", {
        type: "button", className: "button replayhub-add-condition", text: "+ property",
        onclick: function () {
          conditions.push(valueModel("", "equals", ""));
          render();
        },
      }));
      return list;
    }

    function renderFollow(item) {
      const follow = item.follow;
      const box = el("div", { className: "replayhub-follow" });
      const mode = follow ? (follow.absent ? "absent" : "followed") : "";
      box.append(select([["", "—"], ["followed", "followed by"], ["absent", "not followed by"]], mode, {
        className: "replayhub-follow-mode", "aria-label": "followed by",
        onchange: function (event) {
          const value = event.target.value;
          if (!value) {
            item.follow = null;
          } else {
            item.follow = item.follow || { within: 30, type: "error", event: "", marker: "", where: [], absent: false };
            item.follow.absent = value === "absent";
          }
          render();
        },
      }));
      if (!follow) return box;
      box.append(select([["error", "an error"], ["event", "the event"], ["marker", "a marker"]], follow.type, {
        className: "replayhub-follow-target", "aria-label": "followed by what",
        onchange: function (event) {
          follow.type = event.target.value;
          render();
        },
      }));
      if (follow.type === "event") {
        box.append(eventSelect(follow.event, function (name) {
          follow.event = name;
          render();
        }, { "aria-label": "followed by the event" }));
      } else if (follow.type === "marker") {
        box.append(select([["", "pick a kind"]].concat(data.marker_kinds), follow.marker, {
          className: "replayhub-follow-marker", "aria-label": "marker kind",
          onchange: function (event) {
            follow.marker = event.target.value;
            changed();
          },
        }));
      }
      const within = numberInput(follow.within, {
        className: "replayhub-follow-within", "aria-label": "within seconds", min: "0",
        oninput: function (event) {
          follow.within = readNumber(event.target);
          changed();
        },
      });
      box.append(" within ", within, " s");
      if (follow.type === "event") {
        box.append(renderConditions(follow.where, follow.event, "replayhub-conditions replayhub-follow-conditions"));
      }
      return box;
    }

    function renderEvent(item, parent) {
      const row = el("div", { className: "replayhub-node replayhub-event" });
      const count = el("span", { className: "replayhub-count" }, [
        " ",
        numberInput(item.count.gte, { step: "1", className: "replayhub-count-min", "aria-label": "at least this many times", placeholder: "min",
          oninput: function (event) { item.count.gte = readNumber(event.target); changed(); } }),
        " – ",
        numberInput(item.count.lte, { step: "1", className: "replayhub-count-max", "aria-label": "at most this many times", placeholder: "max",
          oninput: function (event) { item.count.lte = readNumber(event.target); changed(); } }),
        " times",
      ]);
      count.hidden = Boolean(item.follow); // `count` and `followed_by` do not combine
      row.append(el("div", { className: "replayhub-node-head" }, [
        negateSelect(item, ["did", "did not do"]),
        " ",
        eventSelect(item.name, function (name) {
          item.name = name;
          render();
        }, { "aria-label": "event" }),
        count,
        removeButton(parent, item),
      ]));
      row.append(renderConditions(item.where, item.name));
      row.append(renderFollow(item));
      return row;
    }

    function renderSimple(item, parent) {
      const row = el("div", { className: "replayhub-node replayhub-" + item.kind });
      const head = el("div", { className: "replayhub-node-head" });
      row.append(head);
      if (item.kind === "text") {
        head.append(
          negateSelect(item, ["", "not:"]),
          select([["url", "a page URL"], ["first_url", "the first URL"]], item.term, {
            className: "replayhub-url-term", onchange: function (event) { item.term = event.target.value; changed(); },
          }),
          " ",
          select(TEXT_OPS, item.op, { className: "replayhub-text-op", onchange: function (event) { item.op = event.target.value; changed(); } }),
          " ",
          input(item, "value", { className: "replayhub-text-value", "aria-label": "URL", placeholder: "https://…" }),
        );
      } else if (item.kind === "person") {
        const value = input(item, "value", { "aria-label": "value", placeholder: "value" });
        value.hidden = NO_VALUE_OPS.includes(item.op);
        head.append(
          negateSelect(item, ["", "not:"]),
          " person property ",
          input(item, "key", { "aria-label": "person property", placeholder: "property" }),
          select(PROPERTY_OPS, item.op, {
            onchange: function (event) {
              item.op = event.target.value;
              value.hidden = NO_VALUE_OPS.includes(item.op);
              changed();
            },
          }),
          value,
        );
      } else if (item.kind === "flag") {
        head.append(
          negateSelect(item, ["", "not:"]),
          " feature flag ",
          input(item, "flag", { "aria-label": "feature flag", placeholder: "flag key" }),
          " = ",
          input(item, "value", { "aria-label": "flag value", placeholder: "any value" }),
        );
      } else if (item.kind === "ids") {
        head.append(
          negateSelect(item, ["", "not:"]),
          select([["distinct_id", "people (distinct ids)"], ["session_id", "sessions (session ids)"]], item.term, {
            onchange: function (event) { item.term = event.target.value; changed(); },
          }),
          " ",
          el("textarea", {
            rows: "2", "aria-label": "ids, one a line", placeholder: "one a line",
            oninput: function (event) { item.values = event.target.value; changed(); },
          }, [item.values]),
        );
      } else {
        const text = el("textarea", {
          className: "replayhub-json-node", rows: "3", "aria-label": "condition as JSON",
          oninput: function (event) { item.text = event.target.value; changed(); },
        }, [item.text]);
        head.append(el("span", { text: "JSON " }), text);
      }
      head.append(removeButton(parent, item));
      return row;
    }

    function renderGroup(item, parent, isRoot) {
      const box = el("div", { className: "replayhub-node replayhub-group" + (isRoot ? " replayhub-root" : "") });
      const head = el("div", { className: "replayhub-node-head" });
      if (!isRoot) head.append(negateSelect(item, ["", "not:"]), " ");
      head.append(
        "Match ",
        select([["all", "all"], ["any", "any"]], item.op, {
          className: "replayhub-group-op", "aria-label": "match all or any",
          onchange: function (event) { item.op = event.target.value; changed(); },
        }),
        " of these:",
      );
      if (!isRoot) head.append(removeButton(parent, item));
      box.append(head);
      const children = el("div", { className: "replayhub-children" });
      item.children.forEach(function (child) {
        if (child.kind === "group") children.append(renderGroup(child, item, false));
        else if (child.kind === "event") children.append(renderEvent(child, item));
        else children.append(renderSimple(child, item));
      });
      if (!item.children.length) {
        children.append(el("p", { className: "help", text: isRoot ? "No conditions yet." : "No conditions yet: an empty “any” group matches nothing." }));
      }
      box.append(children);
      const add = (label, make, cls) => el("button", {
        type: "button", className: "button " + cls, text: label,
        onclick: function () {
          item.children.push(make());
          render();
        },
      });
      box.append(el("div", { className: "replayhub-add" }, [
        add("+ event", () => ({ kind: "event", negate: false, name: "", where: [], count: {}, follow: null }), "replayhub-add-event"),
        add("+ page URL", () => ({ kind: "text", term: "url", negate: false, op: "contains", value: "" }), "replayhub-add-url"),
        add("+ person property", () => ({ kind: "person", negate: false, key: "", op: "equals", value: "", typed: false }), "replayhub-add-person"),
        add("+ feature flag", () => ({ kind: "flag", negate: false, flag: "", value: "" }), "replayhub-add-flag"),
        add("+ people or sessions", () => ({ kind: "ids", term: "distinct_id", negate: false, values: "" }), "replayhub-add-ids"),
        add("+ group", () => groupModel([], "any", false), "replayhub-add-group"),
        add("+ JSON", () => ({ kind: "json", negate: false, text: "{\"term\": \"\"}" }), "replayhub-add-json"),
      ]));
      return box;
    }

    render();
    return { element: element, root: rootModel };
  }

  // ---- the whole ------------------------------------------------------------

  const given = isObject(data.document) ? data.document : { version: 1 };
  const parts = split(given);
  const jsonText = document.getElementById("replayhub-filter-json-text");
  const copy = document.getElementById("replayhub-filter-copy");
  const problem = el("p", { className: "replayhub-filter-local-problem errornote", hidden: true });
  const pending = el("span", { className: "replayhub-pending", text: "Not applied yet", hidden: true });
  const order = select(data.orders, typeof given.order === "string" ? given.order : "newest", { id: "rf-order" });

  // The document as the controls say; throws when a JSON condition is not JSON.
  function compose() {
    const doc = { version: 1 };
    const conditions = quick.conditions();
    const rest = builder.root;
    if (rest.children.length) {
      const restNode = toNode(rest);
      if (rest.op === "all" && !rest.negate) conditions.push(...restNode.all);
      else conditions.push(restNode);
    }
    if (conditions.length) doc.where = { all: conditions };
    if (order.value !== "newest") doc.order = order.value;
    return doc;
  }

  let current = null;
  function changed() {
    if (!quick || !builder) return;
    try {
      current = compose();
      problem.hidden = true;
      jsonText.value = JSON.stringify(current, null, 2);
    } catch (error) {
      current = null;
      problem.textContent = "A JSON condition is not valid JSON: " + error.message;
      problem.hidden = false;
    }
    apply.disabled = current === null;
    if (baseline === undefined && current !== null) baseline = JSON.stringify(current);
    pending.hidden = current === null || JSON.stringify(current) === baseline;
  }

  let quick = null;
  let builder = null;
  let baseline; // the document as the page loaded it, read by the controls

  function navigate(doc) {
    const params = new URLSearchParams(window.location.search);
    const empty = doc === null || (doc.where === undefined && doc.order === undefined);
    if (empty) params.delete(data.param);
    else params.set(data.param, JSON.stringify(doc));
    params.delete("p");
    params.delete("e");
    if (doc === null || (doc.order || "newest") !== (given.order || "newest")) params.delete("o");
    const query = params.toString();
    window.location.assign(window.location.pathname + (query ? "?" + query : ""));
  }

  const apply = el("button", {
    type: "button", className: "button default", id: "replayhub-filter-apply", text: "Apply filter",
    onclick: function () {
      changed();
      if (current !== null) navigate(current);
    },
  });
  const clear = el("button", {
    type: "button", className: "button", id: "replayhub-filter-clear", text: "Clear",
    onclick: function () { navigate(null); },
  });

  const form = el("form", {
    className: "replayhub-filter-form", id: "replayhub-filter-form",
    onsubmit: function (event) {
      event.preventDefault();
      apply.click();
    },
  });
  quick = QuickFilters(parts.quick);
  const advancedOpen = parts.rest.children.length > 0;
  const advanced = el("details", { className: "replayhub-advanced", id: "replayhub-advanced", open: advancedOpen }, [
    el("summary", { text: "Advanced: events, URLs, people, groups" }),
  ]);
  builder = Builder(parts.rest, changed);
  advanced.append(builder.element);
  form.append(
    quick.element,
    advanced,
    problem,
    el("div", { className: "replayhub-filter-buttons" }, [
      el("label", { for: "rf-order", text: "Sort " }), order, " ", apply, " ", clear, " ", pending,
    ]),
  );
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  mount.append(form);
  changed();
  if (!data.raw || !data.valid) {
    // A filter that was not applied shows as given, not as the controls read it.
    jsonText.value = data.raw ? data.raw : jsonText.value;
  }

  if (copy) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      const text = jsonText.value;
      const done = () => { copy.textContent = "Copied"; setTimeout(() => { copy.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {
          jsonText.select();
          document.execCommand("copy");
          done();
        });
      } else {
        jsonText.select();
        document.execCommand("copy");
        done();
      }
    });
  }
})();
