// @ts-check
// The kinds of things the API describes with a JSON Schema per type (node types, trigger
// types, auth types), and a form that edits a value `{type, …}`: a select of the types and,
// under it, the form generated from the chosen type's schema.

import { get, isAbort } from "./api.js";
import { h, mount, uid } from "./dom.js";
import { field } from "./forms.js";
import { schemaForm } from "./schema-form.js";
import { isObject } from "./schema-tools.js";
/** @import { JsonSchema, SchemaForm } from "./schema-form.js" */

/**
 * A node type as `GET /flow-node-types` lists it.
 * @typedef {object} NodeType
 * @property {string} type
 * @property {string} title
 * @property {string} [description]
 * @property {JsonSchema} configSchema
 */

/**
 * A trigger type (`GET /flow-trigger-types`) or auth type (`GET /integration-auth-types`):
 * `schema` describes the whole value, its `type` included.
 * @typedef {object} SchemaType
 * @property {string} type
 * @property {string} title
 * @property {string} [description]
 * @property {JsonSchema} schema
 */

/**
 * A list of types from the API; an empty list (and the error) when the API cannot say, so
 * the page falls back to JSON.
 * @template T
 * @param {string} path
 * @param {AbortSignal} signal
 * @returns {Promise<{items: T[], error: unknown}>}
 */
export async function loadTypes(path, signal) {
  try {
    /** @type {{items: T[]}} */
    const page = await get(path, { signal });
    return { items: Array.isArray(page?.items) ? page.items : [], error: null };
  } catch (err) {
    if (isAbort(err)) throw err;
    return { items: [], error: err };
  }
}

export { isObject };

/**
 * A copy of an object schema without some of its properties (those a page edits with its
 * own controls, such as `type`).
 * @param {JsonSchema} schema
 * @param {string[]} names
 * @returns {JsonSchema}
 */
export function withoutProperties(schema, names) {
  if (!isObject(schema.properties)) return schema;
  const properties = { ...schema.properties };
  for (const name of names) delete properties[name];
  const required = Array.isArray(schema.required) ? schema.required.filter((name) => !names.includes(String(name))) : undefined;
  return { ...schema, properties, ...(required ? { required } : {}) };
}

/**
 * A copy of a value without some keys.
 * @param {unknown} value
 * @param {string[]} names
 * @returns {Record<string, unknown>}
 */
export function withoutKeys(value, names) {
  const copy = isObject(value) ? { ...value } : {};
  for (const name of names) delete copy[name];
  return copy;
}

/**
 * @typedef {object} TypedForm
 * @property {HTMLElement} element
 * @property {() => Record<string, unknown> & {type: string}} read the value: `{type, …the form's fields}`;
 *   throws InputError as schemaForm does
 * @property {() => string} type the type chosen
 */

/**
 * A type select (`<testid>-type`) over the schema form of the chosen type (its controls are
 * `<testid>-field-<path>`, its JSON toggle `<testid>-json-toggle`). Changing the type keeps
 * the fields both types have. Without `types` (the API could not list them) the whole value
 * is edited as JSON.
 * @param {SchemaType[]} types
 * @param {object} options
 * @param {Record<string, unknown> | null} [options.value] the value to show (`type` picks the type)
 * @param {string} options.testid
 * @param {string} options.label e.g. "Trigger"
 * @param {string[]} [options.omit] properties the page edits elsewhere (left out of the form and of read())
 * @returns {TypedForm}
 */
export function typedForm(types, { value, testid, label, omit = [] }) {
  const hidden = ["type", ...omit];
  if (!types.length) {
    const form = schemaForm({ type: "object" }, { value: withoutKeys(value, omit), testid, label });
    return {
      element: form.element,
      read: () => {
        const read = form.read();
        const result = isObject(read) ? read : {};
        return { ...result, type: String(result.type ?? "") };
      },
      type: () => String(isObject(value) ? value.type ?? "" : ""),
    };
  }
  const initialType = isObject(value) && typeof value.type === "string" ? value.type : types[0].type;
  /** @type {HTMLSelectElement} */
  const select = h(
    "select",
    { "data-testid": `${testid}-type`, id: uid(testid), onchange: () => { showType(select.value); } },
    types.map((t) => h("option", { value: t.type }, t.title && t.title !== t.type ? `${t.title} (${t.type})` : t.type)),
    types.some((t) => t.type === initialType) ? null : h("option", { value: initialType }, `${initialType} (unknown)`),
  );
  select.value = initialType;
  const description = h("p", { class: "hint type-description", "data-testid": `${testid}-type-description` });
  const formBox = h("div", {});
  /** @type {SchemaForm} */
  let form = schemaForm({ type: "object" }, { testid, label });

  /**
   * @param {string} type
   * @param {Record<string, unknown>} [shown] the value to show (default: what was typed, where it fits)
   */
  function showType(type, shown) {
    const chosen = types.find((t) => t.type === type);
    let current = shown;
    if (!current) {
      try {
        current = withoutKeys(form.read(), hidden);
      } catch {
        current = {};
      }
    }
    const schema = chosen ? withoutProperties(chosen.schema, hidden) : { type: "object" };
    const properties = isObject(schema.properties) ? Object.keys(schema.properties) : null;
    const kept = properties ? Object.fromEntries(Object.entries(current).filter(([k]) => properties.includes(k))) : current;
    form = schemaForm(schema, { value: kept, testid, label: `${label}: ${chosen?.title ?? type}` });
    // The schema form shows the schema's own description: say it once.
    const text = chosen?.description && chosen.description !== chosen.schema.description ? chosen.description : "";
    description.textContent = text;
    description.hidden = !text;
    mount(formBox, form.element);
  }
  showType(initialType, withoutKeys(value, hidden));

  return {
    element: h("div", { class: "typed-form" }, field(`${label} type`, select), description, formBox),
    read: () => {
      const read = form.read();
      return { type: select.value, ...withoutKeys(read, hidden) };
    },
    type: () => select.value,
  };
}
