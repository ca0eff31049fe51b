// Template library: drag-and-drop several videos; one XHR per file with its own progress bar.
import { makeDropzone, sendForm } from "./xhr.js";

const form = document.querySelector("[data-template-upload]");
if (form) {
  const input = form.querySelector('input[type="file"]');
  input.multiple = true;
  const list = form.querySelector("[data-upload-list]");
  const zone = form.querySelector("[data-dropzone]");
  let pending = null;

  const row = (file) => {
    const li = document.createElement("li");
    li.className = "upload-item";
    const label = document.createElement("span");
    label.textContent = file.name;
    const bar = document.createElement("div");
    bar.className = "progress";
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", file.name);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.innerHTML = '<div class="progress-bar"></div>';
    const status = document.createElement("span");
    status.className = "small muted";
    li.append(label, bar, status);
    list.append(li);
    return { li, bar, status };
  };

  const uploadOne = async (file) => {
    const ui = row(file);
    const data = new FormData(form);
    data.delete("file");
    data.set("file", file);
    try {
      const { status, body } = await sendForm(form.action, data, {
        onProgress: (f) => {
          ui.bar.firstElementChild.style.setProperty("--value", `${Math.round(f * 100)}%`);
          ui.bar.setAttribute("aria-valuenow", String(Math.round(f * 100)));
        },
      });
      if (status === 201) {
        ui.status.textContent = "✓";
        ui.li.classList.add("is-done");
      } else {
        ui.status.textContent = (body.errors || ["Upload failed"]).join(" ");
        ui.li.classList.add("is-error");
        ui.status.setAttribute("role", "alert");
      }
      return status === 201;
    } catch {
      ui.status.textContent = "Network error";
      return false;
    }
  };

  const uploadAll = async (files) => {
    const results = [];
    for (const file of files) results.push(await uploadOne(file));  // one at a time keeps the disk calm
    if (results.some(Boolean)) setTimeout(() => window.location.reload(), 800);
  };

  makeDropzone(zone, input, (files) => { pending = Array.from(files); });
  zone.addEventListener("drop", () => { if (pending) { uploadAll(pending); pending = null; } });
  form.addEventListener("submit", (e) => {
    if (!input.files.length && !pending) return;
    e.preventDefault();
    uploadAll(pending || Array.from(input.files));
    pending = null;
  });
}
