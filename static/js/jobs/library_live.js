// Template library: each card follows its template's preparation live over a websocket
// (/ws/teams/<id>/templates/); the server draws the card, in this page's language.
const root = document.querySelector("[data-library-live]");
if (root && "WebSocket" in window) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${window.location.host}${root.dataset.libraryLive}`;
  let delay = 1000;
  let socket = null;

  const unready = () => [...document.querySelectorAll("[data-template-id]")]
    .filter((c) => c.dataset.prep !== "ready" && c.dataset.prep !== "failed")
    .map((c) => c.dataset.templateId);

  const onTemplate = (m) => {
    const card = document.querySelector(`[data-template-id="${m.id}"]`);
    if (!card) return;  // not on this page (another filter, or another page of results)
    card.outerHTML = m.card_html;
  };

  const connect = () => {
    const ws = new WebSocket(url);
    socket = ws;
    ws.addEventListener("open", () => {
      delay = 1000;
      const ids = unready();
      if (ids.length) ws.send(JSON.stringify({ type: "refresh", ids }));
    });
    ws.addEventListener("message", (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "template") onTemplate(m);
    });
    ws.addEventListener("close", (e) => {
      if (e.code === 4404) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  // Cards added by an upload on this page may have changed before they were inserted.
  document.addEventListener("mp:templates-added", () => {
    const ids = unready();
    if (socket && socket.readyState === WebSocket.OPEN && ids.length) socket.send(JSON.stringify({ type: "refresh", ids }));
  });
  connect();
}
