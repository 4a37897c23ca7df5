// @ts-check
// Building DOM: elements are made with createElement and text nodes only (never
// innerHTML), so API data can never become markup; and the formatting of values for it.

/**
 * What h() and mount() take as children: nodes, text, numbers and nested lists; null,
 * undefined, true and false are skipped (so `cond ? h(…) : null` and `cond && h(…)` work).
 * @typedef {Node | string | number | boolean | null | undefined | Child[]} Child
 */

/**
 * Attributes for h() and s(): strings and numbers become attributes (`true` an empty one;
 * null, undefined and false are left out), `on*` functions become listeners, `class` may be
 * a list, and the properties in PROPS are set as properties.
 * @typedef {{
 *   class?: string | (string | false | null | undefined)[],
 *   onclick?: (event: MouseEvent) => unknown,
 *   onsubmit?: (event: SubmitEvent) => unknown,
 *   onchange?: (event: Event) => unknown,
 *   oninput?: (event: Event) => unknown,
 *   onkeydown?: (event: KeyboardEvent) => unknown,
 *   [name: string]: unknown,
 * }} Attrs
 */

const PROPS = new Set(["value", "checked", "disabled", "readOnly", "selected", "multiple", "indeterminate"]);
const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * @param {Child[]} children
 * @param {(Node | string | number)[]} [out]
 */
function flatten(children, out = []) {
  for (const child of children) {
    if (Array.isArray(child)) flatten(child, out);
    else if (child !== null && child !== undefined && child !== false && child !== true) out.push(child);
  }
  return out;
}

/** @param {Node | string | number} child */
function toNode(child) {
  return child instanceof Node ? child : document.createTextNode(String(child));
}

/**
 * Append children (nodes, strings, numbers, nested arrays; null/false are skipped).
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children
 */
export function append(el, ...children) {
  for (const child of flatten(children)) el.appendChild(toNode(child));
  return el;
}

/**
 * Replace an element's children.
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children
 */
export function mount(el, ...children) {
  el.replaceChildren(...flatten(children).map(toNode));
  return el;
}

/**
 * Set attributes and listeners now; return the property writes, for after the children.
 * @param {Element} el
 * @param {Attrs | null | undefined} attrs
 * @param {boolean} svg
 */
function setAttrs(el, attrs, svg) {
  /** @type {(() => void)[]} */
  const props = [];
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), /** @type {EventListener} */ (value));
    } else if (key === "class") {
      const cls = Array.isArray(value) ? value.filter(Boolean).join(" ") : String(value);
      if (cls) el.setAttribute("class", cls);
    } else if (!svg && PROPS.has(key)) {
      props.push(() => Reflect.set(el, key, value));
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
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const props = setAttrs(el, attrs, false);
  append(el, ...children);
  for (const apply of props) apply();
  return el;
}

/**
 * The same for SVG elements (geometry is set as attributes, which CSP allows).
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function s(tag, attrs, ...children) {
  const el = /** @type {SVGElementTagNameMap[K]} */ (document.createElementNS(SVG_NS, tag));
  const props = setAttrs(el, attrs, true);
  append(el, ...children);
  for (const apply of props) apply();
  return el;
}

let uidCounter = 0;

/** A document-unique id: `${prefix}-1`, `${prefix}-2`, … */
export function uid(prefix = "f") {
  uidCounter += 1;
  return `${prefix}-${uidCounter}`;
}

/** @param {string | null | undefined} value an ISO timestamp */
export function fmtDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/** @param {unknown} value */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** @param {unknown} id */
export function shortId(id) {
  const text = String(id ?? "");
  return text.length > 12 ? `${text.slice(0, 8)}…` : text;
}