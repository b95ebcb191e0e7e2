// "/" focuses the customer search, unless the person is typing somewhere.
document.addEventListener("keydown", (e) => {
  if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
  const box = document.querySelector("[data-hotkey='/']");
  if (box) { e.preventDefault(); box.focus(); box.select(); }
});
