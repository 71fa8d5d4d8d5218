// Loads a recording's events from the admin and hands them to rrweb-player.
(function () {
  "use strict";
  const status = document.getElementById("player-status");
  const target = document.getElementById("player");
  const url = new URL(JSON.parse(document.getElementById("events-url").textContent), window.location.href);
  const windowId = JSON.parse(document.getElementById("events-window").textContent);
  const startNode = document.getElementById("player-start");
  const startSeconds = startNode ? JSON.parse(startNode.textContent) : null;
  let player = null;
  if (windowId) {
    url.searchParams.set("window", windowId);
  }

  function fail(message) {
    status.textContent = message;
    status.className = "replayhub-error";
  }

  // Does the recording draw on a <canvas>: a CanvasMutation (incremental source 9),
  // or a canvas whose picture rrweb took as `rr_dataURL` in a snapshot or an add?
  function drawsOnCanvas(events) {
    return events.some(function (event) {
      const data = event.data || {};
      if (event.type === 2) {
        return hasCanvasPicture(data.node);
      }
      if (event.type === 3 && data.source === 9) {
        return true;
      }
      return event.type === 3 && data.source === 0 && (data.adds || []).some(function (add) {
        return hasCanvasPicture(add && add.node);
      });
    });
  }

  function hasCanvasPicture(root) {
    const stack = root ? [root] : [];
    while (stack.length) {
      const node = stack.pop();
      if (node.tagName === "canvas" && node.attributes && node.attributes.rr_dataURL) {
        return true;
      }
      (node.childNodes || []).forEach(function (child) { stack.push(child); });
    }
    return false;
  }

  // "Comment at the current moment": the player's time, put in the form on submit.
  const commentForm = document.getElementById("replayhub-comment-form");
  if (commentForm) {
    commentForm.addEventListener("submit", function () {
      if (!player) {
        return;
      }
      const replayer = player.getReplayer();
      const offset = document.getElementById("replayhub-comment-offset");
      offset.value = String(Math.max(0, Math.round(replayer.getCurrentTime())));
      if (windowId) {
        document.getElementById("replayhub-comment-window").value = windowId;
      }
    });
  }

  fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("the server answered " + response.status);
      }
      return response.json();
    })
    .then(function (events) {
      if (events.length < 2) {
        fail("This recording has too few events to replay (" + events.length + ").");
        return;
      }
      const width = Math.min(target.clientWidth || 1024, 1280);
      // The UMD bundle exposes its module: the player class is its default export.
      const Player = window.rrwebPlayer.default || window.rrwebPlayer.Player;
      const props = { events: events, width: width, height: Math.round(width * 9 / 16), autoPlay: true, skipInactive: true };
      // rrweb replays canvas drawing only in an iframe that may run scripts; it is
      // turned on only where there is canvas data, and the page's Content Security
      // Policy (which the replay iframe inherits) still lets no recorded script run.
      props.UNSAFE_replayCanvas = drawsOnCanvas(events);
      if (startSeconds !== null) {
        props.autoPlay = false;
      }
      player = new Player({ target: target, props: props });
      if (startSeconds !== null) {
        // A comment's link (?t=<seconds>): open the player at that moment.
        player.goto(startSeconds * 1000, true);
      }
      status.textContent = events.length + " events";
    })
    .catch(function (error) {
      fail("Could not load the recording: " + error.message);
    });
})();
