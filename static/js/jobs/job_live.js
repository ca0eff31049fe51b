// Job page: one websocket (/ws/jobs/<id>/) updates every render's bar, the overall bar and the
// players; it reconnects with backoff and the server resends the full state on connect.
const root = document.querySelector("[data-job-live]");
if (root && "WebSocket" in window) {
  const t = document.getElementById("i18n-job").dataset;
  const announce = document.querySelector("[data-live-announce]");
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${window.location.host}${root.dataset.jobLive}`;
  const badgeClass = {
    done: "badge-ok", partial: "badge-warn", failed: "badge-error", cancelled: "badge-muted",
    expired: "badge-muted", queued: "badge-info",
  };
  let delay = 1000;
  // Job events come only when the job's status changes; the overall bar follows the renders.
  const fractions = {};

  const setBar = (el, fraction) => {
    const pct = Math.round(fraction * 100);
    el.firstElementChild.style.setProperty("--value", `${pct}%`);
    el.setAttribute("aria-valuenow", String(pct));
  };
  const setBadge = (badge, status, label) => {
    badge.className = `badge ${badgeClass[status] || "badge-running"}`;
    badge.dataset.status = status;
    badge.textContent = label;
  };

  const onRender = (m) => {
    const card = document.querySelector(`[data-render="${m.id}"]`);
    if (!card) return;
    const before = card.querySelector(".badge").dataset.status;
    setBadge(card.querySelector(".badge"), m.status, m.status_label);
    setBar(card.querySelector("[data-bar]"), m.final && m.status === "done" ? 1 : m.progress);
    fractions[m.id] = m.final ? 1 : m.progress;  // as jobs.selectors.job_progress counts them
    const values = Object.values(fractions);
    if (values.length === document.querySelectorAll("[data-render]").length) {
      setOverall(values.reduce((a, b) => a + b, 0) / values.length);
    }
    const eta = m.eta_seconds;  // 0: the pace says it is over, but it is not done yet
    const place = m.queue_position;  // queued: 0 = handed to a worker queue, n = n-th waiting
    card.querySelector("[data-eta]").textContent = place === 0 ? t.next
      : place ? t.line.replace("%s", place)
      : eta == null ? "" : (eta < 1 ? t.almost : t.left.replace("%s", eta));
    const err = card.querySelector("[data-error]");
    err.textContent = m.status === "done" ? "" : (m.error_message || "");
    err.hidden = !err.textContent;
    // Each quality note opens to what was measured and what usually helps.
    card.querySelector("[data-notes]").replaceChildren(...(m.quality_notes || []).map((n, i) => {
      const li = document.createElement("li");
      const details = document.createElement("details");
      details.className = "quality-note";
      const summary = document.createElement("summary");
      summary.className = "badge badge-warn";
      summary.textContent = n;
      const help = document.createElement("p");
      help.className = "small";
      help.textContent = (m.quality_help || [])[i] || "";
      details.append(summary, help);
      li.append(details);
      return li;
    }));
    const dl = card.querySelector("[data-download]");
    if (dl) dl.hidden = m.status !== "done";
    const compare = card.querySelector("[data-compare]");
    if (compare) compare.hidden = m.status !== "done";
    const cancel = card.querySelector("[data-cancel]");
    if (cancel) cancel.hidden = m.final;
    const retry = card.querySelector("[data-retry]");
    if (retry) retry.hidden = !(m.status === "failed" || m.status === "cancelled");
    const player = card.querySelector("[data-player]");
    if (m.status === "done" && m.video_url && !player.querySelector("video")) {
      const video = document.createElement("video");
      video.controls = true;
      video.preload = "metadata";
      video.playsInline = true;
      if (player.dataset.width) {  // the video's own shape before its metadata loads
        video.width = Number(player.dataset.width);
        video.height = Number(player.dataset.height);
      }
      video.src = m.video_url;
      player.replaceChildren(video);
    }
    updateZip();
    if ("job_eta_seconds" in m) setBatchEta(m.job_eta_seconds);
    if (!m.snapshot && before !== m.status && m.final) {
      announce.textContent = (m.status === "done" ? t.finished : t.failed).replace("%s", m.template);
    }
  };

  // The zip button is in the page from the start (hidden while nothing is done) so the first
  // finished video reveals it without a reload.
  const zip = document.querySelector("[data-zip]");
  const updateZip = () => {
    if (!zip) return;
    const done = document.querySelectorAll('[data-render] .badge[data-status="done"]').length;
    zip.hidden = done === 0;
    if (done) zip.textContent = (done === 1 ? t.zipOne : t.zipMany).replace("%s", done);
  };

  const setOverall = (fraction) => {
    setBar(document.querySelector("[data-overall]"), fraction);
    document.querySelector("[data-overall-text]").textContent = `${Math.round(fraction * 100)} %`;
  };

  // The batch's time left: set by job events and by each render's end, counted down between.
  let batchDone = null;  // ms timestamp, or null when unknown / finished
  const showBatchEta = () => {
    const el = document.querySelector("[data-job-eta]");
    const minutes = batchDone ? Math.max(1, Math.ceil((batchDone - Date.now()) / 60000)) : 0;
    el.textContent = minutes ? (minutes === 1 ? t.jobEtaOne : t.jobEtaMany).replace("%s", minutes) : "";
  };
  const setBatchEta = (seconds) => {
    batchDone = seconds ? Date.now() + seconds * 1000 : null;
    showBatchEta();
  };
  setInterval(showBatchEta, 5000);

  const onJob = (m) => {
    setOverall(m.progress);
    setBatchEta(m.final ? null : m.eta_seconds);
    const badge = document.querySelector("p.muted > .badge");
    if (badge) setBadge(badge, m.status, m.status_label);
    const cancelJob = document.querySelector("[data-cancel-job]");
    if (cancelJob) cancelJob.hidden = m.final;  // nothing left to cancel
  };

  const connect = () => {
    const ws = new WebSocket(url);
    ws.addEventListener("open", () => { delay = 1000; });
    ws.addEventListener("message", (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "render") onRender(m);
      else if (m.type === "job") onJob(m);
    });
    ws.addEventListener("close", (e) => {
      if (e.code === 4404 || e.code === 4403) return;  // not ours, gone, or no longer a member: do not hammer the server
      if (window.mp && window.mp.toast && delay > 4000) window.mp.toast(t.offline, "info");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  connect();
}
