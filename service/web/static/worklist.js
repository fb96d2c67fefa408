// Live worklist: polls a small HTML fragment and swaps it in when it changed, keeping focus
// where it was and announcing new alerts in an aria-live region. Also asks before closing.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var ask = event.target.getAttribute("data-confirm");
    if (ask && !window.confirm(ask)) { event.preventDefault(); }
  });
  var box = document.getElementById("alerts");
  if (!box) { return; }
  var every = parseInt(box.getAttribute("data-poll-ms"), 10) || 5000;
  var live = document.getElementById("live");
  var checked = document.getElementById("checked");
  var baseTitle = document.title;
  function waiting() {
    var seen = {};
    box.querySelectorAll("[data-waiting]").forEach(function (el) { seen[el.id] = el; });
    return seen;
  }
  var known = waiting();
  function showCount() {
    var n = box.querySelectorAll("[data-waiting]").length;
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
  }
  function swap(html, version) {
    var focusedId = document.activeElement && document.activeElement.id;
    var hadFocus = box.contains(document.activeElement);
    box.innerHTML = html;
    box.setAttribute("data-version", version);
    var now = waiting(), fresh = [];
    Object.keys(now).forEach(function (id) { if (!known[id]) { fresh.push(now[id].getAttribute("data-announce")); } });
    known = now;
    if (fresh.length) {
      live.textContent = fresh.length === 1 ? "New " + fresh[0] : fresh.length + " new alerts: " + fresh.join("; ");
    }
    if (hadFocus) {
      var target = (focusedId && document.getElementById(focusedId)) || document.getElementById("waiting-heading");
      if (target) { target.focus(); }
    }
    showCount();
  }
  function tick() {
    var url = box.getAttribute("data-fragment-url") + "?since=" + encodeURIComponent(box.getAttribute("data-version") || "");
    fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 401) { window.location.assign("/worklist/login?reason=expired"); return; }
      if (r.status === 204) { return null; }
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.text().then(function (html) { swap(html, r.headers.get("X-Worklist-Version") || ""); });
    }).then(function () {
      checked.textContent = "Updated " + new Date().toLocaleTimeString();
    }, function () {
      checked.textContent = "Could not reach the server; retrying…";
    }).then(function () { window.setTimeout(tick, every); });
  }
  showCount();
  window.setTimeout(tick, every);
})();
