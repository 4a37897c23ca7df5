// @ts-check
// Flows: universal and app-level flows, and a form to create one.

import { enc, get, isAbort, post } from "./api.js";
import { h, mount, pretty } from "./dom.js";
import { action, errorBox, field, InputError, readJSON } from "./forms.js";
import { badge, card, emptyRow, table } from "./widgets.js";
/** @import { Flow, Integration, Page } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */

const EXAMPLE = {
  trigger: { type: "api" },
  nodes: {
    fetch: { type: "http-request", config: { url: "https://example.com/items", method: "GET" }, links: [{ to: "shape" }] },
    shape: { type: "transform", config: { expression: "items[].{id: id, name: name}" } },
  },
  parameters: null,
  autoDeploy: false,
};

/**
 * @param {HTMLElement} root
 * @param {PageParams} _params
 * @param {PageContext} ctx
 */
export async function render(root, _params, ctx) {
  /** @type {Promise<Page<Flow>>} */
  const universalFlows = get("/flows", { query: { level: "universal", limit: 200 }, signal: ctx.signal });
  /** @type {Promise<Page<Flow>>} */
  const appFlows = get("/flows", { query: { level: "app", limit: 200 }, signal: ctx.signal });
  /** @type {Promise<Page<Integration>>} */
  const allIntegrations = get("/integrations", { signal: ctx.signal });
  const [universal, app, integrations] = await Promise.allSettled([universalFlows, appFlows, allIntegrations]);
  if (!ctx.alive) return;
  for (const r of [universal, app, integrations]) if (r.status === "rejected" && isAbort(r.reason)) return;
  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Flows"), h("span", { class: "muted small" }, "Customer-level flows are on each customer's page.")),
    card("Universal flows", flowTable(universal, false, "No universal flows yet.")),
    card("App-level flows", flowTable(app, true, "No app-level flows yet.")),
    createCard(integrations.status === "fulfilled" ? integrations.value.items : [], ctx),
  );
}

/**
 * @param {PromiseSettledResult<Page<Flow>>} result
 * @param {boolean} withIntegration show the integration column (app-level flows)
 * @param {string} emptyText
 */
function flowTable(result, withIntegration, emptyText) {
  if (result.status === "rejected") return errorBox(result.reason);
  const rows = result.value.items.map((f) =>
    h(
      "tr",
      { "data-testid": "flow-row" },
      h("td", {}, h("a", { href: `#/flows/${enc(f.id)}` }, h("code", {}, f.key))),
      h("td", {}, f.name),
      withIntegration ? h("td", {}, f.integrationKey || "") : null,
      h("td", {}, f.trigger?.type || ""),
      h("td", {}, String(Object.keys(f.nodes || {}).length)),
      h("td", {}, String(f.revision)),
      h("td", {}, f.autoDeploy ? badge("auto-deploy", "info") : null, f.archived ? badge("archived") : null),
    ),
  );
  const headers = ["Key", "Name", ...(withIntegration ? ["Integration"] : []), "Trigger", "Nodes", "Revision", ""];
  return table(headers, rows.length ? rows : [emptyRow(headers.length, emptyText)]);
}

/**
 * @param {Integration[]} integrations
 * @param {PageContext} ctx
 */
function createCard(integrations, ctx) {
  const key = h("input", { type: "text", "data-testid": "flow-key", required: true, autocomplete: "off", placeholder: "sync-contacts" });
  const name = h("input", { type: "text", "data-testid": "flow-name", maxlength: 200, autocomplete: "off" });
  const integration = h(
    "select",
    { "data-testid": "flow-integration", disabled: true },
    h("option", { value: "" }, integrations.length ? "— choose —" : "— no integrations yet —"),
    integrations.map((i) => h("option", { value: i.key }, i.name === i.key ? i.key : `${i.name} (${i.key})`)),
  );
  const level = h(
    "select",
    {
      "data-testid": "flow-level",
      onchange: () => {
        integration.disabled = level.value !== "app";
      },
    },
    h("option", { value: "universal" }, "universal (any app)"),
    h("option", { value: "app" }, "app (one integration)"),
  );
  const definition = h("textarea", { "data-testid": "flow-definition", class: "code tall", rows: 16, spellcheck: "false", value: pretty(EXAMPLE) });
  const problem = errorBox(null, { "data-testid": "flow-create-error" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "flow-create" }, "Create flow");
  const form = h(
    "form",
    {
      novalidate: true,
      onsubmit: action({ button, problem }, async () => {
        const parsed = readJSON(definition, "Definition");
        /** @type {Record<string, unknown>} */
        const body = {
          ...parsed,
          key: key.value.trim(),
          name: name.value.trim() || parsed.name,
          level: level.value,
        };
        if (level.value === "app") {
          if (!integration.value) throw new InputError("An app-level flow needs an integration.", integration);
          body.integrationKey = integration.value;
        } else {
          delete body.integrationKey;
        }
        /** @type {Flow} */
        const flow = await post("/flows", body);
        ctx.navigate(`#/flows/${enc(flow.id)}`);
      }),
    },
    h("div", { class: "form-row" }, field("Key", key, "Lowercase letters, digits, - and _."), field("Name", name)),
    h("div", { class: "form-row" }, field("Level", level), field("Integration (app level)", integration)),
    field(
      "Definition (JSON)",
      definition,
      "trigger (api, app-event, schedule, data-record-*), nodes (key → {type, name, config, links: [{to}]}), parameters (JSON Schema), autoDeploy.",
    ),
    problem,
    h("div", { class: "actions" }, button),
  );
  return card("New flow", form);
}
