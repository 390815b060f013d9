// triaged worklist: live rows over Server-Sent Events, acknowledging
// without a reload, alert ages that keep counting. No inline script: the
// page's Content-Security-Policy allows scripts from this origin only.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const body = document.body;

  function fillCSRF(root) {
    root.querySelectorAll('input[name="csrf"]').forEach(function (i) { i.value = csrf; });
  }

  function age(ms) {
    const d = Date.now() - ms;
    if (d < 60000) return "just now";
    if (d < 3600000) return Math.floor(d / 60000) + " min";
    if (d < 48 * 3600000) {
      const m = Math.floor(d / 60000) % 60;
      return Math.floor(d / 3600000) + " h " + (m < 10 ? "0" : "") + m + " min";
    }
    return Math.floor(d / 86400000) + " days";
  }
  function tickAges() {
    document.querySelectorAll(".age[data-at]").forEach(function (td) {
      td.textContent = age(Number(td.dataset.at));
    });
  }
  setInterval(tickAges, 15000);

  // Acknowledge without leaving the page; the row changes when the
  // acknowledgement comes back from the stream.
  document.addEventListener("submit", function (ev) {
    const f = ev.target;
    if (!f.classList || !f.classList.contains("ackform")) return;
    ev.preventDefault();
    const b = f.querySelector("button");
    b.disabled = true;
    b.textContent = "Acknowledging…";
    fetch(f.action, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
      body: "csrf=" + encodeURIComponent(csrf)
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      if (body.dataset.page === "film") {
        const box = document.getElementById("ackbox");
        if (box) box.textContent = "✓ Acknowledged";
      }
    }).catch(function (e) {
      b.disabled = false;
      b.textContent = "Acknowledge (failed: " + e.message + ", retry)";
    });
  });

  if (body.dataset.page !== "list") return;

  const tbody = document.getElementById("rows");
  const live = document.getElementById("live");
  const filter = {
    tab: body.dataset.tab, priority: body.dataset.priority,
    since: Number(body.dataset.since), ack: body.dataset.ack
  };

  let na = Number(document.getElementById("na").textContent);
  function setCount(uc, n) {
    if (n !== undefined && n !== null) na = Number(n);
    document.getElementById("uc").textContent = uc;
    document.getElementById("na").textContent = na;
    document.title = (uc > 0 ? "(" + uc + ") " : "") + "triaged worklist" + (na > 0 ? " · " + na + " not assessable" : "");
  }
  function matches(m) {
    if (m.tab !== filter.tab) return false;
    if (filter.priority && m.priority !== filter.priority) return false;
    if (filter.since > 0 && m.at < Date.now() - filter.since) return false;
    if (filter.ack === "no" && !(m.alerted && !m.acked)) return false;
    if (filter.ack === "yes" && !m.acked) return false;
    return true;
  }
  // Worklist order: priority rank, then newest first.
  function before(m, tr) {
    const r = Number(tr.dataset.rank), at = Number(tr.dataset.at);
    return m.rank < r || (m.rank === r && m.at > at);
  }
  function upsert(m) {
    const old = document.getElementById("r-" + m.key);
    if (old) old.remove();
    if (!matches(m)) {
      if (old) {
        const total = document.getElementById("total");
        total.textContent = Math.max(0, Number(total.textContent) - 1);
        document.getElementById("shown").textContent = tbody.children.length;
      }
      return;
    }
    const t = document.createElement("template");
    t.innerHTML = m.html.trim();
    const tr = t.content.firstElementChild;
    fillCSRF(tr);
    let next = null;
    for (const row of tbody.children) {
      if (before(m, row)) { next = row; break; }
    }
    tbody.insertBefore(tr, next);
    if (!old) {
      const total = document.getElementById("total");
      total.textContent = Number(total.textContent) + 1;
      tr.classList.add("fresh");
    }
    document.getElementById("shown").textContent = tbody.children.length;
  }
  function resync() {
    fetch("/rows" + location.search, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      const total = r.headers.get("Triaged-Total"), uc = r.headers.get("Triaged-Unacked-Critical"),
        n = r.headers.get("Triaged-Not-Assessable");
      return r.text().then(function (html) {
        tbody.innerHTML = html;
        fillCSRF(tbody);
        document.getElementById("shown").textContent = tbody.children.length;
        if (total !== null) document.getElementById("total").textContent = total;
        if (uc !== null) setCount(Number(uc), n);
      });
    }).catch(function () { /* the next event or reconnect retries */ });
  }

  let wasReady = null;
  const es = new EventSource("/events");
  es.addEventListener("hello", function (e) {
    const m = JSON.parse(e.data);
    live.textContent = "on";
    setCount(m.uc, m.na);
    // A reconnect, or a page served before the history was replayed,
    // may have missed rows.
    if (wasReady !== null || !m.ready) resync();
    wasReady = m.ready;
  });
  es.addEventListener("ready", function (e) {
    const m = JSON.parse(e.data);
    setCount(m.uc, m.na);
    resync();
  });
  es.addEventListener("row", function (e) {
    const m = JSON.parse(e.data);
    upsert(m);
    setCount(m.uc, m.na);
  });
  es.onerror = function () { live.textContent = "reconnecting"; };
})();
