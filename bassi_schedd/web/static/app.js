// bassi-schedd dashboard: buttons that POST, live run events, live output.
// Loaded from /static (CSP default-src 'self': no inline script anywhere).
"use strict";

function flash(text, isError) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text;
  box.className = isError ? "error" : "ok";
}

async function post(button) {
  const url = button.dataset.post;
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    const resp = await fetch(url, { method: "POST", headers: { Accept: "application/json" } });
    let body = {};
    try { body = await resp.json(); } catch (e) { body = {}; }
    if (!resp.ok) {
      flash(body.error || ("request failed: " + resp.status), true);
      return;
    }
    if (url.endsWith("/trigger")) {
      flash("Run of " + body.task + " requested; it appears under Live when it starts.", false);
    } else if (url.endsWith("/pause") || url.endsWith("/resume")) {
      window.location.reload();
    } else if (url.endsWith("/stop")) {
      flash("Stop requested.", false);
    }
  } catch (e) {
    flash("request failed: " + e, true);
  } finally {
    button.disabled = false;
  }
}

function badge(status) {
  const span = document.createElement("span");
  span.className = "badge st-" + status;
  span.textContent = status;
  return span;
}

function liveEvents() {
  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  const source = new EventSource("/api/events");
  const onEvent = (ev) => {
    const run = JSON.parse(ev.data);
    if (live.dataset.task && live.dataset.task !== run.task) return;
    const id = "live-" + run.run_id;
    let item = document.getElementById(id);
    if (!item) {
      item = document.createElement("li");
      item.id = id;
      const a = document.createElement("a");
      a.href = "/runs/" + encodeURIComponent(run.run_id);
      a.textContent = run.task + " " + run.run_id;
      a.className = "run-link";
      item.appendChild(a);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(badge("running"));
      live.prepend(item);
    }
    const status = ev.type === "run.end" ? run.status : "running";
    item.replaceChild(badge(status), item.lastChild);
    const last = document.querySelector('.last[data-task="' + CSS.escape(run.task) + '"]');
    if (last) last.replaceChildren(badge(status));
  };
  source.addEventListener("run.start", onEvent);
  source.addEventListener("run.end", onEvent);
}

function liveOutput() {
  const pre = document.getElementById("output");
  if (!pre || !pre.dataset.stream || !window.EventSource) return;
  const source = new EventSource(pre.dataset.stream);
  source.onmessage = (ev) => {
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 4;
    pre.append(ev.data + "\n");
    if (atBottom) window.scrollTo(0, document.body.scrollHeight);
  };
  source.addEventListener("end", (ev) => {
    source.close();
    const end = JSON.parse(ev.data);
    const status = document.getElementById("run-status");
    if (status) status.replaceChildren(badge(end.status));
    // The finished page shows the transcript and result.md.
    window.setTimeout(() => window.location.reload(), 800);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("button[data-post]")) {
    b.addEventListener("click", () => post(b));
  }
  liveEvents();
  liveOutput();
});
