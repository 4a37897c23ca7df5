// Small DOM helpers: elements are built with createElement and text nodes only
// (never innerHTML), so API data can never become markup.

const PROPS = new Set(["value", "checked", "disabled", "readOnly", "selected", "multiple", "indeterminate"]);
const SVG_NS = "http://www.w3.org/2000/svg";

function flatten(children, out = []) {
  for (const child of children) {
    if (Array.isArray(child)) flatten(child, out);
    else if (child !== null && child !== undefined && child !== false && child !== true) out.push(child);
  }
  return out;
}

function toNode(child) {
  return child instanceof Node ? child : document.createTextNode(String(child));
}

/** Append children (nodes, strings, numbers, nested arrays; null/false are skipped). */
export function append(el, ...children) {
  for (const child of flatten(children)) el.appendChild(toNode(child));
  return el;
}

/** Replace an element's children. */
export function mount(el, ...children) {
  el.replaceChildren(...flatten(children).map(toNode));
  return el;
}

function setAttrs(el, attrs, svg) {
  const props = [];
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "ref" && typeof value === "function") {
      props.push(() => value(el));
    } else if (key === "class") {
      const cls = Array.isArray(value) ? value.filter(Boolean).join(" ") : String(value);
      if (cls) el.setAttribute("class", cls);
    } else if (!svg && PROPS.has(key)) {
      props.push(() => { el[key] = value; });
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  return props;
}

/**
 * h("button", {class: "primary", onclick: fn, "data-testid": "x"}, "Save")
 * Attributes are set with setAttribute, `on*` functions become listeners, and
 * value/checked/disabled/readOnly/selected are set as properties after the children
 * (so a <select>'s value finds its options).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const props = setAttrs(el, attrs, false);
  append(el, ...children);
  for (const apply of props) apply();
  return el;
}

/** The same for SVG elements (geometry is set as attributes, which CSP allows). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  const props = setAttrs(el, attrs, true);
  append(el, ...children);
  for (const apply of props) apply();
  return el;
}

let uidCounter = 0;
export function uid(prefix = "f") {
  uidCounter += 1;
  return `${prefix}-${uidCounter}`;
}

/** A labelled form control: <div class="field"><label for=id>…</label>control hint</div>. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid("field");
  const children = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    children.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, children);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status", "aria-live": "polite" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

/** Lines describing an error's details: [{field, message}] or [{path, reason}]. */
export function detailLines(details) {
  if (!Array.isArray(details)) return [];
  return details.map((d) => {
    if (d && typeof d === "object") {
      const where = d.field ?? d.path ?? "";
      const what = d.message ?? d.reason ?? "";
      return where && what ? `${where}: ${what}` : String(where || what || JSON.stringify(d));
    }
    return String(d);
  });
}

/** Fill an error element (class error, role alert) with an error's message and details. */
export function showError(el, err, prefix) {
  if (!err) {
    el.hidden = true;
    mount(el);
    return el;
  }
  const message = typeof err === "string" ? err : err.message || "Something went wrong";
  const lines = typeof err === "string" ? [] : detailLines(err.details);
  mount(
    el,
    h("p", {}, prefix ? `${prefix}: ${message}` : message),
    lines.length ? h("ul", {}, lines.map((line) => h("li", {}, line))) : null,
  );
  el.hidden = false;
  return el;
}

/** A new error box; hidden when there is no error. */
export function errorBox(err, attrs = {}) {
  const el = h("div", { class: "error", role: "alert", ...attrs });
  return showError(el, err);
}

/** A short status message (e.g. "Saved") that can be set and cleared. */
export function statusLine(attrs = {}) {
  const el = h("span", { class: "status-line", role: "status", "aria-live": "polite", ...attrs });
  el.hidden = true;
  el.set = (text) => {
    el.textContent = text || "";
    el.hidden = !text;
  };
  return el;
}

export function fmtDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** Parse JSON typed by a person; returns {value} or {error}. */
export function parseJSON(text, { allowEmpty = false, object = true } = {}) {
  if (!text.trim()) return allowEmpty ? { value: null } : { error: "Enter some JSON" };
  try {
    const value = JSON.parse(text);
    if (object && (value === null || typeof value !== "object" || Array.isArray(value))) {
      return { error: "The JSON must be an object ({…})" };
    }
    return { value };
  } catch (err) {
    return { error: `Invalid JSON: ${err.message}` };
  }
}

export function badge(text, cls = "", attrs = {}) {
  return h("span", { class: ["badge", cls], ...attrs }, text);
}

export function stateBadge(state, attrs = {}) {
  return badge(state || "unknown", `state-${state}`, attrs);
}

export function statusBadge(status, attrs = {}) {
  return badge(status || "unknown", `status-${status}`, attrs);
}

/** A table inside a horizontally scrolling wrapper. */
export function table(headers, rows, attrs = {}) {
  const tbody = h("tbody", {}, rows);
  const el = h(
    "div",
    { class: "table-wrap" },
    h("table", attrs, h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))), tbody),
  );
  el.tbody = tbody;
  return el;
}

/**
 * Update a <tbody> in place: rows whose data did not change are kept (focus and open
 * confirm steps survive an auto-refresh), changed rows are rebuilt.
 */
export function syncRows(tbody, items, key, render, empty) {
  const old = new Map();
  for (const row of Array.from(tbody.children)) if (row.dataset.key) old.set(row.dataset.key, row);
  const rows = items.map((item) => {
    const k = String(key(item));
    const sig = JSON.stringify(item);
    const prev = old.get(k);
    if (prev && prev.dataset.sig === sig) return prev;
    const row = render(item);
    row.dataset.key = k;
    row.dataset.sig = sig;
    return row;
  });
  if (!rows.length && empty) rows.push(empty);
  const current = Array.from(tbody.children);
  if (current.length === rows.length && current.every((row, i) => row === rows[i])) return;
  const focused = document.activeElement;
  mount(tbody, rows);
  if (focused && tbody.contains(focused)) focused.focus();
}

export function emptyRow(colspan, text) {
  return h("tr", { class: "empty" }, h("td", { colspan }, text));
}

/**
 * Tabs: [{key, label, testid}] → {el, panel, select(key)}. onSelect(key, panel) runs
 * when a tab is shown; the panel element is shared.
 */
export function tabs(items, onSelect) {
  const panel = h("div", { class: "tab-panel", role: "tabpanel", tabindex: "-1" });
  panel.id = uid("panel");
  const buttons = new Map();
  const select = (key) => {
    for (const [k, btn] of buttons) {
      const on = k === key;
      btn.setAttribute("aria-selected", on ? "true" : "false");
      btn.tabIndex = on ? 0 : -1;
      btn.classList.toggle("active", on);
      if (on) panel.setAttribute("aria-labelledby", btn.id);
    }
    onSelect(key, panel);
  };
  const keys = items.map((item) => item.key);
  const list = h(
    "div",
    { class: "tabs", role: "tablist" },
    items.map((item) => {
      const btn = h(
        "button",
        {
          type: "button",
          role: "tab",
          id: uid("tab"),
          "aria-controls": panel.id,
          "data-testid": item.testid || `tab-${item.key}`,
          onclick: () => select(item.key),
          onkeydown: (event) => {
            const i = keys.indexOf(item.key);
            let next = null;
            if (event.key === "ArrowRight") next = keys[(i + 1) % keys.length];
            if (event.key === "ArrowLeft") next = keys[(i - 1 + keys.length) % keys.length];
            if (next) {
              event.preventDefault();
              select(next);
              buttons.get(next).focus();
            }
          },
        },
        item.label,
      );
      buttons.set(item.key, btn);
      return btn;
    }),
  );
  return { el: h("div", { class: "tabs-wrap" }, list, panel), panel, select };
}

/**
 * A button with a confirm step: the first click shows "confirmLabel" (testid
 * `<testid>-confirm`) and Cancel (`<testid>-cancel`) in its place.
 */
export function confirmButton({ label, confirmLabel, question, testid, cls = "", action }) {
  const wrap = h("span", { class: "confirm-wrap" });
  const showInitial = () => {
    mount(wrap, h("button", { type: "button", class: cls, "data-testid": testid, onclick: showConfirm }, label));
  };
  const showConfirm = () => {
    const yes = h("button", {
      type: "button",
      class: "danger",
      "data-testid": `${testid}-confirm`,
      onclick: async () => {
        yes.disabled = true;
        try {
          await action();
        } finally {
          if (wrap.isConnected) showInitial();
        }
      },
    }, confirmLabel || `Yes, ${label.toLowerCase()}`);
    const no = h("button", { type: "button", class: "secondary", "data-testid": `${testid}-cancel`, onclick: () => { showInitial(); wrap.firstChild.focus(); } }, "Cancel");
    mount(wrap, question ? h("span", { class: "confirm-question" }, question) : null, yes, no);
    yes.focus();
  };
  showInitial();
  return wrap;
}

/** A copy button for a textarea/input: clipboard API, else select the text for Ctrl+C. */
export function copyButton(target, attrs = {}, label = "Copy") {
  const btn = h("button", {
    type: "button",
    class: "secondary",
    ...attrs,
    onclick: async () => {
      const text = target.value ?? target.textContent;
      try {
        if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
        await navigator.clipboard.writeText(text);
        btn.textContent = "Copied";
      } catch {
        target.focus();
        if (target.select) target.select();
        btn.textContent = "Selected — press Ctrl+C";
      }
      setTimeout(() => { btn.textContent = label; }, 2000);
    },
  }, label);
  return btn;
}

/** A readonly textarea whose text is both its value and its textContent. */
export function readonlyText(text, attrs = {}) {
  return h("textarea", { readonly: true, spellcheck: "false", class: "code", rows: 3, ...attrs }, text);
}

export function progressBar(done, total, { testid = "progress", percentTestid, complete = false } = {}) {
  const safeTotal = total > 0 ? total : 0;
  const value = safeTotal ? Math.min(done, safeTotal) : (complete ? 1 : 0);
  const pct = safeTotal ? Math.round((value / safeTotal) * 100) : (complete ? 100 : 0);
  const bar = h("progress", {
    "data-testid": testid,
    max: safeTotal || 1,
    value,
    "aria-label": `${done} of ${total} steps`,
  });
  return h(
    "span",
    { class: "progress" },
    bar,
    h("span", { class: "progress-text" }, `${done}/${total}`),
    h("span", { class: "progress-pct", "data-testid": percentTestid || `${testid}-percent` }, `${pct}%`),
  );
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, children);
}

export function shortId(id) {
  const text = String(id ?? "");
  return text.length > 12 ? `${text.slice(0, 8)}…` : text;
}
