// @ts-check
// Flows: universal and app-level flows, and a "New flow" form (key, level, trigger; the
// nodes are then added in the flow's visual editor).

import { enc, get, isAbort, post } from "./api.js";
import { h, mount, pretty } from "./dom.js";
import { action, errorBox, field, InputError, readOptionalJSON } from "./forms.js";
import { isObject, loadTypes, typedForm } from "./typed-form.js";
import { badge, card, copyValue, emptyRow, emptyState, newButton, table } from "./widgets.js";
/** @import { SchemaType } from "./typed-form.js" */
/** @import { Flow, Integration, Page } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */

/** The curl line of the empty state: a flow created through the API. */
const CURL_BODY = {
  key: "sync-contacts",
  name: "Sync contacts",
  level: "universal",
  trigger: { type: "api" },
  nodes: { fetch: { type: "http-request", config: { url: "https://example.com/items" } } },
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
  const triggerTypes = loadTypes("/flow-trigger-types", ctx.signal);
  const [universal, app, integrations, triggers] = await Promise.allSettled([universalFlows, appFlows, allIntegrations, triggerTypes]);
  if (!ctx.alive) return;
  for (const r of [universal, app, integrations, triggers]) if (r.status === "rejected" && isAbort(r.reason)) return;
  /** @type {SchemaType[]} */
  const types = triggers.status === "fulfilled" ? triggers.value.items : [];
  const create = newButton(
    "New flow",
    () => createForm(integrations.status === "fulfilled" ? integrations.value.items : [], types, ctx),
    { testid: "new-flow" },
  );
  const none = [universal, app].every((r) => r.status === "fulfilled" && !r.value.items.length);
  const curl = `curl -X POST ${location.origin}/flows -H "Authorization: Bearer $TETHER_ADMIN_TOKEN" -H 'Content-Type: application/json' -d '${JSON.stringify(CURL_BODY)}'`;
  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Flows"), h("span", { class: "muted small" }, "Customer-level flows are on each customer's page."), create),
    none
      ? card(
        null,
        emptyState("No flows yet.", {
          hint: "A flow is a trigger followed by nodes. Create one here, then add its nodes in the diagram — or create it through the API:",
          button: h("button", {
            type: "button",
            class: "secondary",
            "data-testid": "empty-new-flow",
            onclick: () => create.open(),
          }, "New flow"),
          curl,
          testid: "flows-empty",
        }),
      )
      : [
        card("Universal flows", flowTable(universal, false, "No universal flows yet.")),
        card("App-level flows", flowTable(app, true, "No app-level flows yet.")),
      ],
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
      h("td", { class: "nowrap" }, copyValue(f.id, { short: true, testid: "flow-id" })),
      withIntegration ? h("td", {}, f.integrationKey || "") : null,
      h("td", {}, f.trigger?.type || ""),
      h("td", {}, String(Object.keys(f.nodes || {}).length)),
      h("td", {}, String(f.revision)),
      h("td", {}, f.autoDeploy ? badge("auto-deploy", "info") : null, f.archived ? badge("archived") : null),
    ),
  );
  const headers = ["Key", "Name", "Id", ...(withIntegration ? ["Integration"] : []), "Trigger", "Nodes", "Revision", ""];
  return table(headers, rows.length ? rows : [emptyRow(headers.length, emptyText)]);
}

/**
 * The "New flow" form: key, name, level (with its integration) and trigger; nodes are added
 * in the flow's editor, or given here as JSON.
 * @param {Integration[]} integrations
 * @param {SchemaType[]} triggerTypes
 * @param {PageContext} ctx
 */
function createForm(integrations, triggerTypes, ctx) {
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
  const trigger = typedForm(triggerTypes, { value: { type: "api" }, testid: "new-trigger", label: "Trigger" });
  const definition = h("textarea", {
    "data-testid": "flow-definition",
    class: "code",
    rows: 8,
    spellcheck: "false",
    placeholder: pretty({ nodes: {}, parameters: null, autoDeploy: false }),
  });
  const problem = errorBox(null, { "data-testid": "flow-create-error" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "flow-create" }, "Create flow");
  return h(
    "form",
    {
      novalidate: true,
      onsubmit: action({ button, problem }, async () => {
        const rest = readOptionalJSON(definition, "Nodes and parameters") ?? {};
        /** @type {Record<string, unknown>} */
        const body = {
          nodes: {},
          ...rest,
          trigger: isObject(rest.trigger) ? rest.trigger : trigger.read(),
          key: key.value.trim(),
          name: name.value.trim() || (typeof rest.name === "string" ? rest.name : key.value.trim()),
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
    h("div", { class: "form-row" }, field("Key", key, "Lowercase letters, digits, - and _."), field("Name", name, "Defaults to the key.")),
    h("div", { class: "form-row" }, field("Level", level), field("Integration (app level)", integration)),
    trigger.element,
    h(
      "details",
      { class: "advanced" },
      h("summary", { "data-testid": "flow-definition-toggle" }, "Advanced: nodes and parameters as JSON"),
      field(
        "Nodes and parameters (JSON, optional)",
        definition,
        "nodes (key → {type, name, config, links: [{to}]}), parameters (JSON Schema), autoDeploy; a trigger here wins over the form's.",
      ),
    ),
    problem,
    h("div", { class: "actions" }, button),
  );
}
