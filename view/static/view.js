// redraft view: shows the index's progress while it is built. The pages
// work without this script; it talks to this server only.
(function () {
  "use strict";
  var el = document.getElementById("index-status");
  var cur = document.querySelector("nav.datasets a.current");
  if (!el || !cur || el.textContent.indexOf("indexing") !== 0) return;
  var name = cur.getAttribute("data-dataset");
  function poll() {
    fetch("/status", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
      var d = s[name];
      if (!d) return;
      if (d.error) { el.textContent = "index failed: " + d.error; return; }
      if (d.done) { el.textContent = "index ready: reload for the filter values"; return; }
      el.textContent = "indexing " + d.indexed.toLocaleString("en") + " / " + d.rows.toLocaleString("en") + " rows";
      setTimeout(poll, 500);
    }).catch(function () {});
  }
  setTimeout(poll, 500);
})();
