// Loaded in <head> of every page (no inline scripts: the Content-Security-Policy allows only
// scripts from this origin). Marks the page as scripted, and selects a read-only secret (a new
// API key, a share link) when it gets focus, so it can be copied at once.
document.documentElement.classList.replace("no-js", "js");
document.addEventListener("focusin", (event) => {
  if (event.target instanceof HTMLInputElement && event.target.hasAttribute("data-select-on-focus")) {
    event.target.select();
  }
});
