// @ts-check
// The console's building blocks: cards, badges, tables that refresh in place, tabs,
// buttons with a confirm step, copy buttons, progress bars.

import { h, mount, uid } from "./dom.js";
/** @import { Attrs, Child } from "./dom.js" */

/** A "Loading…" line with a spinner, announced to screen readers. */
export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status", "aria-live": "polite" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

/**
 * @param {string} text
 * @param {string} [cls]
 * @param {Attrs} [attrs]
 */
export function badge(text, cls = "", attrs = {}) {
  return h("span", { class: ["badge", cls], ...attrs }, text);
}

/**
 * @param {string | null | undefined} state
 * @param {Attrs} [attrs]
 */
export function stateBadge(state, attrs = {}) {
  return badge(state || "unknown", `state-${state}`, attrs);
}

/**
 * @param {string | null | undefined} status
 * @param {Attrs} [attrs]
 */
export function statusBadge(status, attrs = {}) {
  return badge(status || "unknown", `status-${status}`, attrs);
}

/**
 * A table inside a horizontally scrolling wrapper; `.tbody` is its body.
 * @param {string[]} headers
 * @param {Child[]} rows
 * @param {Attrs} [attrs]
 */
export function table(headers, rows, attrs = {}) {
  const tbody = h("tbody", {}, rows);
  const el = h(
    "div",
    { class: "table-wrap" },
    h("table", attrs, h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))), tbody),
  );
  return Object.assign(el, { tbody });
}

/**
 * Update a <tbody> in place: rows whose data did not change are kept (so focus survives an
 * auto-refresh), changed rows are rebuilt.
 * @template T
 * @param {HTMLTableSectionElement} tbody
 * @param {T[]} items
 * @param {object} how
 * @param {(item: T) => string} how.key identifies an item's row across refreshes
 * @param {(item: T) => HTMLTableRowElement} how.render
 * @param {HTMLTableRowElement} [how.empty] the row shown when there are no items
 * @param {(row: HTMLTableRowElement) => boolean} [how.keep] keep this row even if its item
 *   changed (e.g. while it shows a confirm step)
 */
export function syncRows(tbody, items, { key, render, empty, keep }) {
  /** @type {Map<string, HTMLTableRowElement>} */
  const old = new Map();
  for (const row of Array.from(tbody.rows)) if (row.dataset.key) old.set(row.dataset.key, row);
  const rows = items.map((item) => {
    const k = String(key(item));
    const sig = JSON.stringify(item);
    const prev = old.get(k);
    if (prev && (prev.dataset.sig === sig || keep?.(prev))) return prev;
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
  if (focused instanceof HTMLElement && tbody.contains(focused)) focused.focus();
}

/**
 * @param {number} colspan
 * @param {string} text
 */
export function emptyRow(colspan, text) {
  return h("tr", { class: "empty" }, h("td", { colspan }, text));
}

/**
 * @typedef {object} Tab
 * @property {string} key
 * @property {string} label
 * @property {string} [testid] default `tab-<key>`
 */

/**
 * Tabs: [{key, label, testid}] → {el, panel, select(key)}. onSelect(key, panel) runs
 * when a tab is shown; the panel element is shared.
 * @param {Tab[]} items
 * @param {(key: string, panel: HTMLDivElement) => void} onSelect
 */
export function tabs(items, onSelect) {
  const panel = h("div", { class: "tab-panel", role: "tabpanel", tabindex: "-1" });
  panel.id = uid("panel");
  /** @type {Map<string, HTMLButtonElement>} */
  const buttons = new Map();
  /** @param {string} key */
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
              buttons.get(next)?.focus();
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
 * @typedef {object} ConfirmOptions
 * @property {string} label
 * @property {string} [confirmLabel] default "Yes, <label>"
 * @property {string} [question]
 * @property {string} testid
 * @property {string} [cls]
 * @property {() => Promise<unknown>} action run on the confirming click
 */

/**
 * A button with a confirm step: the first click shows "confirmLabel" (testid
 * `<testid>-confirm`) and Cancel (`<testid>-cancel`) in its place.
 * @param {ConfirmOptions} options
 */
export function confirmButton({ label, confirmLabel, question, testid, cls = "", action }) {
  const wrap = h("span", { class: "confirm-wrap" });
  const initial = () => h("button", { type: "button", class: cls, "data-testid": testid, onclick: showConfirm }, label);
  const showInitial = () => mount(wrap, initial());
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
    const no = h("button", {
      type: "button",
      class: "secondary",
      "data-testid": `${testid}-cancel`,
      onclick: () => {
        const again = initial();
        mount(wrap, again);
        again.focus();
      },
    }, "Cancel");
    mount(wrap, question ? h("span", { class: "confirm-question" }, question) : null, yes, no);
    yes.focus();
  };
  showInitial();
  return wrap;
}

/**
 * A copy button for a textarea/input: clipboard API, else select the text for Ctrl+C.
 * @param {HTMLTextAreaElement | HTMLInputElement} target
 * @param {Attrs} [attrs]
 * @param {string} [label]
 */
export function copyButton(target, attrs = {}, label = "Copy") {
  const btn = h("button", {
    type: "button",
    class: "secondary",
    ...attrs,
    onclick: async () => {
      try {
        if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
        await navigator.clipboard.writeText(target.value);
        btn.textContent = "Copied";
      } catch {
        target.focus();
        target.select();
        btn.textContent = "Selected — press Ctrl+C";
      }
      setTimeout(() => {
        btn.textContent = label;
      }, 2000);
    },
  }, label);
  return btn;
}

/**
 * A readonly textarea whose text is both its value and its textContent.
 * @param {string} text
 * @param {Attrs} [attrs]
 */
export function readonlyText(text, attrs = {}) {
  return h("textarea", { readonly: true, spellcheck: "false", class: "code", rows: 3, ...attrs }, text);
}

/**
 * A <progress> with "done/total" and a percentage beside it.
 * @param {number} done
 * @param {number} total
 * @param {{testid?: string, percentTestid?: string, complete?: boolean}} [options]
 *   complete: show 100% for a finished run with no steps
 */
export function progressBar(done, total, { testid = "progress", percentTestid, complete = false } = {}) {
  const safeTotal = Math.max(total, 0);
  const value = safeTotal ? Math.min(done, safeTotal) : complete ? 1 : 0;
  const pct = safeTotal ? Math.round((value / safeTotal) * 100) : complete ? 100 : 0;
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

/**
 * @param {string | null} title
 * @param {...Child} children
 */
export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, children);
}

/**
 * A "New …" button that shows a creation form in its place (and hides it again on Cancel or
 * after `close()`): creation forms stay out of the way under every list.
 * Test ids: the button `<testid>` (default `new-<slug of label>`), the panel `<testid>-panel`,
 * its Cancel button `<testid>-cancel`. The returned element's `open()` shows the form from
 * code (e.g. to show an error about what it edits); it returns the open panel.
 * @param {string} label e.g. "New customer"
 * @param {(close: () => void) => Child} build the form (called on each open; `close` hides it)
 * @param {{testid?: string}} [options]
 */
export function newButton(label, build, { testid } = {}) {
  const id = testid ?? `new-${label.toLowerCase().replace(/^new\s+/, "").replace(/[^a-z0-9]+/g, "-")}`;
  const wrap = h("div", { class: "new-wrap" });
  const button = h("button", { type: "button", class: "primary", "data-testid": id, "aria-expanded": "false", onclick: () => show() }, label);
  /** @type {HTMLDivElement | null} */
  let panel = null;
  const close = () => {
    panel = null;
    button.setAttribute("aria-expanded", "false");
    mount(wrap, button);
    button.focus();
  };
  const show = () => {
    if (panel) return panel;
    button.setAttribute("aria-expanded", "true");
    const cancel = h("button", { type: "button", class: "secondary", "data-testid": `${id}-cancel`, onclick: close }, "Cancel");
    const opened = h(
      "div",
      { class: "new-panel", "data-testid": `${id}-panel`, role: "group", "aria-label": label },
      h("div", { class: "new-panel-head" }, h("h3", {}, label), cancel),
      build(close),
    );
    panel = opened;
    mount(wrap, opened);
    const first = opened.querySelector("input:not([type=hidden]), select, textarea");
    if (first instanceof HTMLElement) first.focus();
    return opened;
  };
  mount(wrap, button);
  return Object.assign(wrap, { open: show });
}

/**
 * What an empty list says: what to do next, with a button and/or the curl line that does it.
 * Test id `<testid>` (default `empty-state`).
 * @param {string} text e.g. "No endpoints yet."
 * @param {{hint?: string, curl?: string, button?: Child, testid?: string}} [options]
 */
export function emptyState(text, { hint, curl, button, testid = "empty-state" } = {}) {
  const code = curl ? readonlyText(curl, { rows: Math.min(4, curl.split("\n").length + 1), "aria-label": "curl command" }) : null;
  return h(
    "div",
    { class: "empty-state", "data-testid": testid },
    h("p", { class: "empty-title" }, text),
    hint ? h("p", { class: "muted" }, hint) : null,
    button ?? null,
    code ? h("div", { class: "copy-row" }, code, copyButton(code, { "data-testid": `${testid}-copy` })) : null,
  );
}

/**
 * An id (or key) in a monospace span with a copy button beside it; never wraps mid-id.
 * The copy button copies the whole value, whatever is shown.
 * @param {string} value
 * @param {{testid?: string, short?: boolean, href?: string}} [options] short: show a long
 *   value's first 8 characters and "…" (the whole value is its title); href: the value is a link
 */
export function copyValue(value, { testid, short = false, href } = {}) {
  const shown = short && value.length > 12 ? `${value.slice(0, 8)}…` : value;
  const text = h("code", { class: "id", title: value }, shown);
  const hidden = h("input", { type: "text", value, readonly: true, class: "copy-source", tabindex: -1, "aria-hidden": "true" });
  return h(
    "span",
    { class: "copy-value", "data-testid": testid ?? null },
    href ? h("a", { href, class: "id-link" }, text) : text,
    hidden,
    copyButton(/** @type {HTMLInputElement} */ (hidden), { class: "secondary small copy", "data-testid": "copy-value", "aria-label": `Copy ${value}`, title: `Copy ${value}` }),
  );
}

/**
 * "Load more" for a list that refreshes in place: each click widens how many of the newest
 * items are read, and a refresh reads that many again, so no gap opens between pages.
 * @param {{step: number, max?: number, label: string, testid: string, reload: () => unknown}} options
 *   max: the API's largest page (1000)
 */
export function loadMore({ step, max = 1000, label, testid, reload }) {
  let limit = step;
  const button = h(
    "button",
    {
      type: "button",
      class: "secondary",
      "data-testid": testid,
      hidden: true,
      onclick: () => {
        limit = Math.min(max, limit + step);
        reload();
      },
    },
    label,
  );
  return {
    button,
    /** How many items to read. */
    get limit() {
      return limit;
    },
    /** Back to the first page (e.g. when a filter changes). */
    reset() {
      limit = step;
    },
    /** @param {string | null | undefined} cursor the reply's cursor: more exist when set */
    update(cursor) {
      button.hidden = !cursor || limit >= max;
    },
  };
}
