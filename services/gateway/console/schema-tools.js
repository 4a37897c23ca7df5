// @ts-check
// What a JSON Schema says about a value, as schema-form.js needs it: following $ref into the
// nearest $defs, telling a nullable from a union, and whether a value has a schema's shape.
// Pure functions, no DOM.

/**
 * A JSON Schema (draft 2020-12 subset pydantic emits).
 * @typedef {Record<string, unknown>} JsonSchema
 */

/**
 * Where in a schema an editor is.
 * @typedef {object} Scope
 * @property {JsonSchema[]} scopes schemas holding $defs, innermost last
 * @property {boolean} expr expressions are allowed here (`x-tether-expression` on the way)
 * @property {number} depth schemas followed so far (a recursive schema stops at MAX_DEPTH)
 */

/** How deep schemas are followed before a value is edited as JSON. */
export const MAX_DEPTH = 32;
/** The key of an expression object: `{"$expr": "<jmespath>"}`. */
export const EXPR_KEY = "$expr";

/** @param {unknown} value @returns {value is Record<string, unknown>} */
export function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** @param {unknown} value @returns {JsonSchema} */
export function asSchema(value) {
  if (value === true || value === undefined) return {};
  return isObject(value) ? value : { not: {} };
}

/** @param {unknown} value */
export function text(value) {
  return typeof value === "string" ? value : "";
}

/** @param {unknown} value @returns {unknown[]} */
export function list(value) {
  return Array.isArray(value) ? value : [];
}

/** "actionKey" → "Action key", "client_id" → "Client id". @param {string} key */
export function humanize(key) {
  const words = key
    .replace(/[_-]+/g, " ")
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .trim()
    .toLowerCase();
  return words ? words.charAt(0).toUpperCase() + words.slice(1) : key;
}

/** @param {unknown} a @param {unknown} b */
export function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** @param {string} path @param {string | number} key */
export function join(path, key) {
  return path ? `${path}.${key}` : String(key);
}

/**
 * Follow `$ref`s (into the nearest `$defs` holding the name) and single-member `allOf`s;
 * keywords beside a `$ref` (title, description, default) win over the target's.
 * @template {Scope} C
 * @param {unknown} raw
 * @param {C} ctx
 * @returns {{schema: JsonSchema, ctx: C}}
 */
export function resolve(raw, ctx) {
  let schema = asSchema(raw);
  let scopes = isObject(schema.$defs) || isObject(schema.definitions) ? [...ctx.scopes, schema] : ctx.scopes;
  for (let hops = 0; hops < 16; hops += 1) {
    const { $ref, allOf, ...rest } = schema;
    /** @type {JsonSchema | null} */
    let target = null;
    if (typeof $ref === "string") target = lookup($ref, scopes);
    else if (Array.isArray(allOf) && allOf.length === 1) target = asSchema(allOf[0]);
    else break;
    if (target === null) return { schema: { not: {}, ...rest }, ctx: { ...ctx, scopes } };
    if (isObject(target.$defs) || isObject(target.definitions)) scopes = [...scopes, target];
    const { $defs: _defs, definitions: _definitions, ...own } = rest;
    schema = { ...target, ...own };
  }
  const expr = ctx.expr || schema["x-tether-expression"] === true;
  return { schema, ctx: { ...ctx, scopes, expr, depth: ctx.depth + 1 } };
}

/**
 * @param {string} ref
 * @param {JsonSchema[]} scopes
 * @returns {JsonSchema | null}
 */
function lookup(ref, scopes) {
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
  if (!match) return null;
  const name = match[2].replace(/~1/g, "/").replace(/~0/g, "~");
  for (let i = scopes.length - 1; i >= 0; i -= 1) {
    const defs = scopes[i][match[1]];
    if (isObject(defs) && name in defs) return asSchema(defs[name]);
  }
  return null;
}

/**
 * The members of an anyOf/oneOf (or of a `type` list), without `null`, and whether null is one.
 * @param {JsonSchema} schema
 * @returns {{members: unknown[], nullable: boolean} | null}
 */
export function unionOf(schema) {
  const { anyOf, oneOf, type, ...rest } = schema;
  /** @type {unknown[] | null} */
  let all = Array.isArray(anyOf) ? anyOf : Array.isArray(oneOf) ? oneOf : null;
  if (all === null && Array.isArray(type)) {
    all = type.map((t) => ({ ...rest, type: t }));
  }
  if (all === null) return null;
  const isNull = (/** @type {unknown} */ m) => isObject(m) && m.type === "null" && Object.keys(m).length <= 2;
  return { members: all.filter((m) => !isNull(m)), nullable: all.some(isNull) };
}

/**
 * Whether `value` has the shape `raw` asks for (types, consts, enums; not every bound).
 * @param {unknown} raw
 * @param {unknown} value
 * @param {Scope} ctx
 * @returns {boolean}
 */
export function fits(raw, value, ctx) {
  const { schema, ctx: inner } = resolve(raw, ctx);
  if (inner.depth > MAX_DEPTH) return true;
  if (schema.not !== undefined) return false;
  if ("const" in schema) return same(schema.const, value);
  if (Array.isArray(schema.enum)) return schema.enum.some((v) => same(v, value));
  const union = unionOf(schema);
  if (union) {
    if (value === null) return union.nullable;
    return union.members.length === 0 || union.members.some((m) => fits(m, value, inner));
  }
  switch (schema.type) {
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return Number.isInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
    case "array":
      return Array.isArray(value);
    case "object": {
      if (!isObject(value)) return false;
      const props = isObject(schema.properties) ? schema.properties : {};
      return Object.entries(props).every(([key, sub]) => {
        const s = resolve(sub, inner).schema;
        return !("const" in s) || !(key in value) || same(s.const, value[key]);
      });
    }
    default:
      return true;
  }
}

/** @param {unknown} value */
export function isExpression(value) {
  return isObject(value) && Object.keys(value).length === 1 && typeof value[EXPR_KEY] === "string";
}

/** @param {JsonSchema} schema a string may hold a `{{ }}` template as it is */
export function takesText(schema) {
  return schema.type === "string" && schema.enum === undefined && schema.const === undefined;
}

