// Ferry's panel script: theme switch, confirmations, and live lists. Pages work without it.
(function () {
  "use strict";
  var root = document.documentElement;
  var saved = localStorage.getItem("ferry-theme");
  if (saved === "dark" || saved === "light") root.dataset.theme = saved;

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("theme-toggle");
    if (toggle) toggle.addEventListener("click", function () {
      var dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      localStorage.setItem("ferry-theme", root.dataset.theme);
    });
    document.querySelectorAll("[data-back]").forEach(function (a) {
      a.addEventListener("click", function (e) { if (history.length > 1) { e.preventDefault(); history.back(); } });
    });
    live();
  });

  // Forms with data-confirm ask first (rollback, revoke, delete).
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !confirm(msg)) e.preventDefault();
  }, true);

  // live subscribes to the page's topic and, on each change, fetches the page again with
  // the X-Ferry-Live header, which answers only the #live part, and swaps it in. One fetch
  // at a time; a change during a fetch schedules one more.
  function live() {
    var main = document.querySelector("main[data-live-topic]");
    var target = document.getElementById("live");
    if (!main || !target || !window.EventSource) return;
    var busy = false, again = false;
    function reload() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(location.href, { headers: { "X-Ferry-Live": "1" }, credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 401) { location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined) {
            target.innerHTML = html;
            document.dispatchEvent(new CustomEvent("ferry:live", { detail: main.dataset.liveTopic }));
          }
        })
        .catch(function () {})
        .finally(function () { busy = false; if (again) { again = false; reload(); } });
    }
    var es = new EventSource("/events?topic=" + encodeURIComponent(main.dataset.liveTopic));
    es.addEventListener("change", reload);
    window.ferryLive = { source: es, reload: reload };
  }
})();
