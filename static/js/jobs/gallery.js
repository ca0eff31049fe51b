// Gallery: select videos for the bulk actions (the checkboxes belong to the bulk form).
const bulk = document.querySelector("[data-bulk]");
if (bulk) {
  const boxes = () => [...document.querySelectorAll('input[name="render"][form="gallery-bulk"]')];
  const count = bulk.querySelector("[data-bulk-count]");
  const actions = [...bulk.querySelectorAll('button[name="action"]')];
  const update = () => {
    const n = boxes().filter((b) => b.checked).length;
    count.textContent = n ? count.dataset.template.replace("%s", n) : "";
    actions.forEach((b) => { b.disabled = n === 0; });
  };
  bulk.querySelector("[data-bulk-all]").addEventListener("click", () => {
    const all = boxes();
    const on = !all.every((b) => b.checked);
    all.forEach((b) => { b.checked = on; });
    update();
  });
  document.addEventListener("change", (e) => { if (e.target.matches('input[name="render"]')) update(); });
  update();
}
