// The console's script: progressive enhancement only (every page works without it).
// No inline handlers exist anywhere; everything is wired here from data-* attributes.
"use strict";

// Copy buttons: <button data-copy="ID"> copies the text of the element with that id.
function wireCopyButtons() {
  document.querySelectorAll("button[data-copy]").forEach((b) => {
    b.addEventListener("click", () => {
      const el = document.getElementById(b.dataset.copy);
      if (!el || !navigator.clipboard) return;
      navigator.clipboard.writeText(el.textContent).then(() => {
        b.textContent = "Copied";
        setTimeout(() => { b.textContent = "Copy"; }, 1500);
      }, () => {});
    });
  });
}

// Forms with data-confirm ask before they submit.
function wireConfirmations() {
  document.querySelectorAll("form[data-confirm]").forEach((f) => {
    f.addEventListener("submit", (e) => {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });
}

// == live updates (owned by job.rs / datum.rs) ==
// Pages follow /api/v1/events (server-sent events): a job or datum page follows its job
// (`#logs` carries data-pipeline / data-job / data-datum); any other page with live badges
// follows their job, or everything when it shows several.

// The badge class of a job state (the same mapping as view::job_state_class).
function jobStateClass(state) {
  switch (state) {
    case "JOB_SUCCESS": return "ok";
    case "JOB_FAILURE": case "JOB_UNRUNNABLE": return "bad";
    case "JOB_KILLED": return "killed";
    default: return "running";
  }
}

// Rewrites every [data-live-job-state="P/J"] badge of this job.
function updateJobBadges(job) {
  const key = job.pipeline + "/" + job.id;
  document.querySelectorAll("[data-live-job-state]").forEach((b) => {
    if (b.dataset.liveJobState !== key) return;
    b.textContent = job.state;
    b.className = "badge " + jobStateClass(job.state);
  });
}

// Most lines kept in #logs; older ones are dropped from the page.
const MAX_LOG_LINES = 5000;

// `YYYY-MM-DD HH:MM:SS` (UTC), as the server renders times.
function formatTime(ms) {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

// One log line as the server renders it; text only through textContent.
function logLineElement(line, withDatum) {
  const div = document.createElement("div");
  div.className = "line " + (line.stream === "stderr" ? "stderr" : "stdout");
  const ts = document.createElement("span");
  ts.className = "ts";
  ts.textContent = formatTime(line.ts_ms);
  div.appendChild(ts);
  if (withDatum) {
    const a = document.createElement("a");
    a.className = "datum";
    a.href = "/pipelines/" + encodeURIComponent(line.pipeline) + "/jobs/" +
      encodeURIComponent(line.job) + "/datums/" + encodeURIComponent(line.datum);
    a.textContent = String(line.datum).slice(0, 12);
    div.appendChild(a);
    div.appendChild(document.createTextNode(" "));
  }
  const msg = document.createElement("span");
  msg.className = "msg";
  msg.textContent = line.message;
  div.appendChild(msg);
  return div;
}

// Appends lines to #logs, keeping the view at the bottom when it was there.
function appendLogLines(logs, lines) {
  if (lines.length === 0) return;
  const atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
  logs.querySelectorAll(".none").forEach((n) => n.remove());
  const withDatum = !logs.dataset.datum;
  lines.forEach((l) => logs.appendChild(logLineElement(l, withDatum)));
  while (logs.querySelectorAll(".line").length > MAX_LOG_LINES) {
    logs.querySelector(".line").remove();
  }
  if (atBottom) logs.scrollTop = logs.scrollHeight;
}

// After a `lagged` event: re-reads the page's lines from the API (NDJSON), keeps the last 200.
function reloadLogs(logs) {
  if (!logs.dataset.reload) return;
  fetch(logs.dataset.reload, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
    .then((text) => {
      const lines = text.split("\n").filter((t) => t.trim() !== "").map((t) => JSON.parse(t));
      logs.querySelectorAll(".line").forEach((n) => n.remove());
      appendLogLines(logs, lines.slice(-200));
    })
    .catch(() => {});
}

// What a page follows: its job (job and datum pages, or one badge's job), or everything.
function liveTarget() {
  const logs = document.getElementById("logs");
  if (logs && logs.dataset.pipeline && logs.dataset.job) {
    return { pipeline: logs.dataset.pipeline, job: logs.dataset.job, logs };
  }
  const keys = new Set();
  document.querySelectorAll("[data-live-job-state]").forEach((b) => keys.add(b.dataset.liveJobState));
  if (keys.size === 0) return null;
  if (keys.size === 1) {
    const key = keys.values().next().value;
    const at = key.lastIndexOf("/");
    return { pipeline: key.slice(0, at), job: key.slice(at + 1), logs: null };
  }
  return { pipeline: null, job: null, logs: null };
}

// Opens the event stream for this page and wires its events; closes it on pagehide.
function wireLiveUpdates() {
  if (!window.EventSource) return;
  const t = liveTarget();
  if (!t) return;
  let url = "/api/v1/events";
  if (t.pipeline !== null) {
    url += "?pipeline=" + encodeURIComponent(t.pipeline) + "&job=" + encodeURIComponent(t.job);
  }
  const es = new EventSource(url);
  const data = (e) => { try { return JSON.parse(e.data); } catch (_) { return null; } };
  es.addEventListener("job", (e) => { const j = data(e); if (j) updateJobBadges(j); });
  if (t.logs) {
    const logs = t.logs;
    es.addEventListener("log", (e) => {
      const l = data(e);
      if (!l || l.job !== t.job || (logs.dataset.datum && l.datum !== logs.dataset.datum)) return;
      appendLogLines(logs, [l]);
    });
    es.addEventListener("lagged", () => reloadLogs(logs));
  }
  const note = document.getElementById("datums-note");
  if (note) {
    es.addEventListener("datum", () => { note.hidden = false; });
    es.addEventListener("lagged", () => { note.hidden = false; });
  }
  window.addEventListener("pagehide", () => es.close());
}

document.addEventListener("DOMContentLoaded", () => {
  wireCopyButtons();
  wireConfirmations();
  wireLiveUpdates();
});
