// outreach preview --serve: filters the recipient list without a reload, and follows the
// server's re-loads (Server-Sent Events on /events) by swapping the page's #content.
(function () {
  "use strict";
  var body = document.body;
  function refresh() {
    return fetch(location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("content");
        var here = document.getElementById("content");
        if (fresh && here) { here.innerHTML = fresh.innerHTML; }
        var title = doc.getElementById("title");
        var mine = document.getElementById("title");
        if (title && mine) { mine.textContent = title.textContent; }
        document.title = doc.title;
        if (doc.body && doc.body.dataset.version) { body.dataset.version = doc.body.dataset.version; }
      });
  }
  var form = document.getElementById("filters");
  if (form) {
    var timer;
    var apply = function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var params = new URLSearchParams();
        new FormData(form).forEach(function (v, k) { if (v) { params.set(k, v); } });
        var q = params.toString();
        history.replaceState(null, "", location.pathname + (q ? "?" + q : ""));
        refresh();
      }, 120);
    };
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
  }
  if (window.EventSource) {
    var events = new EventSource("/events");
    events.onmessage = function (e) {
      if (e.data !== body.dataset.version) { refresh(); }
    };
  }
})();
