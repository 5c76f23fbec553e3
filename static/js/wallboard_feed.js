/* The wallboard's live feed (/ws/v1/wallboard, apps/monitoring/consumers.py): the server pushes
 * a fresh picture on every change; pages only draw it. Used by the wallboard and by the
 * supervisor's monitoring page (its live-call list). Reconnects with backoff. */
(function () {
  "use strict";

  window.RB = window.RB || {};
  window.RB.wallboardFeed = function (onPicture, onStatus) {
    let backoff = 500;
    function connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + "/ws/v1/wallboard");
      if (onStatus) onStatus("connecting");
      ws.onopen = () => {
        backoff = 500;
        if (onStatus) onStatus("open");
      };
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.type === "wallboard") onPicture(msg);
      };
      ws.onclose = (e) => {
        if (onStatus) onStatus("closed");
        if (e.code === 4403) return; // not a supervisor: the page says so already
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 10000);
      };
    }
    connect();
  };
})();
