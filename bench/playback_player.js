// bench/playback.py's stand-in for the segmented player page (issue 15), served in
// place of recordings/player.js while the real one is written: it plays the first
// window of the timeline (playback.segments_timeline) that the bench puts in place
// of the marker below. It loads the window's first segment and shows it, then the
// rest in the background, handing their events to the replayer a slice at a time so
// that the tab never stops answering. Same hooks as the real player's contract:
// window.replayhubPlayer = {firstFrameAt, loadedAt} (performance.now() values).
(function () {
  "use strict";
  const timeline = /*TIMELINE*/ null;
  const status = document.getElementById("player-status");
  const target = document.getElementById("player");
  const state = { firstFrameAt: null, loadedAt: null, events: 0 };
  window.replayhubPlayer = state;
  // Events are handed to the replayer for this long at a time, then the page
  // gets the main thread back (input, painting, the replay itself).
  const BUDGET_MS = 8;

  // A segment is a fragment of its window's JSON array: strip one leading `[` or
  // `,` and one trailing `]`, and wrap what is left in brackets.
  function parseFragment(text) {
    let body = text.trim();
    if (body[0] === "[" || body[0] === ",") {
      body = body.slice(1);
    }
    if (body.endsWith("]")) {
      body = body.slice(0, -1);
    }
    return JSON.parse("[" + body + "]");
  }

  function load(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        throw new Error("the server answered " + response.status);
      }
      return response.text();
    }).then(parseFragment);
  }

  function pause() {
    return new Promise(function (resolve) { setTimeout(resolve, 0); });
  }

  function watchFirstFrame() {
    const iframe = target.querySelector("iframe");
    const body = iframe && iframe.contentDocument && iframe.contentDocument.body;
    if (body && body.children.length > 0) {
      state.firstFrameAt = performance.now();
      return;
    }
    requestAnimationFrame(watchFirstFrame);
  }

  async function addRest(player, segments) {
    // Every request starts now; their events are added in time order.
    const loads = segments.map(function (segment) { return load(segment.url); });
    const replayer = player.getReplayer();
    for (const loading of loads) {
      const events = await loading;
      let next = 0;
      while (next < events.length) {
        const deadline = performance.now() + BUDGET_MS;
        while (next < events.length - 1 && performance.now() < deadline) {
          replayer.addEvent(events[next++]);
        }
        player.addEvent(events[next++]); // updates the player's length once
        await pause();
      }
      state.events += events.length;
    }
  }

  const segments = timeline[0].segments;
  load(segments[0].url).then(function (first) {
    const width = Math.min(target.clientWidth || 1024, 1280);
    const Player = window.rrwebPlayer.default || window.rrwebPlayer.Player;
    const player = new Player({
      target: target,
      props: { events: first, width: width, height: Math.round(width * 9 / 16), autoPlay: true, skipInactive: true },
    });
    state.events = first.length;
    state.player = player;
    watchFirstFrame();
    return addRest(player, segments.slice(1));
  }).then(function () {
    state.loadedAt = performance.now();
    status.textContent = state.events + " events";
  }).catch(function (error) {
    status.textContent = "Could not load the recording: " + error.message;
  });
})();
