// @ts-check
// A field-mapping instance's editor: each app field with a choice of the connection's
// external fields, a warning where the types differ, every broken mapping named in a
// sentence, and Save (PATCH /field-mapping-instances/{id} with the fields changed).

import { enc, get, isAbort, patch, post } from "./api.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import { dataBadge } from "./data-common.js";
import { action, errorBox, showError, statusLine } from "./forms.js";
import { badge, card, confirmButton, copyValue, emptyState, table } from "./widgets.js";
/** @import { PageContext, PageParams } from "./app.js" */
/** @import { AppField, DataSourceInstance, ExternalField, FieldMappingInstance } from "./data-types.js" */

const EXPRESSION = "\u0000expression"; // the option for "an expression feeds it" (no field can be named so)
const NOTHING = "";

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const path = `/field-mapping-instances/${enc(params.id ?? "")}`;
  /** @type {FieldMappingInstance} */
  let fm;
  try {
    fm = await get(path, { signal: ctx.signal });
  } catch (err) {
    if (isAbort(err)) throw err;
    mount(
      root,
      h("div", { class: "page-head" }, h("h1", {}, "Field mapping")),
      errorBox(err, { "data-testid": "field-mapping-error" }),
      h("p", {}, h("a", { href: "#/data?tab=mappings" }, "Back to the field mappings")),
    );
    return;
  }
  /** @type {string | null} the data-source instance on the same connection, for a link */
  let sourceId = null;
  try {
    /** @type {{items: DataSourceInstance[]}} */
    const page = await get("/data-source-instances", { query: { connectionId: fm.connectionId }, signal: ctx.signal });
    sourceId = page.items.find((i) => i.dataSourceKey === fm.dataSourceKey)?.id ?? null;
  } catch (err) {
    if (isAbort(err)) throw err; // only a link is lost
  }
  const box = h("div", {});
  mount(root, box);

  /** @param {FieldMappingInstance} fresh */
  function draw(fresh, saved = false) {
    fm = fresh;
    mount(box, editor(fm, sourceId, path, draw, saved));
  }
  draw(fm);
}

/**
 * The whole page for one instance; `redraw` takes the instance the API answered.
 * @param {FieldMappingInstance} fm
 * @param {string | null} sourceId
 * @param {string} path
 * @param {(fresh: FieldMappingInstance, saved?: boolean) => void} redraw
 * @param {boolean} saved
 */
function editor(fm, sourceId, path, redraw, saved) {
  /** @type {Map<string, string | null>} app field → chosen external field (null: the definition's) */
  const pending = new Map();
  const external = new Map(fm.externalFields.map((f) => [f.name, f]));
  const required = new Set(fm.appSchema.required || []);
  const problem = errorBox(null, { "data-testid": "fm-save-error" });
  const done = statusLine({ "data-testid": "fm-saved" });
  const save = h("button", { type: "button", class: "primary", "data-testid": "fm-save", disabled: true }, "Save mapping");
  const undo = h("button", { type: "button", class: "secondary", "data-testid": "fm-undo", disabled: true, onclick: () => redraw(fm) }, "Undo changes");
  const problems = h("div", { "data-testid": "fm-problems-box" });
  const stateBadge = fm.archived ? dataBadge("archived") : badge("ok", "ok", { "data-testid": "fm-state" });
  const names = Object.keys(fm.fields);

  /** @type {Map<string, {select: HTMLSelectElement, warning: HTMLElement, row: HTMLTableRowElement}>} */
  const rows = new Map();
  for (const name of names) rows.set(name, fieldRow(name, fm.fields[name]));

  /**
   * @param {string} name
   * @param {AppField} f
   */
  function fieldRow(name, f) {
    const select = h("select", { "data-testid": "fm-select", "data-field": name, "aria-label": `External field for ${name}` }, optionsFor(f, fm.externalFields));
    select.value = currentValue(f);
    const warning = h("div", { class: "fm-warning", "data-testid": "fm-warning" });
    const reset = f.customized
      ? h("button", {
          type: "button",
          class: "secondary small",
          "data-testid": "fm-field-reset",
          title: "Back to what the field mapping's definition says",
          onclick: () => {
            pending.set(name, null);
            select.disabled = true;
            mount(warning, h("span", { class: "small muted" }, "Back to the definition's mapping when you save."));
            changed();
          },
        }, "Use the definition's")
      : null;
    select.addEventListener("change", () => {
      const chosen = select.value;
      if (chosen === currentValue(f)) pending.delete(name);
      else if (chosen !== EXPRESSION && chosen !== NOTHING) pending.set(name, chosen);
      changed();
    });
    const row = h(
      "tr",
      { "data-testid": "fm-field-row", "data-field": name },
      h("td", {}, h("code", {}, name), required.has(name) ? h("span", { class: "required-mark", title: "required" }, " *") : null),
      h("td", {}, f.type || "any"),
      h("td", { class: "fm-choice" }, select, f.customized ? [" ", badge("customised", "info")] : null),
      h("td", {}, warning),
      h("td", {}, reset),
    );
    return { select, warning, row };
  }

  function changed() {
    for (const [name, { select, warning }] of rows) {
      if (select.disabled) continue;
      const text = typeWarning(name, fm.fields[name].type, external.get(select.value));
      mount(warning, text ? h("span", { class: "warn-text" }, text) : null);
    }
    const found = problemsView(fm, rows, external, required);
    mount(problems, found);
    if (!fm.archived) {
      stateBadge.textContent = found ? "broken" : "ok";
      stateBadge.className = found ? "badge bad" : "badge ok";
    }
    save.disabled = pending.size === 0;
    undo.disabled = pending.size === 0;
    done.set(pending.size ? `${pending.size} unsaved change(s)` : "");
    if (pending.size) done.classList.add("pending");
    else done.classList.remove("pending");
  }

  save.onclick = action({ button: save, problem, status: done }, async () => {
    /** @type {FieldMappingInstance} */
    const fresh = await patch(path, { fields: Object.fromEntries(pending) });
    redraw(fresh, true);
  });

  const upgrade = fm.outdated
    ? h("button", { type: "button", class: "secondary", "data-testid": "fm-upgrade" }, `Upgrade to revision ${fm.latestRevision}`)
    : null;
  if (upgrade) {
    upgrade.onclick = action({ button: upgrade, problem }, async () => {
      /** @type {FieldMappingInstance} */
      const fresh = await post(`${path}/upgrade`);
      redraw(fresh, true);
    });
  }
  const reset = Object.keys(fm.customization).length
    ? confirmButton({
        label: "Reset customisation",
        question: "Drop every choice made on this connection?",
        testid: "fm-reset",
        cls: "secondary",
        action: async () => {
          showError(problem, null);
          try {
            /** @type {FieldMappingInstance} */
            const fresh = await post(`${path}/reset`);
            redraw(fresh, true);
          } catch (err) {
            if (!isAbort(err)) showError(problem, err);
          }
        },
      })
    : null;

  const page = [
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Field mapping ", h("code", {}, fm.fieldMappingKey)),
      stateBadge,
    ),
    card(
      null,
      h(
        "dl",
        { class: "meta data-meta" },
        h("dt", {}, "Id"), h("dd", {}, copyValue(fm.id, { testid: "fm-id" })),
        h("dt", {}, "Customer"), h("dd", {}, h("a", { href: `#/customers/${enc(fm.customerId)}` }, fm.customerId)),
        h("dt", {}, "Connection"), h("dd", {}, copyValue(fm.connectionId), ` (${fm.integrationKey})`),
        h("dt", {}, "Data source"), h("dd", {}, sourceId ? h("a", { href: `#/data-source/${enc(sourceId)}` }, fm.dataSourceKey) : fm.dataSourceKey),
        h("dt", {}, "Revision"), h("dd", {}, fm.outdated ? `${fm.baseRevision} (the field mapping is at ${fm.latestRevision})` : String(fm.baseRevision)),
        h("dt", {}, "Updated"), h("dd", {}, fmtDate(fm.updatedAt)),
      ),
      upgrade || reset ? h("div", { class: "actions" }, upgrade, reset) : null,
    ),
    problems,
    card(
      "Which external field feeds each app field",
      h("p", { class: "small muted" }, `The connection's app has ${fm.externalFields.length} field(s). A field of a type that cannot convert is shown but cannot be chosen. On export, each chosen external field is written from its app field.`),
      names.length
        ? table(["App field", "Type", "External field", "", ""], names.map((n) => rows.get(n)?.row), { "data-testid": "fm-fields", class: "fm-table" })
        : emptyState("The field mapping's app schema names no fields.", { testid: "fm-no-fields" }),
      fm.externalFields.length ? null : h("p", { class: "warning", "data-testid": "fm-no-external" }, "The connection's app described no fields: fetch them again on the data source's Fields tab, then come back."),
      h("div", { class: "actions" }, save, undo, done),
      problem,
    ),
    card(
      "Effective mapping",
      h("details", {}, h("summary", {}, "Import (app field ← expression over the external record)"), h("pre", { class: "code", "data-testid": "fm-import-json" }, pretty(fm.importValue))),
      h("details", {}, h("summary", {}, "Export (external field ← expression over the app record)"), h("pre", { class: "code" }, pretty(fm.exportValue))),
      Object.keys(fm.customization).length ? h("details", {}, h("summary", {}, "Customisation on this connection"), h("pre", { class: "code" }, pretty(fm.customization))) : null,
    ),
  ];
  changed();
  if (saved) done.set("Saved");
  return page;
}

/**
 * The select's options: every external field (those whose type cannot convert disabled),
 * plus what feeds the field now when that is no external field.
 * @param {AppField} f
 * @param {ExternalField[]} fields
 */
function optionsFor(f, fields) {
  const allowed = new Set(f.options);
  const known = new Set(fields.map((e) => e.name));
  return [
    f.source === null && f.value == null ? h("option", { value: NOTHING }, "— nothing (not mapped) —") : null,
    f.source === null && f.value != null ? h("option", { value: EXPRESSION }, `expression: ${short(f.value)}`) : null,
    f.source !== null && !known.has(f.source) ? h("option", { value: f.source }, `${f.source} (gone from the app)`) : null,
    fields.map((e) =>
      h(
        "option",
        { value: e.name, disabled: !allowed.has(e.name) },
        `${e.name} (${e.type || "any type"})${e.title && e.title !== e.name ? ` — ${e.title}` : ""}${allowed.has(e.name) ? "" : " — cannot convert"}`,
      ),
    ),
  ];
}

/** @param {AppField} f */
function currentValue(f) {
  if (f.source !== null) return f.source;
  return f.value == null ? NOTHING : EXPRESSION;
}

/** @param {unknown} value */
function short(value) {
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** @param {string | null} type */
function aType(type) {
  if (!type) return "of any type";
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/**
 * What may go wrong when external field `ext` feeds app field `name` (null: nothing).
 * @param {string} name
 * @param {string | null} appType
 * @param {ExternalField | undefined} ext
 */
export function typeWarning(name, appType, ext) {
  if (!ext?.type || !appType || ext.type === appType) return null;
  const lead = `${name} is ${aType(appType)} but ${ext.name} is ${aType(ext.type)}:`;
  if (ext.type === "string" && appType === "integer") return `${lead} a value that is not a whole number (e.g. "12.5" or "twelve") fails to import.`;
  if (ext.type === "string" && appType === "number") return `${lead} a value that is not a number fails to import.`;
  if (ext.type === "number" && appType === "integer") return `${lead} a value with a fraction fails to import.`;
  if (ext.type === "string" && appType === "boolean") return `${lead} only "true" and "false" import; any other value fails.`;
  if (appType === "string") return `${lead} values import as text, and export back only if the text converts.`;
  return `${lead} each value is converted, and a value that does not convert fails the record.`;
}

/**
 * Every broken mapping as a sentence: the API's problems, mappings to a field the app no
 * longer has, and required app fields nothing feeds (with the choices not yet saved).
 * @param {FieldMappingInstance} fm
 * @param {Map<string, {select: HTMLSelectElement}>} rows
 * @param {Map<string, ExternalField>} external
 * @param {Set<string>} required
 */
function problemsView(fm, rows, external, required) {
  /** @type {string[]} */
  const lines = [];
  const named = new Set();
  for (const p of fm.problems) {
    const chosen = p.appField ? rows.get(p.appField)?.select.value : undefined;
    if (p.appField && chosen !== undefined && chosen !== p.externalField) continue; // fixed, not saved yet
    lines.push(
      p.appField
        ? `App field ${p.appField} is mapped to external field ${p.externalField}, which the connection's app no longer has: choose another field for ${p.appField}.`
        : `The export mapping writes external field ${p.externalField}, which the connection's app no longer has (${p.message}).`,
    );
    named.add(p.appField);
  }
  for (const [name, { select }] of rows) {
    const value = select.value;
    if (!named.has(name) && value !== NOTHING && value !== EXPRESSION && !external.has(value) && !select.disabled) {
      lines.push(`App field ${name} is mapped to external field ${value}, which the connection's app no longer has: choose another field for ${name}.`);
    }
    if (required.has(name) && value === NOTHING && !select.disabled) {
      lines.push(`App field ${name} is required, but no external field feeds it: choose one.`);
    }
  }
  if (!lines.length) return null;
  return h(
    "div",
    { class: "error", role: "alert", "data-testid": "fm-problems" },
    h("p", {}, lines.length === 1 ? "This mapping is broken:" : `This mapping has ${lines.length} problems:`),
    h("ul", {}, lines.map((line) => h("li", { "data-testid": "fm-problem" }, line))),
  );
}
