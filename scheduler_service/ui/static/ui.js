// scheduler-service dashboard: the only script. Pages work without it; it adds
// 1. the live runs table of a job page (Server-Sent Events from the API's event stream),
// 2. the live rows of the jobs table (same stream; one row refreshed at most once a second),
// 3. the live overview: its parts re-fetched when a run event arrives (at most every 2 s), and
// 4. re-rendering the job form's parameter fields when another function is chosen.
(function () {
  "use strict";

  // Every run state the stream names ("run.<state>"; see api/events.py).
  var STATES = ["pending", "submitted", "running", "succeeded", "failed", "missed", "skipped",
    "skipped_duplicate", "coalesced", "unknown", "abandoned"];
  var OPEN = ["pending", "submitted", "running"];
  var RETRY_MS = 5000;

  // Listen to the event stream; when the service refuses or drops it (every stream slot taken:
  // 503 or 429, which EventSource does not retry), try again after RETRY_MS. ``onOpen(again)``
  // runs at each start, ``again`` true after a loss; ``handlers`` maps event names to functions
  // of the event's data.
  function listen(url, handlers, onOpen, onLoss) {
    var source = null;
    var lost = false;
    function start() {
      source = new EventSource(url);
      source.addEventListener("open", function () { onOpen(lost); lost = false; });
      source.addEventListener("error", function () {
        lost = true;
        if (onLoss) { onLoss(); }
        if (source.readyState === EventSource.CLOSED) { setTimeout(start, RETRY_MS); }
      });
      Object.keys(handlers).forEach(function (name) {
        source.addEventListener(name, function (event) { handlers[name](JSON.parse(event.data)); });
      });
    }
    start();
    // Free the stream (the service counts them per user) as soon as the page goes.
    window.addEventListener("pagehide", function () { if (source) { source.close(); } });
  }

  function runHandlers(each) {
    var handlers = {};
    STATES.forEach(function (state) { handlers["run." + state] = each; });
    return handlers;
  }

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

    listen(table.dataset.eventsUrl, runHandlers(function (data) {
      if (data.job_id === jobId) { refresh(); }
    }), function () {
      if (status) { status.textContent = "Live: runs update as they happen."; }
      refresh(); // what happened between the page's rendering and the stream's start
    }, function () {
      if (status) { status.textContent = "Live updates paused; trying again."; }
    });
  }

  function liveJobs(table) {
    var status = document.getElementById("jobs-changed");
    var last = {};    // job id -> when its row was last fetched (ms)
    var waiting = {}; // job id -> a refresh is already planned

    function row(jobId) {
      return table.querySelector('tbody tr[data-job-id="' + CSS.escape(jobId) + '"]');
    }

    function fetchRow(jobId) {
      var current = row(jobId);
      if (!current) { return; }
      last[jobId] = Date.now();
      var url = current.dataset.rowUrl + "?next=" +
        encodeURIComponent(window.location.pathname + window.location.search);
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.status === 404) { changed(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          var now = row(jobId);
          if (html === null || !now) { return; }
          var holder = document.createElement("tbody");
          holder.innerHTML = html;
          var fresh = holder.querySelector("tr");
          if (fresh) { now.replaceWith(fresh); }
        })
        .catch(function () { /* the next event tries again */ });
    }

    // At most one fetch a second per row: a burst of events ends in one refresh.
    function refresh(jobId) {
      if (!row(jobId) || waiting[jobId]) { return; }
      var wait = Math.max(0, (last[jobId] || 0) + 1000 - Date.now());
      waiting[jobId] = true;
      setTimeout(function () { waiting[jobId] = false; fetchRow(jobId); }, wait);
    }

    function changed() { if (status) { status.hidden = false; } }

    var handlers = runHandlers(function (data) { refresh(data.job_id); });
    handlers["job.modified"] = function (data) { refresh(data.job_id); };
    handlers["job.added"] = changed;
    handlers["job.removed"] = function (data) {
      var gone = row(data.job_id);
      if (gone) { gone.classList.add("removed"); gone.querySelector("td.state").textContent = "removed"; }
      changed();
    };
    listen(table.dataset.eventsUrl, handlers, function (again) {
      // Runs open when the page was drawn may have ended before the stream began; after a
      // loss, anything may have happened.
      table.querySelectorAll("tbody tr[data-job-id]").forEach(function (tr) {
        if (again || OPEN.indexOf(tr.dataset.lastState) >= 0) { refresh(tr.dataset.jobId); }
      });
    });
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

    listen(holder.dataset.eventsUrl, runHandlers(schedule), function () {
      if (status) { status.textContent = "Live: the figures update as runs happen."; }
      schedule();
    }, function () {
      if (status) { status.textContent = "Live updates paused; trying again."; }
    });
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
    var jobs = document.querySelector("table#jobs[data-events-url]");
    if (jobs && window.EventSource) { liveJobs(jobs); }
    var overview = document.querySelector("#overview-parts[data-events-url]");
    if (overview && window.EventSource) { liveOverview(overview); }
    var func = document.querySelector("form#job-form select[name=func]");
    if (func && func.form.dataset.fieldsUrl) { functionChooser(func); }
  });
})();
