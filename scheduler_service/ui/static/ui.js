// scheduler-service dashboard: the only script. Pages work without it; it adds
// 1. the live runs table of a job page (Server-Sent Events from the API's event stream), and
// 2. re-rendering the job form's parameter fields when another function is chosen, and
// 3. the live overview: its parts re-fetched when a run event arrives (at most every 2 s).
(function () {
  "use strict";

  // Every run state the stream names ("run.<state>"; see api/events.py).
  var STATES = ["pending", "submitted", "running", "succeeded", "failed", "missed", "skipped",
    "skipped_duplicate", "coalesced", "unknown", "abandoned"];

  function liveRuns(table) {
    var jobId = table.dataset.jobId;
    var status = document.getElementById("live-status");
    var busy = false;
    var again = false;

    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(table.dataset.runsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          var holder = document.createElement("table");
          holder.innerHTML = html;
          var body = holder.querySelector("tbody");
          if (body && table.tBodies[0]) { table.tBodies[0].replaceWith(body); }
        })
        .catch(function () { /* the next event tries again */ })
        .finally(function () {
          busy = false;
          if (again) { again = false; refresh(); }
        });
    }

    var source = new EventSource(table.dataset.eventsUrl);
    source.addEventListener("open", function () {
      if (status) { status.textContent = "Live: runs update as they happen."; }
      refresh(); // what happened between the page's rendering and the stream's start
    });
    source.addEventListener("error", function () {
      if (status) { status.textContent = "Live updates paused; reload the page to see new runs."; }
    });
    STATES.forEach(function (state) {
      source.addEventListener("run." + state, function (event) {
        var data = JSON.parse(event.data);
        if (data.job_id === jobId) { refresh(); }
      });
    });
    // Free the stream (the service counts them per user) as soon as the page goes.
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function liveOverview(holder) {
    var status = document.getElementById("live-status");
    var last = 0;
    var timer = null;
    var busy = false;

    function refresh() {
      timer = null;
      if (busy) { schedule(); return; }
      busy = true;
      last = Date.now();
      fetch(holder.dataset.partsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) { holder.innerHTML = html; } })
        .catch(function () { /* the next event tries again */ })
        .finally(function () { busy = false; });
    }

    // At most one fetch every 2 s: an event in between sets one up for when the 2 s are up.
    function schedule() {
      if (timer !== null) { return; }
      timer = window.setTimeout(refresh, Math.max(0, last + 2000 - Date.now()));
    }

    var source = new EventSource(holder.dataset.eventsUrl);
    source.addEventListener("open", function () {
      if (status) { status.textContent = "Live: the figures update as runs happen."; }
      schedule();
    });
    source.addEventListener("error", function () {
      if (status) { status.textContent = "Live updates paused; reload the page to see new runs."; }
    });
    STATES.forEach(function (state) {
      source.addEventListener("run." + state, schedule);
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function functionChooser(select) {
    select.addEventListener("change", function () {
      var form = select.form;
      var query = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        if (key.indexOf("kwargs.") !== 0 && typeof value === "string") { query.append(key, value); }
      });
      window.location.assign(form.dataset.fieldsUrl + "?" + query.toString());
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var runs = document.querySelector("table#runs[data-events-url]");
    if (runs && window.EventSource) { liveRuns(runs); }
    var overview = document.querySelector("#overview-parts[data-events-url]");
    if (overview && window.EventSource) { liveOverview(overview); }
    var func = document.querySelector("form#job-form select[name=func]");
    if (func && func.form.dataset.fieldsUrl) { functionChooser(func); }
  });
})();
