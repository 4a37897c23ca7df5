// @ts-check
// Forms generated from a JSON Schema (node configs, triggers, auth specs, action inputs),
// with the JSON kept as an advanced view.
//
// What the generator guarantees:
// - It never loses data: `read()` returns every value `set()` was given, keys the schema does
//   not know included (they are kept, and shown as JSON), and a value that does not fit its
//   schema (or a schema part it does not support: `not`, `if`, `prefixItems`, …) is edited in
//   a JSON textarea of its own.
// - A property left empty that was absent stays absent (the API applies its default); one
//   that held a value keeps it until changed. A select or checkbox left at the schema's
//   default, on a property that was absent, stays absent too.
// - Errors are InputErrors whose message is one sentence naming the field once
//   ("Retry › Attempts must be at most 10."); the control gets aria-invalid and the focus.
// - Expressions (see GET /flow-node-types): under a schema marked `x-tether-expression: true`
//   every value gets a "ƒx" toggle; an expression reads as `{"$expr": "<jmespath>"}`, and a
//   string may hold `{{ <jmespath> }}` templates (its pattern is then not checked).
//
// Supported: object (properties, required, additionalProperties / patternProperties maps),
// string (password for `format: password` or `writeOnly`), number, integer, boolean, enum,
// const, array, nullable (`anyOf [X, null]`, `type: [X, "null"]`), oneOf/anyOf (a select of
// the members; objects told apart by a `type` const, or `discriminator.propertyName`),
// `$ref` into `$defs` (looked up in the nearest enclosing schema that has them, so members
// of several published schemas can be put under one `oneOf`), defaults, descriptions (hints),
// titles (labels), minLength/maxLength/pattern/minimum/maximum/minItems/maxItems.
//
// A catalogue of types (GET /flow-trigger-types, /integration-auth-types) is one form:
// `schemaForm({oneOf: reply.items.map((i) => i.schema)}, {value})` shows a "Type" select
// (`<testid>-field-type`) and the chosen type's fields; switching keeps the fields both have.

import { h, uid } from "./dom.js";
import { InputError } from "./forms.js";
import {
  asSchema,
  EXPR_KEY,
  fits,
  humanize,
  isExpression,
  isObject,
  join,
  list,
  MAX_DEPTH,
  resolve,
  same,
  takesText,
  text,
  unionOf,
} from "./schema-tools.js";

/**
 * A JSON Schema as the API publishes it (draft 2020-12 subset pydantic emits).
 * @typedef {import("./schema-tools.js").JsonSchema} JsonSchema
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
 *   Other controls: `<testid>-add-<path>` (add an item or entry), `<testid>-remove-<path>.<n>`
 *   (remove the n-th, from 0), `<testid>-key-<path>.<n>` (the name of a map's n-th entry),
 *   `<testid>-kind-<path>` (which member of an anyOf/oneOf; a discriminated union's select
 *   is the field of its discriminator, e.g. `<testid>-field-type`), `<testid>-set-<path>`
 *   (a checkbox giving a nullable object a value), `<testid>-expr-<path>` (the expression
 *   toggle) and `<testid>-json-error` (why the JSON view's text was not taken).
 * - `read()`: the value typed so far; throws InputError naming the field (as a sentence)
 *   when a required field is empty or a value does not fit its type.
 * - `set(value)`: show another value.
 * @typedef {object} SchemaForm
 * @property {HTMLElement} element
 * @property {() => unknown} read
 * @property {(value: unknown) => void} set
 */

/** What an editor reads when its property is to be left out. */
const ABSENT = Symbol("absent");

/**
 * One editor of one value.
 * @typedef {object} Editor
 * @property {HTMLElement} element
 * @property {() => unknown} read the value, or ABSENT; throws InputError
 * @property {() => boolean} empty nothing typed (an optional object of empty editors is left out)
 */

/**
 * Where a value sits and how it is named.
 * @typedef {object} Slot
 * @property {() => string} at its dotted path (data-field), as it is now (map keys and list
 *   indexes change)
 * @property {string} label its label ("URL")
 * @property {() => string} name how errors name it ("Retry › Attempts")
 * @property {boolean} required the value must be given
 * @property {boolean} present the value set() gave had it
 * @property {boolean} [bare] no visible label (array items, map values): aria-label instead
 * @property {boolean} [entry] an item or map value: an empty text is "" (not left out)
 * @property {boolean} [nullable] null is allowed
 * @property {boolean} [root] the form's own value
 * @property {boolean} [flat] an object shown without a fieldset of its own (a union's member)
 */

/** @typedef {import("./schema-tools.js").Scope & {testid: string}} Ctx */

// --- DOM helpers ----------------------------------------------------------------------------

/**
 * The data attributes of a generated control: its role, path and test id.
 * @param {Ctx} ctx
 * @param {string} role "field", "add", "remove", "key", "kind", "set" or "expr"
 * @param {string} path
 */
function tag(ctx, role, path) {
  return {
    "data-role": role,
    "data-path": path,
    "data-field": role === "field" ? path : null,
    "data-testid": `${ctx.testid}-${role}-${path}`,
  };
}

/**
 * Move every control under `root` from path `from` (and below) to path `to`.
 * @param {Element} root
 * @param {string} testid
 * @param {string} from
 * @param {string} to
 * @param {string[]} [roles] only controls of these roles
 */
function retarget(root, testid, from, to, roles) {
  const els = [root, ...root.querySelectorAll("[data-path]")];
  for (const el of els) {
    const path = el.getAttribute("data-path");
    const role = el.getAttribute("data-role") ?? "";
    if (path === null || (roles && !roles.includes(role))) continue;
    if (path !== from && !path.startsWith(`${from}.`)) continue;
    const next = to + path.slice(from.length);
    el.setAttribute("data-path", next);
    el.setAttribute("data-testid", `${testid}-${role}-${next}`);
    if (role === "field") el.setAttribute("data-field", next);
  }
}

/**
 * Rename `from` to `to` in the accessible names under `root` (a map entry renamed).
 * @param {Element} root
 * @param {string} from
 * @param {string} to
 */
function relabel(root, from, to) {
  for (const el of [root, ...root.querySelectorAll("[aria-label]")]) {
    const label = el.getAttribute("aria-label");
    if (label?.includes(from)) el.setAttribute("aria-label", label.split(from).join(to));
  }
}

/**
 * A labelled control: label (with a required mark), the control, the description as a hint.
 * A bare slot gets an aria-label instead of a visible label.
 * @param {Slot} slot
 * @param {JsonSchema} schema
 * @param {HTMLElement} control
 * @param {HTMLElement[]} [after] more controls beside it
 */
function labelled(slot, schema, control, after = []) {
  if (!control.id) control.id = uid("sf");
  if (slot.required && !slot.nullable) control.setAttribute("aria-required", "true");
  const hint = text(schema.description);
  const hintEl = hint && !slot.bare ? h("p", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  if (slot.bare) {
    control.setAttribute("aria-label", slot.name());
    return h("div", { class: "sf-bare" }, control, after);
  }
  return h(
    "div",
    { class: "field sf-field" },
    h("label", { for: control.id }, slot.label, requiredMark(slot)),
    after.length ? h("div", { class: "sf-inline" }, control, after) : control,
    hintEl,
  );
}

/** @param {Slot} slot */
function requiredMark(slot) {
  return slot.required && !slot.nullable && !slot.root
    ? h("span", { class: "sf-required", title: "Required", "aria-hidden": "true" }, " *")
    : null;
}

/**
 * A group of controls: a fieldset with the label as its legend and the description as a hint.
 * @param {Slot} slot
 * @param {JsonSchema} schema
 * @param {import("./dom.js").Child[]} children
 */
function group(slot, schema, children) {
  const hint = text(schema.description);
  if (slot.root || slot.flat) {
    return h("div", { class: "sf-root" }, hint ? h("p", { class: "hint" }, hint) : null, children);
  }
  return h(
    "fieldset",
    { class: "sf-group" },
    h("legend", {}, slot.label, requiredMark(slot)),
    hint ? h("p", { class: "hint" }, hint) : null,
    children,
  );
}

/**
 * @param {string} message
 * @param {HTMLElement} control
 * @returns {never}
 */
function fail(message, control) {
  control.setAttribute("aria-invalid", "true");
  throw new InputError(message, control);
}

// --- editors --------------------------------------------------------------------------------

/**
 * Build the editor of `value` (ABSENT: none) under `raw`.
 * @param {unknown} raw
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} outer
 * @returns {Editor}
 */
function build(raw, value, slot, outer) {
  const { schema, ctx } = resolve(raw, outer);
  if (ctx.depth > MAX_DEPTH) return jsonEditor(schema, value, slot, ctx);
  const direct = ctx.expr && !slot.root && !("const" in schema);
  if (direct) {
    const template = typeof value === "string" && value.includes("{{") && !takesText(schema);
    const startExpr = isExpression(value) || template;
    return expressionToggle(value, slot, ctx, startExpr, template, (v) => plain(schema, v, slot, ctx));
  }
  return plain(schema, value, slot, ctx);
}

/**
 * @param {JsonSchema} schema
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @returns {Editor}
 */
function plain(schema, value, slot, ctx) {
  const has = value !== ABSENT;
  if (schema.not !== undefined || schema.prefixItems !== undefined || schema.if !== undefined) {
    return jsonEditor(schema, value, slot, ctx);
  }
  if (Array.isArray(schema.allOf)) return jsonEditor(schema, value, slot, ctx);
  if (has && !fits(schema, value, ctx) && !(value === null && slot.nullable)) {
    return jsonEditor(schema, value, slot, ctx);
  }
  if ("const" in schema) return constEditor(schema, value, slot, ctx);
  if (Array.isArray(schema.enum)) return enumEditor(schema, schema.enum, value, slot, ctx);
  const union = unionOf(schema);
  if (union) {
    const nullSlot = { ...slot, nullable: slot.nullable || union.nullable };
    if (union.members.length === 0) return jsonEditor(schema, value, nullSlot, ctx);
    if (union.members.length === 1) {
      const { anyOf: _a, oneOf: _o, type: _t, ...rest } = schema;
      const { schema: member, ctx: inner } = resolve(union.members[0], ctx);
      const merged = { ...member, ...rest, title: rest.title ?? member.title };
      if (!union.nullable) return plain(merged, value, slot, inner);
      return nullableEditor(merged, value, nullSlot, inner);
    }
    return unionEditor(schema, union.members, value, nullSlot, ctx);
  }
  switch (schema.type) {
    case "string":
      return textEditor(schema, value, slot, ctx);
    case "number":
    case "integer":
      return numberEditor(schema, value, slot, ctx);
    case "boolean":
      return booleanEditor(schema, value, slot, ctx);
    case "null":
      return constEditor({ ...schema, const: null }, value, slot, ctx);
    case "object":
      return objectEditor(schema, value, slot, ctx);
    case "array":
      return arrayEditor(schema, value, slot, ctx);
    case undefined:
      if (isObject(schema.properties)) return objectEditor(schema, value, slot, ctx);
      return anyEditor(schema, value, slot, ctx);
    default:
      return jsonEditor(schema, value, slot, ctx);
  }
}

/**
 * What an empty scalar reads as: "" for an entry (or a "" set), null when it may be and was
 * (or must be given), ABSENT when optional, else the field is required.
 * @param {Slot} slot
 * @param {unknown} value the value set() gave
 * @param {HTMLElement} control
 * @param {boolean} [textual]
 */
function emptyValue(slot, value, control, textual = false) {
  if (textual && (slot.entry || value === "")) return "";
  if (slot.nullable && (value === null || slot.required)) return null;
  if (slot.required && !slot.root) fail(`${slot.name()} is required.`, control);
  return ABSENT;
}

/** @param {JsonSchema} schema @param {unknown} value @param {Slot} slot @param {Ctx} ctx @returns {Editor} */
function textEditor(schema, value, slot, ctx) {
  const secret = schema.writeOnly === true || schema.format === "password";
  const maxLength = typeof schema.maxLength === "number" ? schema.maxLength : null;
  const long = schema.format === "textarea" || (maxLength !== null && maxLength > 4096 && !schema.pattern);
  const attrs = {
    ...tag(ctx, "field", slot.at()),
    value: typeof value === "string" ? value : "",
    placeholder:
      typeof schema.default === "string"
        ? schema.default
        : schema.format === "date-time"
          ? "2026-05-01T09:00:00+02:00"
          : null,
    autocomplete: secret ? "new-password" : "off",
    spellcheck: "false",
  };
  /** @type {HTMLInputElement | HTMLTextAreaElement} */
  const input = long ? h("textarea", { ...attrs, rows: 3 }) : h("input", { ...attrs, type: secret ? "password" : "text" });
  return {
    element: labelled(slot, schema, input),
    empty: () => input.value === "",
    read() {
      const v = input.value;
      if (v === "") {
        const out = emptyValue(slot, value, input, true);
        if (out !== ABSENT || !slot.root) return out;
      }
      const name = slot.name();
      const min = typeof schema.minLength === "number" ? schema.minLength : 0;
      if (v.length < min) fail(min === 1 ? `${name} cannot be empty.` : `${name} must be at least ${min} characters long.`, input);
      if (maxLength !== null && v.length > maxLength) fail(`${name} must be at most ${maxLength} characters long.`, input);
      const template = ctx.expr && v.includes("{{");
      if (typeof schema.pattern === "string" && !template) {
        let ok = true;
        try {
          ok = new RegExp(schema.pattern, "u").test(v);
        } catch {
          ok = true; // a pattern the browser cannot compile is the API's to check
        }
        if (!ok) fail(`${name} does not have the expected form (${schema.pattern}).`, input);
      }
      return v;
    },
  };
}

/** @param {JsonSchema} schema @param {unknown} value @param {Slot} slot @param {Ctx} ctx @returns {Editor} */
function numberEditor(schema, value, slot, ctx) {
  const integer = schema.type === "integer";
  const input = h("input", {
    ...tag(ctx, "field", slot.at()),
    type: "text",
    inputmode: integer ? "numeric" : "decimal",
    value: typeof value === "number" ? String(value) : "",
    placeholder: typeof schema.default === "number" ? String(schema.default) : null,
    autocomplete: "off",
  });
  return {
    element: labelled(slot, schema, input),
    empty: () => input.value.trim() === "",
    read() {
      const v = input.value.trim();
      if (v === "") return emptyValue(slot, value, input);
      const name = slot.name();
      const n = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isFinite(n)) fail(`${name} must be a number.`, input);
      if (integer && !Number.isSafeInteger(n)) fail(`${name} must be a whole number.`, input);
      const { minimum, maximum, exclusiveMinimum, exclusiveMaximum } = schema;
      if (typeof minimum === "number" && n < minimum) fail(`${name} must be at least ${minimum}.`, input);
      if (typeof maximum === "number" && n > maximum) fail(`${name} must be at most ${maximum}.`, input);
      if (typeof exclusiveMinimum === "number" && n <= exclusiveMinimum)
        fail(`${name} must be more than ${exclusiveMinimum}.`, input);
      if (typeof exclusiveMaximum === "number" && n >= exclusiveMaximum)
        fail(`${name} must be less than ${exclusiveMaximum}.`, input);
      return n;
    },
  };
}

/** @param {JsonSchema} schema @param {unknown} value @param {Slot} slot @param {Ctx} ctx @returns {Editor} */
function booleanEditor(schema, value, slot, ctx) {
  if (slot.nullable) return enumEditor(schema, [true, false], value, slot, ctx);
  const fallback = schema.default === true;
  const initial = typeof value === "boolean" ? value : fallback;
  const box = h("input", { ...tag(ctx, "field", slot.at()), type: "checkbox", checked: initial });
  box.id = uid("sf");
  const hint = text(schema.description);
  const hintEl = hint && !slot.bare ? h("p", { class: "hint", id: `${box.id}-hint` }, hint) : null;
  if (hintEl) box.setAttribute("aria-describedby", hintEl.id);
  if (slot.bare) box.setAttribute("aria-label", slot.name());
  const element = h(
    "div",
    { class: "field sf-field sf-check" },
    h("label", { for: box.id }, box, slot.bare ? null : ` ${slot.label}`),
    hintEl,
  );
  return {
    element,
    empty: () => box.checked === initial,
    read() {
      if (value === ABSENT && !slot.required && !slot.entry && box.checked === fallback) return ABSENT;
      return box.checked;
    },
  };
}

/** @param {unknown} v */
function optionLabel(v) {
  if (typeof v === "string") return v;
  if (v === true) return "yes";
  if (v === false) return "no";
  return JSON.stringify(v);
}

/**
 * @param {JsonSchema} schema
 * @param {unknown[]} values
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @returns {Editor}
 */
function enumEditor(schema, values, value, slot, ctx) {
  const hasDefault = "default" in schema && values.some((v) => same(v, schema.default));
  const blank = slot.nullable || !(slot.required || hasDefault);
  let initial = values.findIndex((v) => same(v, value));
  if (initial < 0 && value === ABSENT && hasDefault) initial = values.findIndex((v) => same(v, schema.default));
  const select = h(
    "select",
    { ...tag(ctx, "field", slot.at()) },
    blank || initial < 0 ? h("option", { value: "" }, "—") : null,
    values.map((v, i) => h("option", { value: String(i) }, optionLabel(v))),
  );
  select.value = initial < 0 ? "" : String(initial);
  return {
    element: labelled(slot, schema, select),
    empty: () => select.value === (initial < 0 ? "" : String(initial)),
    read() {
      if (select.value === "") return emptyValue(slot, value, select);
      const v = values[Number(select.value)];
      if (value === ABSENT && !slot.required && hasDefault && same(v, schema.default)) return ABSENT;
      return v;
    },
  };
}

/** @param {JsonSchema} schema @param {unknown} value @param {Slot} slot @param {Ctx} ctx @returns {Editor} */
function constEditor(schema, value, slot, ctx) {
  const shown = h("input", { ...tag(ctx, "field", slot.at()), value: optionLabel(schema.const), readOnly: true });
  return {
    element: labelled(slot, schema, shown),
    empty: () => true,
    read: () => (value !== ABSENT || slot.required ? schema.const : ABSENT),
  };
}

/**
 * Any JSON, typed as JSON: for `{}` schemas holding objects or lists, and every value or
 * schema part the other editors do not handle.
 * @param {JsonSchema} schema
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @returns {Editor}
 */
function jsonEditor(schema, value, slot, ctx) {
  const area = h("textarea", {
    ...tag(ctx, "field", slot.at()),
    class: "code sf-json",
    rows: 3,
    spellcheck: "false",
    value: value === ABSENT ? "" : JSON.stringify(value, null, 2),
  });
  const described = { ...schema, description: [text(schema.description), "As JSON."].filter(Boolean).join(" ") };
  return {
    element: labelled(slot, described, area),
    empty: () => area.value.trim() === "",
    read() {
      if (!area.value.trim()) return emptyValue(slot, value, area);
      try {
        return JSON.parse(area.value);
      } catch (err) {
        const why = err instanceof Error ? err.message.replace(/\.$/, "") : String(err);
        return fail(`${slot.name()} is not valid JSON: ${why}.`, area);
      }
    },
  };
}

/**
 * A value of no declared type: JSON, text, a number, yes/no or null, chosen by a select.
 * @param {JsonSchema} schema
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 */
function anyEditor(schema, value, slot, ctx) {
  const { title, description } = schema;
  const members = [
    { title: "Text", type: "string" },
    { title: "Number", type: "number" },
    { title: "Yes/no", type: "boolean" },
    { title: "JSON", "x-json": true },
    { title: "Null", type: "null" },
  ];
  return unionEditor({ title, description }, members, value, slot, ctx, true);
}

/**
 * A nullable object, list or map: a checkbox gives it a value (unchecked: null, or left out).
 * Nullable scalars are simply left empty.
 * @param {JsonSchema} schema
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @returns {Editor}
 */
function nullableEditor(schema, value, slot, ctx) {
  const composite = schema.type === "object" || schema.type === "array" || isObject(schema.properties);
  if (!composite) return plain(schema, value, slot, ctx);
  const given = value !== ABSENT && value !== null;
  const box = h("input", { ...tag(ctx, "set", slot.at()), type: "checkbox", checked: given });
  box.id = uid("sf");
  const holder = h("div", { class: "sf-nullable-body" });
  /** @type {Editor | null} */
  let inner = null;
  const show = () => {
    if (box.checked && inner === null) {
      inner = plain(schema, given ? value : ABSENT, { ...slot, nullable: false, required: true, present: given }, ctx);
      holder.replaceChildren(inner.element);
    }
    holder.hidden = !box.checked;
  };
  box.addEventListener("change", show);
  show();
  return {
    element: h(
      "div",
      { class: "sf-nullable" },
      h("label", { for: box.id, class: "sf-check" }, box, ` Give ${slot.label} a value`),
      holder,
    ),
    empty: () => !box.checked,
    read() {
      if (box.checked && inner) return inner.read();
      return value === null || slot.required ? null : ABSENT;
    },
  };
}

/**
 * The discriminator of a union of objects: a property every member fixes (const or enum).
 * @param {JsonSchema} schema
 * @param {unknown[]} members
 * @param {Ctx} ctx
 * @returns {{key: string, options: {label: string, value: unknown, member: JsonSchema, ctx: Ctx}[]} | null}
 */
function discriminatorOf(schema, members, ctx) {
  const named = isObject(schema.discriminator) ? text(schema.discriminator.propertyName) : "";
  const key = named || "type";
  /** @type {{label: string, value: unknown, member: JsonSchema, ctx: Ctx}[]} */
  const options = [];
  for (const raw of members) {
    const { schema: member, ctx: inner } = resolve(raw, ctx);
    const props = isObject(member.properties) ? member.properties : null;
    if (!props || !(key in props)) return null;
    const fixed = resolve(props[key], inner).schema;
    const values = "const" in fixed ? [fixed.const] : Array.isArray(fixed.enum) ? fixed.enum : null;
    if (!values) return null;
    for (const v of values) {
      const label = values.length === 1 && member.title ? text(member.title) : optionLabel(v);
      options.push({ label, value: v, member, ctx: inner });
    }
  }
  return { key, options };
}

/** @param {JsonSchema} member */
function kindLabel(member) {
  if (member.title) return text(member.title);
  const names = /** @type {Record<string, string>} */ ({
    string: "Text",
    number: "Number",
    integer: "Whole number",
    boolean: "Yes/no",
    object: "Object",
    array: "List",
    null: "Null",
  });
  if (Array.isArray(member.enum)) return "Choice";
  if ("const" in member) return optionLabel(member.const);
  return names[text(member.type)] ?? "Value";
}

/**
 * A value that is one of several schemas: a select of the members, and the chosen one's
 * editor. Objects told apart by a discriminator show it as the select (their `type` field).
 * @param {JsonSchema} schema
 * @param {unknown[]} members
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @param {boolean} [anyValue] the members are anyEditor's kinds
 * @returns {Editor}
 */
function unionEditor(schema, members, value, slot, ctx, anyValue = false) {
  const disc = anyValue ? null : discriminatorOf(schema, members, ctx);
  /**
   * @type {{
   *   label: string,
   *   make: (v: unknown, present: boolean) => Editor,
   *   match: (v: unknown) => boolean,
   *   keeps: (key: string) => boolean,
   * }[]}
   */
  const options = [];
  if (disc) {
    for (const opt of disc.options) {
      options.push({
        label: opt.label,
        match: (v) => isObject(v) && same(v[disc.key], opt.value) && fits(opt.member, v, opt.ctx),
        keeps: (key) =>
          opt.member.additionalProperties !== false ||
          (isObject(opt.member.properties) && key in opt.member.properties),
        make: (v, present) =>
          objectEditor(
            opt.member,
            isObject(v) ? v : {},
            { ...slot, present, required: true, nullable: false, flat: true },
            opt.ctx,
            { [disc.key]: opt.value },
          ),
      });
    }
  } else {
    for (const raw of members) {
      const { schema: member, ctx: inner } = resolve(raw, ctx);
      const json = member["x-json"] === true;
      options.push({
        label: kindLabel(member),
        match: (v) => (json ? isObject(v) || Array.isArray(v) : fits(member, v, inner)),
        keeps: () => true,
        make: (v, present) => {
          const sub = { ...slot, present, bare: true, nullable: false, required: true, root: false };
          return json ? jsonEditor({}, v, sub, inner) : plain({ ...member, title: undefined }, v, sub, inner);
        },
      });
    }
  }
  const given = value !== ABSENT && !(value === null && slot.nullable);
  let chosen = given ? options.findIndex((o) => o.match(value)) : -1;
  if (given && chosen < 0) return jsonEditor(schema, value, slot, ctx);
  const blank = !slot.required || slot.nullable;
  if (chosen < 0 && !blank) chosen = 0;
  const path = disc ? join(slot.at(), disc.key) : slot.at();
  const select = h(
    "select",
    { ...tag(ctx, disc ? "field" : "kind", path) },
    blank ? h("option", { value: "" }, "—") : null,
    options.map((o, i) => h("option", { value: String(i) }, o.label)),
  );
  select.value = chosen < 0 ? "" : String(chosen);
  const holder = h("div", { class: "sf-union-body" });
  /** @type {Editor | null} */
  let current = null;
  const show = (/** @type {unknown} */ v, /** @type {boolean} */ present) => {
    const i = select.value === "" ? -1 : Number(select.value);
    current = i < 0 ? null : options[i].make(v, present);
    holder.replaceChildren(current ? current.element : "");
  };
  select.addEventListener("change", () => {
    /** @type {unknown} */
    let carry = ABSENT;
    try {
      carry = current ? current.read() : ABSENT;
    } catch {
      carry = ABSENT; // what does not read yet is not carried over
    }
    const i = select.value === "" ? -1 : Number(select.value);
    if (disc && i >= 0 && isObject(carry)) {
      // Fields the chosen type also has keep what was typed; the others are dropped.
      show(Object.fromEntries(Object.entries(carry).filter(([k]) => options[i].keeps(k))), false);
    } else {
      show(i >= 0 && carry !== ABSENT && options[i].match(carry) ? carry : ABSENT, false);
    }
  });
  show(given ? value : ABSENT, given);
  const kindName = disc ? humanize(disc.key) : "Kind";
  select.id = uid("sf");
  const head = slot.bare
    ? h("div", { class: "sf-inline" }, select)
    : h(
        "div",
        { class: "field sf-field" },
        h("label", { for: select.id }, disc || slot.root ? kindName : slot.label, disc || slot.root ? null : requiredMark(slot)),
        select,
      );
  if (slot.bare) select.setAttribute("aria-label", `${slot.name()}: kind`);
  const hint = text(schema.description);
  const body = disc
    ? group(slot, schema, [head, holder])
    : h(
        "div",
        { class: ["sf-union", slot.bare && "sf-union-bare"] },
        head,
        hint && !slot.bare ? h("p", { class: "hint" }, hint) : null,
        holder,
      );
  return {
    element: body,
    empty: () => current === null || current.empty(),
    read() {
      if (current === null) return emptyValue(slot, value, select);
      return current.read();
    },
  };
}

/**
 * An object: a field per property; keys it does not name go to a map editor (under
 * additionalProperties / patternProperties) or are kept as JSON.
 * @param {JsonSchema} schema
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @param {Record<string, unknown>} [fixed] keys set by a discriminated union (not shown)
 * @returns {Editor}
 */
function objectEditor(schema, value, slot, ctx, fixed = {}) {
  const given = isObject(value) ? value : {};
  const props = isObject(schema.properties) ? schema.properties : {};
  const required = new Set(list(schema.required).map(String));
  /** @type {[string, Editor][]} */
  const fields = [];
  // Required fields first, in the order `required` lists them (a stored schema's properties
  // may come back reordered: PostgreSQL's jsonb keeps no key order), then the others.
  const order = [...[...required].filter((k) => k in props), ...Object.keys(props).filter((k) => !required.has(k))];
  for (const [key, sub] of order.map((k) => /** @type {[string, unknown]} */ ([k, props[k]]))) {
    if (key in fixed) continue;
    const label = text(asSchema(sub).title) || humanize(key);
    const childName = () => (slot.root || !slot.at() ? label : `${slot.name()} › ${label}`);
    const present = key in given;
    const child = build(
      sub,
      present ? given[key] : ABSENT,
      { at: () => join(slot.at(), key), label, name: childName, required: required.has(key), present },
      ctx,
    );
    fields.push([key, child]);
  }
  const known = new Set([...Object.keys(props), ...Object.keys(fixed)]);
  /** @type {Record<string, unknown>} */
  const extra = {};
  for (const [key, v] of Object.entries(given)) if (!known.has(key)) extra[key] = v;
  const patterns = isObject(schema.patternProperties) ? Object.entries(schema.patternProperties) : [];
  const additional = schema.additionalProperties;
  const open = additional === undefined ? patterns.length === 0 : additional !== false;
  /** @type {Editor | null} */
  let more = null;
  if (patterns.length > 0 || (open && (Object.keys(props).length === 0 || isObject(additional)))) {
    const valueSchema = patterns.length > 0 ? patterns[0][1] : asSchema(additional);
    const inside = Object.keys(props).length > 0;
    const mapSlot = inside ? { ...slot, root: false, flat: false } : slot;
    const mapSchema = inside ? { propertyNames: schema.propertyNames } : schema;
    const pattern = patterns.length > 0 ? patterns[0][0] : null;
    more = mapEditor(mapSchema, valueSchema, pattern, extra, mapSlot, ctx, inside ? "More fields" : slot.label);
  } else if (Object.keys(extra).length > 0) {
    more = jsonEditor(
      { description: "Fields the form does not know, kept as they are." },
      extra,
      { ...slot, at: () => join(slot.at(), "*"), label: "Other fields", name: () => `${slot.name()} › Other fields`, required: false, present: true, bare: false, root: false },
      ctx,
    );
  }
  const onlyMap = Object.keys(props).length === 0 && more !== null && patterns.length + (open ? 1 : 0) > 0;
  const element = onlyMap && more ? more.element : group(slot, schema, [fields.map(([, e]) => e.element), more?.element]);
  const empty = () => fields.every(([, e]) => e.empty()) && (more === null || more.empty());
  return {
    element,
    empty,
    read() {
      if (!slot.present && !slot.required && !slot.entry && empty()) return ABSENT;
      /** @type {Record<string, unknown>} */
      const out = { ...fixed };
      for (const [key, editor] of fields) {
        const v = editor.read();
        if (v !== ABSENT) out[key] = v;
      }
      const rest = more ? more.read() : ABSENT;
      if (isObject(rest)) Object.assign(out, rest);
      return out;
    },
  };
}

/**
 * The Remove button of one row of a list or map: it takes the row out and renumbers the rest.
 * @template {{row: HTMLElement}} R
 * @param {Ctx} ctx
 * @param {string} path the row's path
 * @param {string} label what a screen reader says
 * @param {R[]} rows every row, in order
 * @param {R} entry this row
 * @param {() => void} renumber
 */
function removeButton(ctx, path, label, rows, entry, renumber) {
  const onclick = () => {
    const i = rows.indexOf(entry);
    if (i >= 0) rows.splice(i, 1);
    entry.row.remove();
    renumber();
  };
  return h("button", { ...tag(ctx, "remove", path), type: "button", class: "small", "aria-label": label, onclick }, "Remove");
}

/**
 * A map: rows of a name and a value (additionalProperties / patternProperties).
 * @param {JsonSchema} schema the object's schema (propertyNames, min/maxProperties)
 * @param {unknown} valueSchema
 * @param {string | null} pattern what a name must match
 * @param {Record<string, unknown>} entries
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @param {string} label
 * @returns {Editor}
 */
function mapEditor(schema, valueSchema, pattern, entries, slot, ctx, label) {
  const names = asSchema(schema.propertyNames);
  /** @type {{key: HTMLInputElement, editor: Editor, row: HTMLElement, keptEmpty: boolean}[]} */
  const rows = [];
  const holder = h("div", { class: "sf-rows" });
  const add = h("button", { ...tag(ctx, "add", slot.at()), type: "button", class: "small" }, "Add entry");
  const renumber = () =>
    rows.forEach((r, i) => {
      retarget(r.row, ctx.testid, r.row.getAttribute("data-path") ?? "", join(slot.at(), i), ["key", "remove", "row"]);
    });
  const addRow = (/** @type {string} */ key, /** @type {unknown} */ v, /** @type {boolean} */ present) => {
    const n = rows.length;
    const original = key;
    const keyInput = h("input", {
      ...tag(ctx, "key", join(slot.at(), n)),
      value: key,
      placeholder: "Name",
      autocomplete: "off",
      spellcheck: "false",
      "aria-label": `${slot.name()}: name of entry ${n + 1}`,
    });
    const entry = {
      key: keyInput,
      editor: /** @type {Editor} */ (/** @type {unknown} */ (null)),
      row: h("div"),
      keptEmpty: present && original === "",
    };
    const name = () => `${slot.name()} › ${entry.key.value || "(no name)"}`;
    entry.editor = build(
      valueSchema,
      present ? v : ABSENT,
      { at: () => join(slot.at(), keyInput.value), label: key, name, required: true, present, bare: true, entry: true },
      ctx,
    );
    let at = join(slot.at(), key);
    let named = name();
    keyInput.addEventListener("input", () => {
      const next = join(slot.at(), keyInput.value);
      retarget(entry.editor.element, ctx.testid, at, next, ["field", "add", "remove", "key", "kind", "set", "expr", "row"]);
      relabel(entry.editor.element, named, name());
      at = next;
      named = name();
    });
    const remove = removeButton(ctx, join(slot.at(), n), `Remove entry ${n + 1} of ${slot.label}`, rows, entry, renumber);
    entry.row = h("div", { class: "sf-row sf-map-row", "data-role": "row", "data-path": join(slot.at(), n) }, keyInput, entry.editor.element, remove);
    rows.push(entry);
    holder.append(entry.row);
    return entry;
  };
  for (const [key, v] of Object.entries(entries)) addRow(key, v, true);
  add.addEventListener("click", () => addRow("", ABSENT, false).key.focus());
  const element = group({ ...slot, label }, schema, [holder, h("div", { class: "sf-actions" }, add)]);
  return {
    element,
    empty: () => rows.length === 0,
    read() {
      if (rows.length === 0 && !slot.present && !slot.required && !slot.entry) return ABSENT;
      /** @type {Record<string, unknown>} */
      const out = {};
      const where = slot.name();
      for (const { key, editor, keptEmpty } of rows) {
        const k = key.value;
        if (!k && !keptEmpty) fail(`${where} has an entry without a name.`, key);
        if (k in out) fail(`${where} has the name “${k}” twice.`, key);
        let allowed = true;
        try {
          allowed = pattern === null || new RegExp(pattern, "u").test(k);
        } catch {
          allowed = true;
        }
        if (typeof names.maxLength === "number" && k.length > names.maxLength) allowed = false;
        if (!allowed) fail(`“${k}” is not an allowed name in ${where}.`, key);
        const v = editor.read();
        out[k] = v === ABSENT ? "" : v;
      }
      return out;
    },
  };
}

/**
 * A list: an editor per item, with add and remove.
 * @param {JsonSchema} schema
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @returns {Editor}
 */
function arrayEditor(schema, value, slot, ctx) {
  const itemSchema = schema.items ?? {};
  /** @type {{editor: Editor, row: HTMLElement}[]} */
  const rows = [];
  const holder = h("div", { class: "sf-rows" });
  const add = h("button", { ...tag(ctx, "add", slot.at()), type: "button", class: "small" }, "Add item");
  const renumber = () =>
    rows.forEach((r, i) => {
      const from = r.row.getAttribute("data-path") ?? "";
      const to = join(slot.at(), i);
      if (from !== to) retarget(r.row, ctx.testid, from, to);
    });
  const addRow = (/** @type {unknown} */ v, /** @type {boolean} */ present) => {
    const path = join(slot.at(), rows.length);
    const entry = { editor: /** @type {Editor} */ (/** @type {unknown} */ (null)), row: h("div") };
    const at = () => {
      const i = rows.indexOf(entry);
      return join(slot.at(), i < 0 ? rows.length : i); // not listed yet while it is built
    };
    const index = () => (rows.includes(entry) ? rows.indexOf(entry) : rows.length) + 1;
    const name = () => `${slot.name()} › item ${index()}`;
    const { schema: resolved } = resolve(itemSchema, ctx);
    const composite = resolved.type === "object" || isObject(resolved.properties) || resolved.type === "array";
    entry.editor = build(
      itemSchema,
      present ? v : ABSENT,
      { at, label: `Item ${rows.length + 1}`, name, required: true, present, bare: !composite, entry: true },
      ctx,
    );
    const remove = removeButton(ctx, path, `Remove item ${rows.length + 1} of ${slot.label}`, rows, entry, renumber);
    entry.row = h("div", { class: "sf-row", "data-role": "row", "data-path": path }, entry.editor.element, remove);
    rows.push(entry);
    holder.append(entry.row);
    return entry;
  };
  for (const v of list(value)) addRow(v, true);
  add.addEventListener("click", () => {
    const entry = addRow(ABSENT, false);
    entry.row.querySelector("input, select, textarea")?.dispatchEvent(new Event("focus"));
    /** @type {HTMLElement | null} */ (entry.row.querySelector("input, select, textarea"))?.focus();
  });
  return {
    element: group(slot, schema, [holder, h("div", { class: "sf-actions" }, add)]),
    empty: () => rows.length === 0,
    read() {
      if (rows.length === 0 && !slot.present && !slot.required && !slot.entry) return ABSENT;
      const out = rows.map(({ editor }) => {
        const v = editor.read();
        return v === ABSENT ? null : v;
      });
      const name = slot.name();
      const { minItems, maxItems } = schema;
      if (typeof minItems === "number" && out.length < minItems)
        fail(`${name} needs at least ${minItems} item${minItems === 1 ? "" : "s"}.`, add);
      if (typeof maxItems === "number" && out.length > maxItems)
        fail(`${name} takes at most ${maxItems} item${maxItems === 1 ? "" : "s"}.`, add);
      return out;
    },
  };
}

/**
 * A value that may be an expression: the "ƒx" toggle switches between the schema's editor
 * and a JMESPath input (read as `{"$expr": …}`; a template string given for a non-text
 * value is shown there too, and read back as the string).
 * @param {unknown} value
 * @param {Slot} slot
 * @param {Ctx} ctx
 * @param {boolean} startExpr
 * @param {boolean} template
 * @param {(value: unknown) => Editor} make
 * @returns {Editor}
 */
function expressionToggle(value, slot, ctx, startExpr, template, make) {
  const normal = make(startExpr ? ABSENT : value);
  const initial = startExpr ? (template ? String(value) : String(/** @type {Record<string, unknown>} */ (value)[EXPR_KEY])) : "";
  const input = h("input", {
    ...tag(ctx, "field", slot.at()),
    class: "code sf-expr-input",
    value: initial,
    placeholder: template ? "{{ input.id }}" : "input.id",
    autocomplete: "off",
    spellcheck: "false",
  });
  const exprSlot = { ...slot, label: `${slot.label} (expression)` };
  const exprField = labelled(exprSlot, { description: template ? "Text with {{ JMESPath }} templates." : "JMESPath over the run context." }, input);
  let on = startExpr;
  const toggle = h(
    "button",
    {
      ...tag(ctx, "expr", slot.at()),
      type: "button",
      class: "small sf-expr-toggle",
      "aria-pressed": String(on),
      "aria-label": `Use an expression for ${slot.name()}`,
      title: "Use an expression",
    },
    "ƒx",
  );
  // Only the shown editor is in the document, so a path names one control. The other one
  // keeps its state aside; if its path changed meanwhile (a renamed map key, a removed list
  // item), it is moved to the current one when it is shown again.
  const slotEl = h("div", { class: ["sf-slot", slot.bare && "sf-slot-bare"], "data-role": "slot", "data-path": slot.at() });
  const taggedAt = new Map([
    [normal.element, slot.at()],
    [exprField, slot.at()],
  ]);
  const apply = () => {
    const shown = on ? exprField : normal.element;
    const at = slot.at();
    const was = taggedAt.get(shown) ?? at;
    if (was !== at) retarget(shown, ctx.testid, was, at);
    taggedAt.set(shown, at);
    slotEl.replaceChildren(toggle, shown);
    toggle.setAttribute("aria-pressed", String(on));
  };
  toggle.addEventListener("click", () => {
    taggedAt.set(on ? exprField : normal.element, slot.at()); // shown until now: kept current
    on = !on;
    apply();
    (on ? input : /** @type {HTMLElement | null} */ (normal.element.querySelector("input, select, textarea")))?.focus();
  });
  apply();
  return {
    element: slotEl,
    empty: () => (on ? input.value.trim() === "" : normal.empty()),
    read() {
      if (!on) return normal.read();
      const v = input.value;
      if (!v.trim()) {
        if (!slot.required && !slot.entry) return ABSENT;
        fail(`${slot.name()} needs an expression.`, input);
      }
      if (template && v.includes("{{")) return v;
      return { [EXPR_KEY]: v };
    },
  };
}

// --- the form -------------------------------------------------------------------------------

/**
 * Build a form for `schema` (see the module comment for what it supports and guarantees).
 * @param {JsonSchema} schema
 * @param {SchemaFormOptions} [options]
 * @returns {SchemaForm}
 */
export function schemaForm(schema, options = {}) {
  const testid = options.testid ?? "schema";
  const label = options.label ?? (text(schema.title) || "Form");
  /** @type {Ctx} */
  const ctx = { testid, scopes: [], expr: false, depth: 0 };
  const body = h("div", { class: "sf-body" });
  const jsonText = h("textarea", {
    class: "code tall sf-json-view",
    "data-testid": `${testid}-json`,
    spellcheck: "false",
    "aria-label": `${label} as JSON`,
  });
  const jsonError = h("div", { class: "error", role: "alert", "data-testid": `${testid}-json-error` });
  jsonError.hidden = true;
  const jsonView = h("div", { class: "sf-json-pane" }, jsonText);
  jsonView.hidden = true;
  const toggle = h(
    "button",
    { type: "button", class: "small secondary", "data-testid": `${testid}-json-toggle`, "aria-pressed": "false" },
    "Edit as JSON",
  );
  const element = h(
    "fieldset",
    { class: "schema-form", "aria-label": label },
    h("div", { class: "sf-toolbar" }, toggle),
    jsonError, // why the view did not switch (a field that does not read, JSON that does not parse)
    body,
    jsonView,
  );
  /** @type {Editor} */
  let editor;
  let asJson = false;
  let given = options.value;

  const show = (/** @type {unknown} */ value) => {
    given = value;
    const present = value !== undefined;
    editor = build(
      schema,
      present ? value : ABSENT,
      { at: () => "", label, name: () => label, required: true, present, root: true },
      ctx,
    );
    body.replaceChildren(editor.element);
  };

  const readForm = () => {
    for (const el of element.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const v = editor.read();
    if (v !== ABSENT) return v;
    return given === undefined && resolve(schema, ctx).schema.type === "object" ? {} : undefined;
  };

  const parseJsonView = () => {
    if (!jsonText.value.trim()) return undefined;
    try {
      return JSON.parse(jsonText.value);
    } catch (err) {
      const why = err instanceof Error ? err.message.replace(/\.$/, "") : String(err);
      jsonText.setAttribute("aria-invalid", "true");
      throw new InputError(`${label} is not valid JSON: ${why}.`, jsonText);
    }
  };

  const setMode = (/** @type {boolean} */ json) => {
    asJson = json;
    body.hidden = json;
    jsonView.hidden = !json;
    toggle.setAttribute("aria-pressed", String(json));
    toggle.textContent = json ? "Edit in the form" : "Edit as JSON";
  };

  toggle.addEventListener("click", () => {
    jsonError.hidden = true;
    jsonText.removeAttribute("aria-invalid");
    try {
      if (asJson) {
        show(parseJsonView());
        setMode(false);
      } else {
        const value = readForm();
        jsonText.value = value === undefined ? "" : JSON.stringify(value, null, 2);
        setMode(true);
      }
    } catch (err) {
      jsonError.replaceChildren(h("p", {}, err instanceof Error ? err.message : String(err)));
      jsonError.hidden = false;
      if (err instanceof InputError) err.control?.focus();
    }
  });

  show(given);
  return {
    element,
    read() {
      if (!asJson) return readForm();
      jsonText.removeAttribute("aria-invalid");
      return parseJsonView();
    },
    set(value) {
      show(value);
      jsonError.hidden = true;
      jsonText.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    },
  };
}
