// New batch: audio drag-and-drop and upload progress; the form still works without JS.
import { makeDropzone, sendForm } from "./xhr.js";

const form = document.querySelector("[data-job-new]");
if (form) {
  const input = form.querySelector('input[type="file"]');
  const zone = form.querySelector("[data-dropzone]");
  const bar = form.querySelector("[data-upload-progress]");
  const status = form.querySelector("[data-upload-status]");
  let dropped = null;

  makeDropzone(zone, input, (files) => {
    dropped = files[0];
    status.textContent = dropped.name;
    // A dropped file goes into the (required) input itself, so the browser's own check and a
    // plain form submission see it too.
    if (input.files[0] !== dropped) {
      const dt = new DataTransfer();
      dt.items.add(dropped);
      input.files = dt.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });
  const all = form.querySelector("[data-select-all]");
  if (all) all.addEventListener("click", () => form.querySelectorAll('input[name="templates"]').forEach((c) => { c.checked = true; }));

  // An error stays (in the error style) until the next try; the upload bar is hidden again so
  // a full bar never sits above it.
  const showError = (text) => {
    bar.hidden = true;
    status.className = "alert alert-error";
    status.setAttribute("role", "alert");
    status.textContent = text;
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.className = "small muted";
    status.removeAttribute("role");
    const data = new FormData(form);
    if (dropped && !input.files.length) data.set("audio", dropped);
    bar.hidden = false;
    form.querySelector('button[type="submit"]').disabled = true;
    try {
      const { status: code, body } = await sendForm(form.action || window.location.href, data, {
        onProgress: (f) => {
          bar.firstElementChild.style.setProperty("--value", `${Math.round(f * 100)}%`);
          bar.setAttribute("aria-valuenow", String(Math.round(f * 100)));
        },
      });
      if (code === 201 && body.url) {
        window.location.assign(body.url);
        return;
      }
      showError((body.errors || [form.dataset.msgFailed]).join(" "));
    } catch {
      showError(form.dataset.msgNetwork);
    }
    form.querySelector('button[type="submit"]').disabled = false;
  });
}

// Before starting: what the batch costs in render minutes against what is left this month, and
// when it should be ready (the queue ahead of it and the team's recent pace, from the server).
const estimate = document.querySelector("[data-estimate]");
if (form && estimate) {
  const e = estimate.dataset;
  const input = form.querySelector('input[name="audio"]');
  const sample = form.querySelector('input[name="sample_voice"]');
  const cost = estimate.querySelector("[data-estimate-cost]");
  const eta = estimate.querySelector("[data-estimate-eta]");
  const lang = document.documentElement.lang || undefined;
  let audioSeconds = 0;
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_m, k) => values[k]);
  const minutes = (s) => { const m = s / 60; return m < 10 ? m.toFixed(1) : String(Math.round(m)); };

  const update = () => {
    const seconds = input.files.length ? audioSeconds : (sample && sample.checked ? Number(e.sampleSeconds) : 0);
    const n = form.querySelectorAll('input[name="templates"]:checked').length;
    if (!seconds || !n) {
      cost.textContent = e.msgIdle;
      cost.className = "";
      eta.textContent = "";
      return;
    }
    const need = seconds * n;
    const left = Number(e.secondsLeft);
    const over = need > left;
    cost.textContent = fill(over ? e.msgOver : e.msgCost, { cost: minutes(need), left: minutes(left) });
    cost.className = over ? "alert alert-error" : "";
    const parallel = Math.max(1, Number(e.parallel));
    const pace = Number(e.pace);
    const wait = (Number(e.ahead) * pace) / parallel;
    const total = wait + Math.ceil(n / parallel) * seconds * pace;
    const ready = new Date(Date.now() + total * 1000);
    eta.textContent = over ? "" : fill(e.msgEta, {
      time: ready.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" }),
      minutes: String(Math.max(1, Math.ceil(total / 60))),
    });
  };

  const measure = () => {
    if (!input.files.length) { audioSeconds = 0; update(); return; }
    const url = URL.createObjectURL(input.files[0]);
    const probe = new Audio();
    probe.preload = "metadata";
    probe.addEventListener("loadedmetadata", () => { audioSeconds = probe.duration || 0; URL.revokeObjectURL(url); update(); }, { once: true });
    probe.addEventListener("error", () => { audioSeconds = 0; URL.revokeObjectURL(url); update(); }, { once: true });
    probe.src = url;
  };
  input.addEventListener("change", measure);
  form.addEventListener("change", (ev) => { if (ev.target !== input) update(); });
  form.addEventListener("click", (ev) => { if (ev.target.closest("[data-select-all]")) update(); });
  measure();
}
