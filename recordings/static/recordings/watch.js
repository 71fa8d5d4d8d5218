// The player: every window (tab) of a recording on one timeline.
//
// Data: a timeline document (recordings/playback/timeline.py) and, per window, segments of
// rrweb events. The timeline is in the page (#replayhub-timeline); in the admin the
// segments come from the server, in the offline export they are inlined too (one
// <script type="application/json"> per segment, its url "#<element id>").
//
// Playback: one global clock over [recording start, end] and one rrweb Replayer
// per window, only the active window's shown and running. The active window at a
// moment is the one with the most recent person's input (mouse, clicks and focus,
// scroll, resize, typing, touch, media, drag) or arrival on a page (a Meta event
// with a new URL) at or before it; before any, the window that started first.
// Other events do not count: a tab in the background keeps sending page changes
// (timers, animations) and periodic full snapshots while unseen, and the tab being
// left sends a blur as the person leaves it.
(function () {
  "use strict";

  const LEAD_MS = 2000; // a marker seeks this long before its moment
  const JUMP_MS = 5000; // the arrow keys
  const SPEEDS = [1, 2, 4, 8];
  const IDLE_MS = 5000; // no input this long: an inactive stretch
  const KEEP_MS = 1000; // skipping keeps this much input-free time either side
  const DRIFT_MS = 1000; // the shown window is re-seeked when this far off the clock
  const SLICE_MS = 40; // appending events yields to the page this often
  const INPUT_SOURCES = [1, 2, 3, 4, 5, 6, 7, 12];

  const hooks = {
    firstFrameAt: null,
    loadedAt: null,
    currentTime: function () { return clock.now(); },
    activeWindow: function () { return active >= 0 ? windows[active].id : null; },
    seek: function (ms) { seek(ms); },
    play: function () { play(); },
    pause: function () { pause(); },
  };
  window.replayhubPlayer = hooks;

  const $ = function (id) { return document.getElementById(id); };
  const status = $("player-status");
  const stage = $("replayhub-stage");
  let origin = 0;
  let duration = 0;
  let windows = [];
  let active = -1;
  let inputs = []; // [epoch ms, window index], in time order
  let inactive = []; // [from, to] in ms from the start
  let marks = []; // [{at, kind, text}] on the bar
  const rows = { events: [], console: [], network: [] };
  let speed = 1;
  let skip = true;
  let ticking = false;

  // -- the segments ---------------------------------------------------------

  // A segment's body is a whole JSON array of events or a fragment of one: strip
  // one leading "[" or "," and one trailing "]", then parse what is left as an array.
  function parseSegment(text) {
    let start = 0;
    let end = text.length;
    while (start < end && /\s/.test(text[start])) { start++; }
    if (text[start] === "[" || text[start] === ",") { start++; }
    while (end > start && /\s/.test(text[end - 1])) { end--; }
    if (end > start && text[end - 1] === "]") { end--; }
    return JSON.parse("[" + text.slice(start, end) + "]");
  }

  // The timeline is in the page; a segment is in the page too (offline: "#id")
  // or fetched from the server.
  function dataSource() {
    const inline = $("replayhub-timeline");
    return {
      timeline: function () { return Promise.resolve(JSON.parse(inline.textContent)); },
      segment: function (url) {
        return url.startsWith("#") ? Promise.resolve($(url.slice(1)).textContent) : fetchText(url);
      },
    };
  }

  function fetchText(url) {
    const options = { credentials: "same-origin", headers: { Accept: "application/json" } };
    return fetch(url, options).then(function (response) {
      if (!response.ok) { throw new Error("the server answered " + response.status); }
      return response.text();
    });
  }

  function breathe() {
    return new Promise(function (resolve) { setTimeout(resolve, 0); });
  }

  // -- the clock --------------------------------------------------------------

  const clock = {
    playing: false,
    at: 0, // ms from the start when last set
    wall: 0, // performance.now() then
    now: function () {
      if (!this.playing) { return this.at; }
      return Math.min(duration, this.at + (performance.now() - this.wall) * speed);
    },
    set: function (ms) {
      this.at = Math.max(0, Math.min(duration, ms));
      this.wall = performance.now();
    },
  };

  function seek(ms) {
    clock.set(ms);
    show(clock.at, true);
    render(clock.at);
  }

  function play() {
    if (clock.now() >= duration) { clock.set(0); }
    clock.set(clock.now());
    clock.playing = true;
    show(clock.at, true);
    $("replayhub-play").textContent = "Pause";
    if (!ticking) { ticking = true; requestAnimationFrame(tick); }
  }

  function pause() {
    clock.set(clock.now());
    clock.playing = false;
    show(clock.at, true);
    $("replayhub-play").textContent = "Play";
    render(clock.at);
  }

  function setSpeed(value) {
    clock.set(clock.now());
    speed = value;
    windows.forEach(function (win) {
      if (win.replayer) { win.replayer.setConfig({ speed: value }); }
    });
    document.querySelectorAll(".replayhub-speed").forEach(function (button) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.speed) === value));
    });
    show(clock.at, true);
  }

  function tick() {
    if (!clock.playing) { ticking = false; return; }
    let t = clock.now();
    const stretch = skip ? stretchAt(t) : null;
    if (stretch) {
      clock.set(stretch[1]);
      t = clock.at;
      show(t, true);
    }
    if (t >= duration) {
      pause();
      ticking = false;
      return;
    }
    show(t, false);
    render(t);
    requestAnimationFrame(tick);
  }

  function stretchAt(t) {
    return inactive.find(function (s) { return s[0] <= t && t < s[1]; }) || null;
  }

  // -- windows and their replayers ---------------------------------------------

  function activeAt(t) {
    const ms = origin + t;
    let lo = 0;
    let hi = inputs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (inputs[mid][0] <= ms) { lo = mid + 1; } else { hi = mid; }
    }
    for (let i = lo - 1; i >= 0; i--) {
      if (windows[inputs[i][1]].replayer) { return inputs[i][1]; }
    }
    return windows.findIndex(function (win) { return win.replayer; });
  }

  // Show the window active at t; with `force` (a seek, play, pause), put its
  // replayer at t even if it was showing already.
  function show(t, force) {
    const next = activeAt(t);
    if (next !== active) {
      windows.forEach(function (win, index) {
        win.screen.hidden = index !== next;
        if (index !== next && win.running) { win.replayer.pause(); win.running = false; }
      });
      active = next;
      force = true;
    }
    if (active < 0) { return; }
    const win = windows[active];
    const offset = origin + t - win.replayer.getMetaData().startTime;
    const total = win.replayer.getMetaData().totalTime;
    const inside = offset >= 0 && offset < total;
    const off = win.running && inside && Math.abs(win.replayer.getCurrentTime() - offset) > DRIFT_MS;
    const late = clock.playing && !win.running && inside;
    if (force || off || late) { sync(win, offset, total); }
  }

  function sync(win, offset, total) {
    // rrweb applies at once only the events strictly before the moment: one past
    // the end, so that paused there the last event shows too.
    const at = offset >= total ? total + 1 : Math.max(0, offset);
    if (clock.playing && offset >= 0 && offset < total) {
      win.replayer.play(at);
      win.running = true;
    } else {
      win.replayer.pause(at);
      win.running = false;
    }
  }

  function makeReplayer(win, events) {
    win.replayer = new rrweb.Replayer(events, {
      root: win.screen,
      speed: speed,
      skipInactive: false,
      showWarning: false,
      mouseTail: false,
      triggerFocus: false,
      // rrweb replays canvas drawing only in an iframe that may run scripts: on
      // only where there is canvas data. The page's Content Security Policy (the
      // iframe inherits it) still lets no recorded script run.
      UNSAFE_replayCanvas: drawsOnCanvas(events),
    });
    win.replayer.on("resize", function (size) { win.size = size; fit(win); });
  }

  function fit(win) {
    if (!win.size || !win.replayer) { return; }
    const scale = Math.min(stage.clientWidth / win.size.width, stage.clientHeight / win.size.height) || 1;
    const wrapper = win.replayer.wrapper;
    wrapper.style.transform = "scale(" + scale + ")";
    wrapper.style.left = Math.max(0, (stage.clientWidth - win.size.width * scale) / 2) + "px";
  }

  // Does the recording draw on a <canvas>: a CanvasMutation (incremental source 9),
  // or a canvas whose picture rrweb took as `rr_dataURL` in a snapshot or an add?
  function drawsOnCanvas(events) {
    return events.some(function (event) {
      const data = event.data || {};
      if (event.type === 2) { return hasCanvasPicture(data.node); }
      if (event.type === 3 && data.source === 9) { return true; }
      return event.type === 3 && data.source === 0 && (data.adds || []).some(function (add) {
        return hasCanvasPicture(add && add.node);
      });
    });
  }

  function hasCanvasPicture(root) {
    const stack = root ? [root] : [];
    while (stack.length) {
      const node = stack.pop();
      if (node.tagName === "canvas" && node.attributes && node.attributes.rr_dataURL) { return true; }
      (node.childNodes || []).forEach(function (child) { stack.push(child); });
    }
    return false;
  }

  // -- loading ------------------------------------------------------------------

  async function load(source) {
    const timeline = await source.timeline();
    setUp(timeline);
    for (const win of windows) {
      await loadSegment(source, win, win.info.segments[0]);
    }
    for (const win of windows) {
      for (const segment of win.info.segments.slice(1)) {
        await loadSegment(source, win, segment);
      }
    }
    hooks.loadedAt = performance.now();
    const count = windows.reduce(function (sum, win) { return sum + win.count; }, 0);
    if (!windows.some(function (win) { return win.replayer; })) {
      fail("This recording has too few events to replay (" + count + ").");
      return;
    }
    status.textContent = count + " events";
  }

  async function loadSegment(source, win, segment) {
    if (!segment) { return; }
    const text = await source.segment(segment.url);
    await breathe();
    const events = parseSegment(text);
    win.count += events.length;
    learn(win, events);
    if (win.replayer) {
      await append(win, events);
    } else {
      win.waiting = win.waiting.concat(events);
      if (win.waiting.length >= 2) {
        makeReplayer(win, win.waiting);
        win.waiting = [];
        firstFrame();
      }
    }
    refresh();
    await breathe();
  }

  async function append(win, events) {
    let since = performance.now();
    for (const event of events) {
      win.replayer.addEvent(event);
      if (performance.now() - since > SLICE_MS) {
        await breathe();
        since = performance.now();
      }
    }
  }

  function firstFrame() {
    show(clock.now(), true);
    if (hooks.firstFrameAt === null) {
      hooks.firstFrameAt = performance.now();
      if (startMs === null) { play(); } else { render(clock.at); }
    }
  }

  // What the player learns from a window's events: where input was (the active
  // window, inactive stretches), its pages, its console and network rows.
  function learn(win, events) {
    const index = windows.indexOf(win);
    events.forEach(function (event) {
      const data = event.data || {};
      const blur = data.source === 2 && data.type === 6;
      const input = event.type === 3 && INPUT_SOURCES.indexOf(data.source) >= 0 && !blur;
      const arrival = event.type === 4 && data.href !== win.href;
      if (input || arrival) { inputs.push([event.timestamp, index]); }
      if (arrival) {
        win.href = data.href;
        win.pages.push([event.timestamp, data.href]);
      }
      if (event.type === 6 && data.plugin === "rrweb/console@1") { consoleRow(event, win); }
      if (event.type === 6 && data.plugin === "rrweb/network@1") { networkRows(event, win); }
    });
  }

  function consoleRow(event, win) {
    const payload = event.data.payload || {};
    const args = (payload.payload || []).map(function (arg) {
      try { const value = JSON.parse(arg); return typeof value === "string" ? value : arg; } catch (e) { return arg; }
    });
    const level = payload.level || "log";
    rows.console.push({ at: event.timestamp, text: level + ": " + args.join(" ") + tabOf(win.id), kind: level });
  }

  function networkRows(event, win) {
    ((event.data.payload || {}).requests || []).forEach(function (request) {
      const status = request.responseStatus || request.status || "";
      const method = request.method || (request.initiatorType === "navigation" ? "GET" : request.initiatorType || "");
      const took = typeof request.duration === "number" ? Math.round(request.duration) + " ms" : "";
      rows.network.push({
        at: request.timestamp || event.timestamp,
        text: [method, request.name || "", status, took].join(" ") + tabOf(win.id),
        kind: status >= 400 ? "failed" : "ok",
      });
    });
  }

  function refresh() {
    inputs.sort(function (a, b) { return a[0] - b[0]; });
    windows.forEach(function (win) { win.pages.sort(function (a, b) { return a[0] - b[0]; }); });
    inactive = stretches();
    drawIdle();
    drawPanel("console");
    drawPanel("network");
    show(clock.now(), false);
  }

  // No input for IDLE_MS or more, less KEEP_MS either side; the start and end count.
  function stretches() {
    const found = [];
    let last = 0;
    inputs.concat([[origin + duration + KEEP_MS, -1]]).forEach(function (input) {
      const t = input[0] - origin;
      if (t - last > IDLE_MS) { found.push([last === 0 ? 0 : last + KEEP_MS, t - KEEP_MS]); }
      last = Math.max(last, t);
    });
    return found;
  }

  // -- the page -----------------------------------------------------------------

  function setUp(timeline) {
    origin = timeline.recording.started_ms;
    duration = Math.max(1, timeline.recording.duration_ms);
    inactive = timeline.inactive.map(function (s) { return [s[0] - origin, s[1] - origin]; });
    windows = timeline.windows.map(function (info) {
      const screen = document.createElement("div");
      screen.className = "replayhub-screen";
      screen.dataset.window = info.id;
      screen.hidden = true;
      stage.appendChild(screen);
      return { id: info.id, info: info, screen: screen, replayer: null, running: false, waiting: [], pages: [], href: null, count: 0, size: null };
    });
    const label = function (kind) { return kind.replace(/_/g, " "); };
    marks = timeline.markers.map(function (m) {
      const text = (m.kind_label || label(m.kind)) + (m.label ? ": " + m.label : "");
      return { at: m.at_ms, kind: m.kind, text: text + tabOf(m.window_id) };
    }).concat(timeline.comments.map(function (c) {
      return { at: c.at_ms, kind: "comment", text: "comment by " + c.author + ": " + c.text };
    }));
    rows.events = timeline.events.map(function (e) {
      return { at: e.at_ms, text: e.name + (e.url ? " " + e.url : "") + tabOf(e.window_id), kind: "event" };
    });
    drawTicks();
    drawLanes();
    drawIdle();
    drawPanel("events");
    drawCard("replayhub-person-facts", personFacts(timeline.person));
    drawCard("replayhub-environment-facts", timeline.environment || {});
    if (startMs !== null) { clock.set(startMs); }
    render(clock.at);
  }

  // " (tab 2)" after what happened in a window, when there are several.
  function tabOf(windowId) {
    const win = windows.find(function (w) { return w.id === windowId; });
    return win && windows.length > 1 ? " (tab " + win.info.number + ")" : "";
  }

  function percent(ms) {
    return Math.max(0, Math.min(100, (ms / duration) * 100)) + "%";
  }

  function drawTicks() {
    const ticks = $("replayhub-ticks");
    ticks.textContent = "";
    marks.forEach(function (mark) {
      const tick = document.createElement("button");
      tick.type = "button";
      tick.className = "replayhub-tick replayhub-tick-" + mark.kind;
      tick.style.left = percent(mark.at - origin);
      tick.title = clockText(mark.at - origin) + " " + mark.text;
      tick.dataset.at = String(mark.at - origin);
      tick.setAttribute("aria-label", tick.title);
      tick.addEventListener("click", function (event) {
        event.stopPropagation();
        seek(mark.at - origin - LEAD_MS);
      });
      ticks.appendChild(tick);
    });
  }

  function drawLanes() {
    const lanes = $("replayhub-lanes");
    lanes.textContent = "";
    windows.forEach(function (win) {
      const lane = document.createElement("div");
      lane.className = "replayhub-lane";
      const span = document.createElement("div");
      span.className = "replayhub-lane-span";
      span.style.left = percent(win.info.first_ms - origin);
      span.style.width = "calc(" + percent(win.info.last_ms - win.info.first_ms) + " + 2px)";
      span.textContent = "Tab " + win.info.number;
      span.title = "Tab " + win.info.number + " (" + win.id + ")";
      lane.appendChild(span);
      lanes.appendChild(lane);
      win.lane = lane;
    });
  }

  function drawIdle() {
    const layer = $("replayhub-idle");
    layer.textContent = "";
    inactive.forEach(function (s) {
      const shade = document.createElement("div");
      shade.className = "replayhub-idle";
      shade.style.left = percent(s[0]);
      shade.style.width = percent(s[1] - s[0]);
      shade.title = "inactive " + clockText(s[0]) + "–" + clockText(s[1]);
      layer.appendChild(shade);
    });
  }

  function drawPanel(name) {
    const list = $("replayhub-panel-" + name);
    rows[name].sort(function (a, b) { return a.at - b.at; });
    list.textContent = "";
    rows[name].forEach(function (row) {
      const item = document.createElement("li");
      item.className = "replayhub-row replayhub-row-" + row.kind;
      item.dataset.at = String(row.at - origin);
      const at = document.createElement("span");
      at.className = "replayhub-row-at";
      at.textContent = clockText(row.at - origin);
      const text = document.createElement("span");
      text.className = "replayhub-row-text";
      text.textContent = row.text;
      item.append(at, text);
      item.addEventListener("click", function () { seek(row.at - origin); });
      list.appendChild(item);
    });
    list.current = -1;
    filterRows();
  }

  function personFacts(person) {
    if (!person) { return { person: "anonymous" }; }
    const facts = { "distinct id": person.distinct_id };
    Object.keys(person.properties || {}).forEach(function (key) { facts[key] = person.properties[key]; });
    facts.recordings = person.recordings_url ? { href: person.recordings_url, text: "other recordings of this person" } : null;
    return facts;
  }

  function drawCard(listId, facts) {
    const list = $(listId);
    list.textContent = "";
    Object.keys(facts).forEach(function (key) {
      if (!facts[key]) { return; }
      const term = document.createElement("dt");
      term.textContent = key;
      const value = document.createElement("dd");
      if (typeof facts[key] === "object") {
        const link = document.createElement("a");
        link.href = facts[key].href;
        link.textContent = facts[key].text;
        value.appendChild(link);
      } else {
        value.textContent = facts[key];
      }
      list.append(term, value);
    });
  }

  function render(t) {
    $("replayhub-progress").style.width = percent(t);
    $("replayhub-time").textContent = clockText(t) + " / " + clockText(duration);
    const win = active >= 0 ? windows[active] : null;
    $("replayhub-tab").textContent = win ? "Tab " + win.info.number + " of " + windows.length : "Tab – of " + windows.length;
    $("replayhub-tab").dataset.window = win ? win.id : "";
    $("replayhub-tab-url").textContent = win ? pageAt(win, origin + t) : "";
    windows.forEach(function (w) {
      if (w.lane) { w.lane.classList.toggle("replayhub-lane-active", w === win); }
    });
    ["events", "console", "network"].forEach(function (name) { highlight(name, origin + t); });
  }

  function pageAt(win, ms) {
    let href = "";
    win.pages.forEach(function (page) { if (page[0] <= ms) { href = page[1]; } });
    return href;
  }

  // The panel's current row: the last one at or before the moment.
  function highlight(name, ms) {
    const list = $("replayhub-panel-" + name);
    const all = rows[name];
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (all[mid].at <= ms) { lo = mid + 1; } else { hi = mid; }
    }
    const index = lo - 1;
    if (index === list.current) { return; }
    const items = list.children;
    if (list.current >= 0 && items[list.current]) { items[list.current].classList.remove("replayhub-row-current"); }
    list.current = index;
    if (index >= 0 && items[index]) {
      items[index].classList.add("replayhub-row-current");
      if (!list.hidden) { list.scrollTop = Math.max(0, items[index].offsetTop - list.clientHeight / 2); }
    }
  }

  function filterRows() {
    const wanted = $("replayhub-filter").value.trim().toLowerCase();
    document.querySelectorAll(".replayhub-panel .replayhub-row").forEach(function (item) {
      item.hidden = wanted !== "" && item.textContent.toLowerCase().indexOf(wanted) < 0;
    });
  }

  function clockText(ms) {
    const seconds = Math.max(0, Math.floor(ms / 1000));
    return Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }

  function fail(message) {
    status.textContent = message;
    status.className = "replayhub-error";
  }

  // -- controls -----------------------------------------------------------------

  function linkNow() {
    const url = new URL(window.location.href);
    url.searchParams.set("t", String(Math.floor(clock.now() / 1000)));
    return url.toString();
  }

  function copyLink() {
    const field = $("replayhub-link");
    field.value = linkNow();
    field.hidden = false;
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).catch(function () {});
    } else {
      document.execCommand("copy");
    }
  }

  function toggleFullscreen() {
    // The whole player (screen, timeline, controls, panel), not just the screen.
    if (document.fullscreenElement) { document.exitFullscreen(); } else { $("replayhub-watch").requestFullscreen(); }
  }

  function showPanel(name) {
    document.querySelectorAll(".replayhub-side-tab").forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.dataset.panel === name));
    });
    document.querySelectorAll(".replayhub-panel").forEach(function (list) {
      list.hidden = list.dataset.panel !== name;
      list.current = -2; // highlight (and scroll to) its current row again
    });
    render(clock.now());
  }

  function onKey(event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) { return; }
    // Space on a button presses it: the button's own click does the work.
    if (event.key === " " && target.closest && target.closest("button, a, summary")) { return; }
    const digit = SPEEDS[Number(event.key) - 1];
    if (event.key === " ") {
      if (clock.playing) { pause(); } else { play(); }
    } else if (event.key === "ArrowLeft") {
      seek(clock.now() - JUMP_MS);
    } else if (event.key === "ArrowRight") {
      seek(clock.now() + JUMP_MS);
    } else if (digit) {
      setSpeed(digit);
    } else if (event.key === "s") {
      $("replayhub-skip").click();
    } else if (event.key === "f") {
      toggleFullscreen();
    } else {
      return;
    }
    event.preventDefault();
  }

  function wire() {
    $("replayhub-play").addEventListener("click", function () {
      if (clock.playing) { pause(); } else { play(); }
    });
    document.querySelectorAll(".replayhub-speed").forEach(function (button) {
      button.addEventListener("click", function () { setSpeed(Number(button.dataset.speed)); });
    });
    $("replayhub-skip").addEventListener("change", function (event) { skip = event.target.checked; });
    $("replayhub-fullscreen").addEventListener("click", toggleFullscreen);
    $("replayhub-copy").addEventListener("click", copyLink);
    $("replayhub-bar").addEventListener("click", function (event) {
      const box = event.currentTarget.getBoundingClientRect();
      seek(((event.clientX - box.left) / box.width) * duration);
    });
    $("replayhub-filter").addEventListener("input", filterRows);
    document.querySelectorAll(".replayhub-side-tab").forEach(function (tab) {
      tab.addEventListener("click", function () { showPanel(tab.dataset.panel); });
    });
    document.addEventListener("keydown", onKey);
    const refit = function () { windows.forEach(fit); };
    window.addEventListener("resize", refit);
    document.addEventListener("fullscreenchange", refit);
    // "Comment at the current moment": the clock's time and the tab showing.
    const form = $("replayhub-comment-form");
    if (form) {
      form.addEventListener("submit", function () {
        $("replayhub-comment-offset").value = String(Math.max(0, Math.round(clock.now())));
        $("replayhub-comment-window").value = hooks.activeWindow() || "";
      });
    }
    setSpeed(1);
  }

  // ?t=<seconds>: open paused at that moment (the page's, or the address's offline).
  function startAt() {
    const node = $("player-start");
    let seconds = node ? JSON.parse(node.textContent) : null;
    if (seconds === null) {
      const given = new URLSearchParams(window.location.search).get("t");
      seconds = given && /^\d+$/.test(given) ? Number(given) : null;
    }
    return seconds === null ? null : seconds * 1000;
  }

  const startMs = startAt();
  window.replayhubParseSegment = parseSegment; // for tests of the rule
  wire();
  load(dataSource()).catch(function (error) {
    fail("Could not load the recording: " + error.message);
  });
})();
