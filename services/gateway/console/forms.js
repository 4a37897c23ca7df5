// @ts-check
// Forms: labelled fields, status lines, JSON typed by a person, one way to show an error
// next to what caused it, and one way to run what a form (or an action button) does —
// disable the button, call the API, show the error from the API's envelope beside the
// form, enable the button again.

import { ApiError, isAbort } from "./api.js";
import { h, mount, uid } from "./dom.js";
/** @import { Attrs, Child } from "./dom.js" */

/**
 * A labelled form control: <div class="field"><label for=id>…</label>control hint</div>.
 * @param {Child} label
 * @param {HTMLElement} control
 * @param {string} [hint]
 */
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

/** @typedef {HTMLSpanElement & {set(text?: string): void}} StatusLine */

/**
 * A short status message (e.g. "Saved") that can be set and cleared.
 * @param {Attrs} [attrs]
 * @returns {StatusLine}
 */
export function statusLine(attrs = {}) {
  const el = h("span", { class: "status-line", role: "status", "aria-live": "polite", ...attrs });
  el.hidden = true;
  return Object.assign(el, {
    /** @param {string} [text] */
    set(text) {
      el.textContent = text || "";
      el.hidden = !text;
    },
  });
}

/**
 * Parse a JSON object typed by a person (null for empty text with allowEmpty).
 * @param {string} text
 * @param {{allowEmpty?: boolean}} [options]
 * @returns {{value: Record<string, unknown> | null, error?: undefined} | {error: string, value?: undefined}}
 */
export function parseJSON(text, { allowEmpty = false } = {}) {
  if (!text.trim()) return allowEmpty ? { value: null } : { error: "Enter some JSON" };
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { error: "The JSON must be an object ({…})" };
    }
    return { value };
  } catch (err) {
    return { error: `Invalid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** A problem with what was typed, found before calling the API; `control` gets the focus. */
export class InputError extends Error {
  /**
   * @param {string} message
   * @param {HTMLElement} [control]
   */
  constructor(message, control) {
    super(message);
    this.name = "InputError";
    this.control = control ?? null;
  }
}

/**
 * "the input is not valid" → "The input is not valid.": a plain lowercase first word is
 * capitalised (field paths and camelCase names keep their case) and a full stop is added
 * when the text has no closing punctuation.
 * @param {string} text
 */
export function sentence(text) {
  const trimmed = text.trim();
  const capital = /^[a-z]+(?![\w.:])/.test(trimmed) ? trimmed.charAt(0).toUpperCase() + trimmed.slice(1) : trimmed;
  return !capital || /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * The field (or path) a detail names and what it says is wrong there.
 * @param {unknown} detail
 * @returns {{where: string, what: string}}
 */
function partsOf(detail) {
  if (!detail || typeof detail !== "object") return { where: "", what: detail == null ? "" : String(detail) };
  /** @type {{field?: unknown, path?: unknown, message?: unknown, reason?: unknown}} */
  const d = detail;
  return { where: String(d.field ?? d.path ?? ""), what: String(d.message ?? d.reason ?? "") };
}

const TYPE_NAMES = /** @type {Record<string, string>} */ ({
  string: "a string",
  integer: "a whole number",
  number: "a number",
  boolean: "true or false",
  object: "an object",
  array: "a list",
  null: "null",
});

/**
 * One problem with one field as a sentence: the JSON Schema validator's and pydantic's usual
 * messages are put in words ("fields.plan is required.", "fields.seats must be a whole number,
 * not "ten"."); anything else reads "<field>: <what is wrong>.".
 * @param {string} where the field's path ("" when the problem is about the whole input)
 * @param {string} what the validator's message
 */
export function fieldProblem(where, what) {
  if (!where) return sentence(what || "Something is wrong");
  if (!what) return sentence(`Check ${where}`);
  if (/^'[^']*' is a required property$|^Field required$/.test(what)) return sentence(`${where} is required`);
  const typed = /^(.*) is not of type '(\w+)'$/.exec(what);
  if (typed && TYPE_NAMES[typed[2]]) return sentence(`${where} must be ${TYPE_NAMES[typed[2]]}, not ${typed[1]}`);
  const listed = /^(.*) is not one of (\[.*\])$/.exec(what);
  if (listed) return sentence(`${where} must be one of ${listed[2]}, not ${listed[1]}`);
  return sentence(`${where}: ${what}`);
}

/**
 * Whether a detail only repeats the message: the message names its field and says what the
 * detail says, or (for a missing property) names the property too.
 * @param {string} message
 * @param {string} where
 * @param {string} what
 */
function repeats(message, where, what) {
  if (what && message.includes(what)) return true;
  if (!where || !message.includes(where)) return false;
  if (!what) return true;
  const missing = /^'([^']*)' is a required property$/.exec(what);
  return Boolean(missing && message.includes(`'${missing[1]}'`));
}

/**
 * What an error says, each thing once: its message, then a sentence per detail the message
 * does not already say (see fieldProblem). A message ending in the list of the fields
 * explained below it ("the input is not valid: name, key") loses the list.
 * @param {Error} err
 * @returns {{message: string, lines: string[]}}
 */
function explain(err) {
  let message = err.message || "Something went wrong";
  const details = err instanceof ApiError && Array.isArray(err.details) ? err.details : [];
  /** @type {string[]} */
  const lines = [];
  const explained = new Set();
  for (const detail of details) {
    const { where, what } = partsOf(detail);
    if (repeats(message, where, what)) continue;
    const line = fieldProblem(where, what);
    if (!lines.includes(line)) lines.push(line);
    if (where) explained.add(where);
  }
  const listed = /^(.+?): ([^\s,:]+(?:, [^\s,:]+)*)$/.exec(message);
  if (listed?.[2].split(", ").every((name) => explained.has(name))) message = listed[1];
  if (lines.length === 1 && message === lines[0]) lines.length = 0;
  return { message, lines };
}

/**
 * Fill an error element (class error, role alert) with an error: a message, an Error, or
 * an ApiError with its details (see explain); null or undefined empties and hides it.
 * @template {HTMLElement} E
 * @param {E} el
 * @param {unknown} err
 */
export function showError(el, err) {
  if (err === null || err === undefined) {
    el.hidden = true;
    mount(el);
    return el;
  }
  const { message, lines } = err instanceof Error ? explain(err) : { message: String(err), lines: [] };
  mount(
    el,
    h("p", {}, sentence(message)),
    lines.length ? h("ul", {}, lines.map((line) => h("li", {}, line))) : null,
  );
  el.hidden = false;
  return el;
}

/**
 * A new error box; hidden when there is no error.
 * @param {unknown} err
 * @param {Attrs} [attrs]
 */
export function errorBox(err, attrs = {}) {
  return showError(h("div", { class: "error", role: "alert", ...attrs }), err);
}

/**
 * The JSON object typed in a textarea; an InputError (naming `label`) when it is not one.
 * @param {HTMLTextAreaElement} control
 * @param {string} [label] what the JSON is, e.g. "Definition"
 * @returns {Record<string, unknown>}
 */
export function readJSON(control, label) {
  const value = readOptionalJSON(control, label);
  if (value === null) throw new InputError(label ? `${label}: Enter some JSON` : "Enter some JSON", control);
  return value;
}

/**
 * The same, where empty text means null.
 * @param {HTMLTextAreaElement} control
 * @param {string} [label]
 * @returns {Record<string, unknown> | null}
 */
export function readOptionalJSON(control, label) {
  const parsed = parseJSON(control.value, { allowEmpty: true });
  if (parsed.error !== undefined) throw new InputError(label ? `${label}: ${parsed.error}` : parsed.error, control);
  return parsed.value;
}

/**
 * @typedef {object} ActionOptions
 * @property {HTMLButtonElement | HTMLButtonElement[]} [button] disabled while the action runs
 * @property {HTMLElement} problem the error box beside the form (see errorBox)
 * @property {StatusLine} [status] a line such as "Saved", cleared when the action starts
 */

/**
 * The handler of one form (as its `onsubmit`) or action button (as its `onclick`): it stops
 * the browser's own submit, clears `problem` and `status`, disables the button, awaits `run`
 * (which calls the API and shows what came back), shows what `run` throws in `problem` (an
 * InputError also focuses its control; leaving the page mid-request shows nothing), and
 * enables the button again. It resolves to whether `run` succeeded.
 * @param {ActionOptions} options
 * @param {() => unknown} run
 * @returns {(event?: Event) => Promise<boolean>}
 */
export function action({ button, problem, status }, run) {
  const buttons = button === undefined ? [] : Array.isArray(button) ? button : [button];
  return async (event) => {
    if (event?.type === "submit") event.preventDefault();
    showError(problem, null);
    status?.set("");
    for (const b of buttons) b.disabled = true;
    try {
      await run();
      return true;
    } catch (err) {
      if (!isAbort(err)) {
        showError(problem, err);
        if (err instanceof InputError) err.control?.focus();
      }
      return false;
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  };
}
