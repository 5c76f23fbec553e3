/* Pages that list long jobs (composition, QC) keep their progress current: while an element
 * marked `data-live` (with an id) is on the page, the page is fetched again every few seconds
 * and each such element is swapped for its new rendering; when one has finished (its new
 * rendering is no longer live, or has gone: the page now shows the player or the findings) the
 * whole page reloads. The server renders
 * percentage and time left (remotebank/progress.py), so this file has no words of its own. */
(function () {
  "use strict";

  const PERIOD_MS = 3000;

  function live() {
    return Array.from(document.querySelectorAll("[data-live][id]"));
  }

  async function refresh() {
    if (!live().length) return;
    let doc;
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      doc = new DOMParser().parseFromString(await response.text(), "text/html");
    } catch (e) {
      setTimeout(refresh, PERIOD_MS * 2); // a network blip: try again later
      return;
    }
    for (const el of live()) {
      const fresh = doc.getElementById(el.id);
      if (!fresh || !fresh.hasAttribute("data-live")) {
        location.reload();
        return;
      }
      el.replaceWith(document.importNode(fresh, true));
    }
    setTimeout(refresh, PERIOD_MS);
  }

  document.addEventListener("DOMContentLoaded", () => setTimeout(refresh, PERIOD_MS));
})();
