// Template library: drag-and-drop several videos; one XHR per file with its own progress bar.
// New templates appear as cards without a reload (their preparation then updates live, see
// library_live.js), so an error next to them stays on screen until it is dismissed.
import { makeDropzone, sendForm } from "./xhr.js";

const form = document.querySelector("[data-template-upload]");
if (form) {
  const msg = form.dataset;
  const input = form.querySelector('input[type="file"]');
  input.multiple = true;
  const list = form.querySelector("[data-upload-list]");
  const zone = form.querySelector("[data-dropzone]");
  let pending = null;

  const row = (file) => {
    const li = document.createElement("li");
    li.className = "upload-item";
    const label = document.createElement("span");
    label.className = "truncate";
    label.textContent = file.name;
    const bar = document.createElement("div");
    bar.className = "progress";
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", file.name);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.innerHTML = '<div class="progress-bar"></div>';
    const status = document.createElement("span");
    status.className = "small muted upload-status";
    li.append(label, bar, status);
    list.append(li);
    return { li, bar, status };
  };

  // An error replaces the row's bar (a full bar would read as success) and stays until dismissed.
  const showError = (ui, text) => {
    ui.bar.remove();
    ui.li.classList.add("is-error");
    ui.li.setAttribute("data-dismissible", "");
    ui.status.className = "alert alert-error upload-status";
    ui.status.setAttribute("role", "alert");
    ui.status.replaceChildren();
    const icon = document.createElement("span");
    icon.className = "alert-icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = "!";
    const words = document.createElement("span");
    words.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "alert-close";
    close.setAttribute("data-dismiss", "");
    close.setAttribute("aria-label", msg.msgDismiss || "Dismiss");
    close.textContent = "\u00d7";
    ui.status.append(icon, words, close);
  };

  const addCards = (templates) => {
    let grid = document.querySelector("[data-template-grid]");
    if (!grid) {
      grid = document.createElement("div");
      grid.className = "grid-cards";
      grid.setAttribute("data-template-grid", "");
      const empty = document.querySelector("[data-template-empty]");
      if (empty) empty.replaceWith(grid);
    }
    for (const t of templates) {
      if (!t.card_html || document.querySelector(`[data-template-id="${t.id}"]`)) continue;
      grid.insertAdjacentHTML("afterbegin", t.card_html);
    }
    document.dispatchEvent(new CustomEvent("mp:templates-added"));
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
        ui.status.textContent = `\u2713 ${msg.msgDone}`;
        ui.li.classList.add("is-done");
        addCards(body.templates || []);
      } else if (status === 200 && (body.duplicates || []).length) {
        // The same bytes are already a template: point to it instead of making a copy.
        const dup = body.duplicates[0];
        ui.bar.remove();
        ui.li.classList.add("is-duplicate");
        ui.status.className = "alert alert-info upload-status";
        const link = document.createElement("a");
        link.href = dup.url;
        link.textContent = dup.message;
        ui.status.replaceChildren(link);
        const card = document.querySelector(`[data-template-id="${dup.id}"]`);
        if (card) card.classList.add("is-highlighted");
      } else {
        showError(ui, (body.errors || [msg.msgFailed]).join(" "));
      }
      return status === 201;
    } catch {
      showError(ui, msg.msgNetwork);
      return false;
    }
  };

  const uploadAll = async (files) => {
    for (const file of files) await uploadOne(file);  // one at a time keeps the disk calm
    input.value = "";
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
