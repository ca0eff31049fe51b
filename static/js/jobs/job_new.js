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
