/* Shared portal behaviour: collapsible nav, auto-submitting selects (team and language
 * switchers), dismissible alerts, confirmations and toasts. No framework; every page works
 * without it (the selects keep a submit button for no-JS users). */
(function () {
  "use strict";

  function toast(text, level) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "alert toast alert-" + (level || "info");
    el.setAttribute("role", level === "error" ? "alert" : "status");
    var span = document.createElement("span");
    span.textContent = text;
    el.appendChild(span);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "alert-close";
    close.setAttribute("aria-label", box.getAttribute("data-dismiss-label") || "Dismiss");
    close.textContent = "\u00d7";
    close.addEventListener("click", function () { el.remove(); });
    el.appendChild(close);
    box.appendChild(el);
    // Errors stay until dismissed: a user may be away while a long batch runs.
    if (level !== "error") setTimeout(function () { el.remove(); }, 6000);
    return el;
  }

  window.mp = window.mp || {};
  window.mp.toast = toast;

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector(".nav-toggle");
    var nav = document.getElementById("site-nav");
    if (toggle && nav) {
      toggle.addEventListener("click", function () {
        var open = nav.classList.toggle("open");
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
    }

    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.form.requestSubmit) select.form.requestSubmit(); else select.form.submit();
      });
    });

    // Close an open <details> menu on outside click or Escape.
    document.addEventListener("click", function (e) {
      document.querySelectorAll("details.menu[open]").forEach(function (d) {
        if (!d.contains(e.target)) d.removeAttribute("open");
      });
    });
    document.addEventListener("keydown", function (e) {
      if (e.key !== "Escape") return;
      document.querySelectorAll("details.menu[open]").forEach(function (d) {
        d.removeAttribute("open");
        var s = d.querySelector("summary");
        if (s) s.focus();
      });
    });
  });

  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-dismiss]");
    if (btn) {
      var box = btn.closest("[data-dismissible]");
      if (box) box.remove();
    }
  });

  // <input data-select-on-focus>: the whole value is selected (a secret shown once, a link).
  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches("[data-select-on-focus]")) e.target.select();
  });

  // <button data-copy="#input-id" data-copied="Copied">: copy that input's value.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-copy]");
    if (!btn) return;
    var input = document.querySelector(btn.getAttribute("data-copy"));
    if (!input) return;
    var done = function () {
      var label = btn.textContent;
      btn.textContent = btn.getAttribute("data-copied") || label;
      btn.setAttribute("data-state", "copied");
      setTimeout(function () { btn.textContent = label; btn.removeAttribute("data-state"); }, 2000);
    };
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { if (document.execCommand("copy")) done(); });
    } else if (document.execCommand("copy")) {
      done();
    }
  });

  // <form data-confirm="Really?"> or <button data-confirm="Really?">: ask before submitting.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var submitter = e.submitter;
    var question = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });
})();
