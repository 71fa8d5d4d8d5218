// Loads a recording's events from the admin and hands them to rrweb-player.
(function () {
  "use strict";
  const status = document.getElementById("player-status");
  const target = document.getElementById("player");
  const url = new URL(JSON.parse(document.getElementById("events-url").textContent), window.location.href);
  const windowId = JSON.parse(document.getElementById("events-window").textContent);
  if (windowId) {
    url.searchParams.set("window", windowId);
  }

  function fail(message) {
    status.textContent = message;
    status.className = "replayhub-error";
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
      new Player({
        target: target,
        props: { events: events, width: width, height: Math.round(width * 9 / 16), autoPlay: true, skipInactive: true },
      });
      status.textContent = events.length + " events";
    })
    .catch(function (error) {
      fail("Could not load the recording: " + error.message);
    });
})();
