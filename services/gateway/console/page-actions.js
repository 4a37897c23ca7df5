// @ts-check
// Actions: the workspace's action definitions (GET /actions), and a New action form.

import { enc, get, isAbort, post } from "./api.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import { action, errorBox, field, InputError, readOptionalJSON, showError } from "./forms.js";
import { badge, card, emptyRow, emptyState, newButton, table } from "./widgets.js";
/** @import { Integration, JsonObject, Page } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */

// The action replies (libs/common/contracts/actions.py), as the pages read them.

/** @typedef {"universal" | "app" | "customer"} ActionLevel */

/**
 * The request an action makes through the connection (values may be expressions).
 * @typedef {object} ActionRequestSpec
 * @property {string} method
 * @property {string} path
 * @property {JsonObject} [query]
 * @property {JsonObject} [headers]
 * @property {unknown} [body]
 */

/**
 * @typedef {object} Action
 * @property {string} key
 * @property {ActionLevel} level
 * @property {string | null} integrationKey
 * @property {string | null} customerId
 * @property {string} name
 * @property {JsonObject | null} inputSchema
 * @property {ActionRequestSpec | null} request
 * @property {Record<string, ActionRequestSpec> | null} implementations
 * @property {string | null} outputMapping
 * @property {JsonObject | null} parameters
 * @property {boolean} autoDeploy
 * @property {number} revision
 * @property {string} createdAt
 * @property {string} updatedAt
 */

const PAGE_SIZE = 50;
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const KEY_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The input schema a new action starts with: one required string. */
const SAMPLE_SCHEMA = pretty({
  type: "object",
  properties: { email: { type: "string", description: "Whom to look up" } },
  required: ["email"],
});

/**
 * Where an action runs: its integration, its implementations' integrations, or its customer.
 * @param {Action} a
 */
export function actionScope(a) {
  if (a.level === "universal") return Object.keys(a.implementations ?? {}).join(", ") || "no implementation yet";
  if (a.level === "customer") return `${a.integrationKey ?? ""} · customer ${a.customerId ?? ""}`;
  return a.integrationKey ?? "";
}

/**
 * @param {HTMLElement} root
 * @param {PageParams} _params
 * @param {PageContext} ctx
 */
export async function render(root, _params, ctx) {
  /** @type {{items: Action[], cursor: string | null | undefined, seq: number}} */
  const state = { items: [], cursor: null, seq: 0 };
  const problem = errorBox(null, { "data-testid": "actions-error" });
  const integrationsProblem = errorBox(null, { "data-testid": "integrations-error" });
  /** @type {Integration[]} */
  let integrations = [];
  try {
    /** @type {Page<Integration>} */
    const page = await get("/integrations", { signal: ctx.signal });
    integrations = page.items;
  } catch (err) {
    if (isAbort(err)) throw err;
    showError(integrationsProblem, err); // the list still shows; New action lacks them
  }
  const list = h("div", { "data-testid": "actions-list" });
  const more = h("button", { type: "button", class: "secondary", "data-testid": "actions-more", hidden: true }, "More actions");
  more.onclick = action({ button: more, problem }, () => load(true));

  /** @param {boolean} next read the next page and add it */
  async function load(next = false) {
    const mine = ++state.seq;
    try {
      /** @type {Page<Action>} */
      const page = await get("/actions", { query: { limit: PAGE_SIZE, cursor: next ? state.cursor : null }, signal: ctx.signal });
      if (mine !== state.seq || !ctx.alive) return;
      state.items = next ? [...state.items, ...page.items] : page.items;
      state.cursor = page.cursor;
      showError(problem, null);
      draw();
    } catch (err) {
      if (isAbort(err) || mine !== state.seq) return;
      showError(problem, err);
    }
  }

  function draw() {
    more.hidden = !state.cursor;
    if (!state.items.length) {
      mount(
        list,
        emptyState("No actions yet.", {
          hint: "An action is one request to an app (create an order, find a contact) that your backend runs on a customer's connection. Define one with New action, or with the API:",
          curl: createCurl(),
          testid: "actions-empty",
        }),
      );
      return;
    }
    const rows = state.items.map((a) =>
      h(
        "tr",
        { "data-testid": "action-row", "data-key": a.key },
        h("td", { class: "wrap-anywhere" }, h("a", { href: `#/action/${enc(a.key)}`, "data-testid": "action-link" }, h("code", {}, a.key))),
        h("td", {}, a.name),
        h("td", {}, badge(a.level, "info")),
        h("td", { class: "wrap-anywhere" }, actionScope(a)),
        h("td", {}, String(a.revision)),
        h("td", { class: "nowrap" }, fmtDate(a.updatedAt)),
      ),
    );
    mount(list, table(["Key", "Name", "Level", "Runs on", "Revision", "Updated"], rows.length ? rows : [emptyRow(6, "No actions.")], { "data-testid": "actions-table" }));
  }

  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Actions"), newButton("New action", () => createForm(integrations, ctx))),
    h(
      "p",
      { class: "muted" },
      "Actions are requests to an app that run on demand through a connection: a typed input, the request it makes and the output it gives back. Open one to try it with the test customer.",
    ),
    integrationsProblem,
    card(null, problem, list, h("div", { class: "pager" }, more)),
  );
  await load();
}

/** The curl line that defines an action. */
function createCurl() {
  const body = {
    key: "find-contact",
    level: "app",
    integrationKey: "crm",
    name: "Find a contact",
    inputSchema: { type: "object", properties: { email: { type: "string" } }, required: ["email"] },
    request: { method: "GET", path: "/contacts", query: { email: "{{ input.email }}" } },
  };
  return `curl -X POST ${location.origin}/actions \\\n  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\\n  -d '${JSON.stringify(body)}'`;
}

/**
 * The New action form; a created action opens on its own page.
 * @param {Integration[]} integrations
 * @param {PageContext} ctx
 */
function createForm(integrations, ctx) {
  const key = h("input", { type: "text", "data-testid": "new-action-key", required: true, maxlength: 64, autocomplete: "off", placeholder: "find-contact", pattern: "[a-z0-9][a-z0-9_-]*" });
  const name = h("input", { type: "text", "data-testid": "new-action-name", required: true, maxlength: 200, autocomplete: "off", placeholder: "Find a contact" });
  const level = h(
    "select",
    { "data-testid": "new-action-level" },
    h("option", { value: "app" }, "app: for one integration"),
    h("option", { value: "customer" }, "customer: for one customer's connection"),
    h("option", { value: "universal" }, "universal: one request per integration"),
  );
  const integration = h(
    "select",
    { "data-testid": "new-action-integration" },
    integrations.length ? null : h("option", { value: "" }, "no integrations yet"),
    integrations.map((i) => h("option", { value: i.key }, i.name === i.key ? i.key : `${i.name} (${i.key})`)),
  );
  const customer = h("input", { type: "text", "data-testid": "new-action-customer", maxlength: 256, autocomplete: "off", placeholder: "test-customer" });
  const method = h("select", { "data-testid": "new-action-method" }, METHODS.map((m) => h("option", { value: m }, m)));
  const path = h("input", { type: "text", "data-testid": "new-action-path", maxlength: 4096, autocomplete: "off", placeholder: "/contacts/{{ input.email }}" });
  const implementations = h("textarea", {
    "data-testid": "new-action-implementations",
    class: "code",
    rows: 6,
    spellcheck: "false",
    placeholder: pretty({ crm: { method: "GET", path: "/contacts", query: { email: "{{ input.email }}" } } }),
  });
  const inputSchema = h("textarea", { "data-testid": "new-action-input-schema", class: "code", rows: 8, spellcheck: "false", value: SAMPLE_SCHEMA });
  const output = h("input", { type: "text", "data-testid": "new-action-output", maxlength: 4096, autocomplete: "off", placeholder: "body.items[0]" });
  const problem = errorBox(null, { "data-testid": "new-action-error" });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "new-action-create" }, "Create action");

  const integrationField = field("Integration", integration);
  const customerField = field("Customer id", customer, "The one customer whose connections may run it.");
  const requestRow = h("div", { class: "form-row" }, field("Method", method), field("Path", path, "Joined onto the integration's API base URL; {{ input.x }} is replaced by the input."));
  const implementationsField = field("Implementations (JSON)", implementations, "The request per integration key.");
  const shown = () => {
    const universal = level.value === "universal";
    integrationField.hidden = universal;
    customerField.hidden = level.value !== "customer";
    requestRow.hidden = universal;
    implementationsField.hidden = !universal;
  };
  level.addEventListener("change", shown);
  shown();

  return h(
    "form",
    {
      novalidate: true,
      onsubmit: action({ button: submit, problem }, async () => {
        const k = key.value.trim();
        if (!k) throw new InputError("Enter a key for the action, e.g. find-contact.", key);
        if (!KEY_PATTERN.test(k)) throw new InputError("The key may hold lowercase letters, digits, - and _ (starting with a letter or digit).", key);
        if (!name.value.trim()) throw new InputError("Enter a name for the action.", name);
        /** @type {Record<string, unknown>} */
        const body = { key: k, name: name.value.trim(), level: level.value };
        if (level.value === "universal") {
          body.implementations = readOptionalJSON(implementations, "Implementations");
        } else {
          if (!integration.value) throw new InputError("Choose the integration the action calls (add one on the Integrations page first).", integration);
          body.integrationKey = integration.value;
          if (level.value === "customer") {
            if (!customer.value.trim()) throw new InputError("Enter the customer the action belongs to.", customer);
            body.customerId = customer.value.trim();
          }
          if (!path.value.trim()) throw new InputError("Enter the path the action requests, e.g. /contacts.", path);
          body.request = { method: method.value, path: path.value.trim() };
        }
        body.inputSchema = readOptionalJSON(inputSchema, "Input schema");
        if (output.value.trim()) body.outputMapping = output.value.trim();
        /** @type {Action} */
        const created = await post("/actions", body);
        ctx.navigate(`#/action/${enc(created.key)}`);
      }),
    },
    h("div", { class: "form-row" }, field("Key", key, "Never changes; your backend runs the action by it."), field("Name", name)),
    h("div", { class: "form-row" }, field("Level", level), integrationField, customerField),
    requestRow,
    implementationsField,
    field("Input schema (JSON Schema)", inputSchema, "The Run form is generated from it. Leave empty for no input."),
    field("Output mapping (optional)", output, "JMESPath over the body of the app's answer; empty gives the body as it is."),
    problem,
    h("div", { class: "actions" }, submit),
  );
}
