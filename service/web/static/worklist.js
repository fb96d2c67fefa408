// Live worklist: polls a small HTML fragment and swaps it in when it changed, keeping focus
// and opened rows where they were and announcing new alerts in an aria-live region. Also asks
// before closing, opens a row's details in place (a real button with aria-expanded), and shows
// times in the browser's time zone (the server renders UTC; the UTC instant stays in `title`).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var ask = event.target.getAttribute("data-confirm");
    if (ask && !window.confirm(ask)) { event.preventDefault(); }
  });
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) { return; }
      var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
      var kind = el.getAttribute("data-local");
      if (kind === "time") { hm += ":" + pad(d.getSeconds()); }
      var day = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
      el.textContent = kind === "long" ? day + " " + hm : hm;
      if (!el.getAttribute("title") || el.getAttribute("title").indexOf("UTC") < 0) {
        el.setAttribute("title", d.toISOString().replace("T", " ").slice(0, 16) + " UTC");
      }
    });
  }
  function setOpen(button, open) {
    var panel = document.getElementById(button.getAttribute("aria-controls"));
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (panel) { panel.hidden = !open; }
  }
  var opened = {};
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.expand") : null;
    if (!button) { return; }
    var open = button.getAttribute("aria-expanded") !== "true";
    setOpen(button, open);
    if (open) { opened[button.id] = true; } else { delete opened[button.id]; }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var pop = event.target.closest ? event.target.closest("details.pop[open]") : null;
    if (pop) { pop.open = false; pop.querySelector("summary").focus(); }
  });
  localTimes(document);
  // A link to one alert (CDS Hooks cards link to /worklist#flag-<id>) opens its details.
  function openLinked() {
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    var button = target && target.querySelector("button.expand");
    if (button) { setOpen(button, true); opened[button.id] = true; }
  }
  openLinked();
  window.addEventListener("hashchange", openLinked);
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
    var popsOpen = [];
    box.querySelectorAll("details.pop[open] > summary").forEach(function (el) { popsOpen.push(el.id); });
    if (popsOpen.length) { return false; }  // never pull a form away from under the nurse
    box.innerHTML = html;
    box.setAttribute("data-version", version);
    localTimes(box);
    Object.keys(opened).forEach(function (id) {
      var button = document.getElementById(id);
      if (button) { setOpen(button, true); } else { delete opened[id]; }
    });
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
    var base = box.getAttribute("data-fragment-url");
    var url = base + (base.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(box.getAttribute("data-version") || "");
    fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 401) { window.location.assign("/worklist/login?reason=expired"); return; }
      if (r.status === 204) { return null; }
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.text().then(function (html) { swap(html, r.headers.get("X-Worklist-Version") || ""); });
    }).then(function () {
      var now = new Date();
      checked.textContent = "Updated " + pad(now.getHours()) + ":" + pad(now.getMinutes()) + ":" + pad(now.getSeconds());
      checked.title = now.toISOString().slice(0, 19).replace("T", " ") + " UTC";
    }, function () {
      checked.textContent = "Could not reach the server; retrying…";
    }).then(function () { window.setTimeout(tick, every); });
  }
  showCount();
  window.setTimeout(tick, every);
})();
