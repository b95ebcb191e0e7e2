// "/" focuses the customer search, unless the person is typing somewhere.
document.addEventListener("keydown", (e) => {
  if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
  const box = document.querySelector("[data-hotkey='/']");
  if (box) { e.preventDefault(); box.focus(); box.select(); }
});

// A clickable row (a feature on the customer page) follows its main link when clicked anywhere
// that is not itself a control, so keyboard users still have the real link to tab to.
document.addEventListener("click", (e) => {
  const t = e.target;
  if (!(t instanceof Element) || t.closest("a, button, input, select, textarea, summary, label")) return;
  const row = t.closest("[data-row-link]");
  const sel = window.getSelection && window.getSelection();
  if (row && sel && !sel.isCollapsed && row.contains(sel.anchorNode)) return;  // selecting text, not clicking
  const link = row && row.querySelector("a.row-link");
  if (link) link.click();
});

// Filters that apply as soon as they change (the form still has a submit button without JS).
document.addEventListener("change", (e) => {
  const t = e.target;
  if (t instanceof HTMLElement && t.matches("[data-autosubmit]") && t.form) t.form.requestSubmit();
});

// Popups. A <dialog data-popup> that htmx adds to the page opens as a modal; closing it (Esc, ×,
// Cancel) removes it. A successful action answers with the refreshed page parts and an empty main
// body, which replaces the dialog with nothing and so closes it.
document.addEventListener("htmx:load", (e) => {
  const root = e.detail.elt;
  if (!(root instanceof Element)) return;
  const dialogs = root.matches("dialog[data-popup]") ? [root] : root.querySelectorAll("dialog[data-popup]");
  for (const dialog of dialogs) {
    // One "Environment switched" popup, however many requests of the page were refused (a poll repeats).
    if (dialog.id && document.querySelectorAll(`dialog[id="${dialog.id}"]`).length > 1) { dialog.remove(); continue; }
    if (!dialog.open) dialog.showModal();
    dialog.addEventListener("close", () => dialog.remove());
  }
});
document.addEventListener("click", (e) => {
  const closer = e.target instanceof Element && e.target.closest("[data-close]");
  if (closer) closer.closest("dialog")?.close();
});
// A form answered with 422 (invalid input) or 409 (changed meanwhile) carries its message: show it.
document.addEventListener("htmx:beforeSwap", (e) => {
  const status = e.detail.xhr.status;
  if (status === 422 || status === 409) {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});

// A "Copy" button copies the value of the field it names (data-copy="#id") and says so.
document.addEventListener("click", (e) => {
  const button = e.target instanceof Element && e.target.closest("[data-copy]");
  if (!button) return;
  const field = document.querySelector(button.dataset.copy);
  if (!field) return;
  field.select();
  navigator.clipboard?.writeText(field.value).then(() => { button.textContent = "Copied"; }, () => {});
});

// The list's "select this page" box ticks or clears every row's box of that name.
document.addEventListener("change", (e) => {
  const t = e.target;
  if (!(t instanceof HTMLInputElement) || !t.dataset.selectAll || !t.form) return;
  for (const box of t.form.querySelectorAll(`input[type=checkbox][name="${t.dataset.selectAll}"]`)) box.checked = t.checked;
});

// The list's ticked rows: counted in its bulk bar and kept across its pages (for the same filters, in this
// tab). Sent with the bulk form, so a selection can span pages; without JS a selection is one page's rows.
(() => {
  const form = document.querySelector("form[data-keep-selection]");
  if (!form) return;
  const key = `ticked:${form.dataset.keepSelection}`;
  const ticked = new Set(JSON.parse(sessionStorage.getItem(key) || "[]"));
  const boxes = () => form.querySelectorAll("input[type=checkbox][name=ids]");
  const show = () => {
    const out = form.querySelector("[data-ticked-count]");
    if (out) out.textContent = ticked.size ? `${ticked.size.toLocaleString("en")} ticked` : "None ticked";
    const clear = form.querySelector("[data-clear-ticked]");
    if (clear) clear.hidden = !ticked.size;
  };
  const read = () => {
    for (const box of boxes()) box.checked ? ticked.add(box.value) : ticked.delete(box.value);
    sessionStorage.setItem(key, JSON.stringify([...ticked]));
    show();
  };
  for (const box of boxes()) if (ticked.has(box.value)) box.checked = true;
  show();
  // After the "select this page" box has ticked its rows (its handler runs on the document, after this one).
  form.addEventListener("change", () => setTimeout(read));
  form.querySelector("[data-clear-ticked]")?.addEventListener("click", () => {
    for (const box of boxes()) box.checked = false;
    read();
  });
  form.addEventListener("submit", () => {
    const here = new Set([...boxes()].map((box) => box.value));
    for (const id of ticked) {
      if (here.has(id)) continue;
      const input = Object.assign(document.createElement("input"), { type: "hidden", name: "ids", value: id });
      form.append(input);
    }
  });
})();

// Busy state. While an htmx request is out, the control that sent it is disabled and marked (its form's
// submit buttons, or the button or link itself), and the region it will change says aria-busy; a plain form
// submit marks its button the same way and ignores a second click. Polls and live previews typed into an
// input mark their region only: the person keeps typing.
const busyControls = (elt, submitter) => {
  if (elt instanceof HTMLFormElement) {
    const own = [...elt.querySelectorAll("button:not([type=button]), input[type=submit]")];
    return submitter && !own.includes(submitter) ? [...own, submitter] : own;
  }
  return elt instanceof Element && elt.matches("button, a.btn, input[type=submit]") ? [elt] : [];
};
const markBusy = (controls) => {
  for (const c of controls) {
    if (c.dataset.busy) continue;
    c.dataset.busy = "1";
    c.setAttribute("aria-disabled", "true");
    if ("disabled" in c) c.disabled = true;
  }
};
const unmarkBusy = (controls) => {
  for (const c of controls) {
    if (!c.dataset.busy) continue;
    delete c.dataset.busy;
    c.removeAttribute("aria-disabled");
    if ("disabled" in c) c.disabled = false;
  }
};
document.addEventListener("htmx:beforeRequest", (e) => {
  const { elt, target, requestConfig } = e.detail;
  const trigger = requestConfig?.triggeringEvent;
  // Only a click or a submit disables what sent it: a live preview (keyup, change) or a poll must not.
  const controls = ["click", "submit"].includes(trigger?.type) ? busyControls(elt, trigger.submitter) : [];
  const region = target instanceof Element ? target : null;
  region?.setAttribute("aria-busy", "true");
  document.body.classList.add("is-busy");
  // Disabled after htmx has read the form: a disabled button's name and value would not be sent.
  setTimeout(() => markBusy(controls));
  e.detail.xhr.addEventListener("loadend", () => {
    unmarkBusy(controls);
    region?.removeAttribute("aria-busy");
    if (!document.querySelector("[aria-busy=true]")) document.body.classList.remove("is-busy");
  });
});
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (!(form instanceof HTMLFormElement) || e.defaultPrevented || form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;
  if (form.dataset.submitting) { e.preventDefault(); return; }  // a second click while the page loads
  if ((form.method || "get").toLowerCase() !== "post") return;
  form.dataset.submitting = "1";
  form.setAttribute("aria-busy", "true");
  const controls = e.submitter ? [e.submitter] : busyControls(form);
  setTimeout(() => markBusy(controls));
  // Back to the page from the browser's cache: usable again.
  window.addEventListener("pageshow", () => { delete form.dataset.submitting; form.removeAttribute("aria-busy"); unmarkBusy(controls); }, { once: true });
});

// Focus returns to the control that opened a popup when it closes (or to the same control redrawn since).
let popupOpener = null;
document.addEventListener("htmx:beforeRequest", (e) => {
  const elt = e.detail.elt;
  if (elt instanceof Element && elt.matches("a, button") && !elt.closest("dialog")) popupOpener = elt;
});
document.addEventListener("htmx:load", (e) => {
  const root = e.detail.elt;
  if (!(root instanceof Element) || !root.matches("dialog[data-popup]")) return;
  const opener = popupOpener;
  const openerId = opener?.id;
  const openerHref = opener?.getAttribute("href");
  root.addEventListener("close", () => {
    let back = opener && opener.isConnected ? opener : null;
    if (!back && openerId) back = document.getElementById(openerId);
    if (!back && openerHref) back = document.querySelector(`a[href="${CSS.escape(openerHref)}"]`);
    back?.focus();
  });
});

// Esc closes an open menu (row, settings, user) and gives the focus back to its button, and cancels an
// inline edit. A popup's own Esc (the <dialog>'s) is left to the browser.
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  const t = e.target instanceof Element ? e.target : null;
  const edit = t?.closest("form.inline-edit");
  const cancel = edit?.querySelector("[data-cancel-edit]");
  if (cancel) { e.preventDefault(); cancel.click(); return; }
  const open = [...document.querySelectorAll("details[open]")].filter((d) => d.querySelector(".menu"));
  if (!open.length) return;
  for (const d of open) {
    d.open = false;
    if (d.contains(t)) d.querySelector("summary")?.focus();
  }
  e.preventDefault();
});

// Metadata rows: "Add a row" adds an empty key/value row (without JS the form always has two empty rows).
document.addEventListener("htmx:load", (e) => {
  const root = e.detail.elt;
  if (!(root instanceof Element)) return;
  for (const button of root.querySelectorAll("[data-add-row]")) button.hidden = false;
});
for (const button of document.querySelectorAll("[data-add-row]")) button.hidden = false;
document.addEventListener("click", (e) => {
  const button = e.target instanceof Element && e.target.closest("[data-add-row]");
  if (!button) return;
  const rows = button.closest("fieldset")?.querySelector(".kv-rows");
  const last = rows?.querySelector(".kv-row:last-child");
  if (!last) return;
  const n = rows.querySelectorAll(".kv-row").length + 1;
  const row = last.cloneNode(true);
  for (const input of row.querySelectorAll("input")) {
    input.value = "";
    input.removeAttribute("autofocus");
    input.id = input.id.replace(/\d+$/, String(n));
  }
  for (const label of row.querySelectorAll("label")) {
    label.htmlFor = label.htmlFor.replace(/\d+$/, String(n));
    label.textContent = label.textContent.replace(/\d+$/, String(n));
  }
  rows.append(row);
  row.querySelector("input")?.focus();
});
