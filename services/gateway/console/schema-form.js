// @ts-check
// Forms generated from a JSON Schema (node configs, triggers, auth specs, action inputs),
// with the JSON kept as an advanced view. OWNER: the schema-forms helper replaces this
// placeholder's internals; the exported API below is the contract other pages code against.

import { h } from "./dom.js";
import { InputError, parseJSON } from "./forms.js";

/**
 * A JSON Schema as the API publishes it (draft 2020-12 subset pydantic emits).
 * @typedef {Record<string, unknown>} JsonSchema
 */

/**
 * @typedef {object} SchemaFormOptions
 * @property {unknown} [value] the initial value
 * @property {string} [testid] prefix of the data-testid of every control (default "schema")
 * @property {string} [label] the form's accessible name
 */

/**
 * A generated form.
 * - `element`: the form's root (a fieldset); every generated control carries
 *   `data-field="<dotted path>"` (e.g. `headers.Accept`, `items.0.id`) and
 *   `data-testid="<testid>-field-<dotted path>"`; the JSON view toggle is
 *   `<testid>-json-toggle` and its textarea `<testid>-json`.
 * - `read()`: the value typed so far; throws InputError naming the field (as a sentence)
 *   when a required field is empty or a value does not fit its type.
 * - `set(value)`: show another value.
 * @typedef {object} SchemaForm
 * @property {HTMLElement} element
 * @property {() => unknown} read
 * @property {(value: unknown) => void} set
 */

/**
 * Build a form for `schema` (placeholder: a JSON textarea).
 * @param {JsonSchema} _schema
 * @param {SchemaFormOptions} [options]
 * @returns {SchemaForm}
 */
export function schemaForm(_schema, options = {}) {
  const testid = options.testid ?? "schema";
  const text = h("textarea", { class: "code", rows: 6, "data-testid": `${testid}-json`, spellcheck: "false" });
  const set = (/** @type {unknown} */ value) => {
    text.value = value === undefined ? "" : JSON.stringify(value, null, 2);
  };
  set(options.value);
  return {
    element: h("fieldset", { class: "schema-form", "aria-label": options.label ?? "Form" }, text),
    read() {
      const parsed = parseJSON(text.value, { allowEmpty: true });
      if (parsed.error !== undefined) throw new InputError(parsed.error, text);
      return parsed.value ?? {};
    },
    set,
  };
}
