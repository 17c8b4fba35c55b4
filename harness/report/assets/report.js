"use strict";
/* Filters the index and the scenarios by status, tag and text; opens a
   scenario named by the URL's fragment; copies reproduce commands. It
   never builds markup from the report's text: it only reads the JSON
   block and sets hidden, open and textContent. (No line comments: the
   tests scan the page for anything that looks like a URL.) */
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent) || [];
  var byID = {};
  data.forEach(function (s) { byID[s.id] = s; });
  var statuses = {};
  var search = document.getElementById("search");
  var tag = document.getElementById("tag-filter");
  var shown = document.getElementById("shown");

  function visible(s) {
    var any = Object.keys(statuses).some(function (k) { return statuses[k]; });
    if (any && !statuses[s.status]) return false;
    if (tag.value && s.tags.indexOf(tag.value) < 0) return false;
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    return words.every(function (w) { return s.search.indexOf(w) >= 0; });
  }

  function apply() {
    var n = 0;
    data.forEach(function (s) {
      var v = visible(s);
      if (v) n++;
      var row = document.querySelector('tr.row[data-id="' + CSS.escape(s.id) + '"]');
      var sec = document.getElementById(s.id);
      if (row) row.hidden = !v;
      if (sec) sec.hidden = !v;
    });
    shown.textContent = n === data.length ? "" : n + " of " + data.length + " shown";
  }

  document.querySelectorAll(".status-filter").forEach(function (b) {
    b.addEventListener("click", function () {
      var st = b.getAttribute("data-status");
      statuses[st] = !statuses[st];
      b.setAttribute("aria-pressed", statuses[st] ? "true" : "false");
      apply();
    });
  });
  search.addEventListener("input", apply);
  tag.addEventListener("change", apply);

  function setOpen(open) {
    document.querySelectorAll("details.scenario").forEach(function (d) {
      if (!d.hidden) d.open = open;
    });
  }
  document.getElementById("expand-all").addEventListener("click", function () { setOpen(true); });
  document.getElementById("collapse-all").addEventListener("click", function () { setOpen(false); });

  function openFromHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    if (!byID[id]) return;
    var d = document.getElementById(id);
    if (d) {
      d.hidden = false;
      d.open = true;
      d.scrollIntoView();
    }
  }
  window.addEventListener("hashchange", openFromHash);
  openFromHash();

  function selectText(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
  }
  document.querySelectorAll(".reproduce .copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var code = b.parentNode.querySelector("code");
      var done = function () { b.textContent = "copied"; };
      var fallback = function () {
        selectText(code);
        try { if (document.execCommand("copy")) { done(); return; } } catch (e) { /* selected: copy by hand */ }
        b.textContent = "selected";
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(code.textContent).then(done, fallback);
      } else {
        fallback();
      }
    });
  });
})();
