// @ts-check
// Data: the workspace's data-source instances (filtered by customer, connection and state)
// and its field mappings (definitions, and their instances on each connection).

import { enc, get, isAbort, post } from "./api.js";
import { fmtDate, h, mount } from "./dom.js";
import { action, errorBox, field, InputError, readJSON, showError, statusLine } from "./forms.js";
import { dataBadge } from "./data-common.js";
import { badge, card, copyValue, emptyRow, emptyState, loading, newButton, syncRows, table, tabs } from "./widgets.js";
/** @import { PageContext, PageParams } from "./app.js" */
/** @import { Page } from "./api-types.js" */
/** @import { DataSource, DataSourceInstance, FieldMapping, FieldMappingInstance } from "./data-types.js" */

const REFRESH_MS = 8000; // the instances list, to show syncs moving
const MAPPING_PAGE = 100;

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const initial = params.query.get("tab") === "mappings" ? "mappings" : "sources";
  const view = tabs(
    [
      { key: "sources", label: "Data sources", testid: "data-tab-sources" },
      { key: "mappings", label: "Field mappings", testid: "data-tab-mappings" },
    ],
    (key, panel) => {
      stopSources();
      history.replaceState(null, "", `${location.pathname}${location.search}#/data${key === "mappings" ? "?tab=mappings" : ""}`);
      if (key === "mappings") showMappings(panel, ctx);
      else stopSources = showSources(panel, params, ctx);
    },
  );
  /** @type {() => void} */
  let stopSources = () => {};
  mount(root, h("div", { class: "page-head" }, h("h1", {}, "Data")), view.el);
  view.select(initial);
}

// --- data-source instances ------------------------------------------------------------------

/**
 * The instances list with its filters, refreshed every few seconds; returns a stop.
 * @param {HTMLElement} panel
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
function showSources(panel, params, ctx) {
  const state = { seq: 0, items: /** @type {DataSourceInstance[] | null} */ (null) };
  const customer = h("input", { type: "search", "data-testid": "data-filter-customer", placeholder: "Customer id", autocomplete: "off", value: params.query.get("customerId") || "" });
  const connection = h("input", { type: "search", "data-testid": "data-filter-connection", placeholder: "Connection id", autocomplete: "off", value: params.query.get("connectionId") || "" });
  const stateFilter = h(
    "select",
    { "data-testid": "data-filter-state" },
    h("option", { value: "" }, "any state"),
    ["ready", "failed", "archived"].map((s) => h("option", { value: `status:${s}` }, `status ${s}`)),
    ["idle", "queued", "running", "held", "failed"].map((s) => h("option", { value: `sync:${s}` }, `sync ${s}`)),
  );
  const problem = errorBox(null, { "data-testid": "data-sources-error" });
  const count = h("p", { class: "small muted", "data-testid": "data-sources-count" });
  const grid = table(["Data source", "Customer", "Connection", "Status", "Sync", "Last pass", "Updated"], [], { "data-testid": "data-sources-table" });
  const body = h("div", {}, grid);
  for (const input of [customer, connection]) input.addEventListener("input", () => draw());
  stateFilter.addEventListener("change", () => draw());

  function draw() {
    const items = state.items;
    if (!items) return;
    if (!items.length) {
      mount(body, emptyState("No data-source instances yet.", {
        testid: "data-sources-empty",
        hint: "Define a data source for an integration, then connect a customer: each connection's deployment creates its instance here.",
        curl: `curl -X POST ${location.origin}/data-sources -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\\n  -d '{"key": "contacts", "integrationKey": "crm", "name": "Contacts", "collection": {"list": {"path": "/contacts", "itemsPath": "items"}}}'`,
      }));
      count.textContent = "";
      return;
    }
    if (!body.contains(grid)) mount(body, grid);
    const wantCustomer = customer.value.trim().toLowerCase();
    const wantConnection = connection.value.trim().toLowerCase();
    const [kind, value] = stateFilter.value.split(":");
    const shown = items.filter(
      (i) =>
        (!wantCustomer || i.customerId.toLowerCase().includes(wantCustomer)) &&
        (!wantConnection || i.connectionId.toLowerCase().startsWith(wantConnection)) &&
        (!kind || (kind === "status" ? i.status === value : i.syncState === value)),
    );
    count.textContent = shown.length === items.length ? `${items.length} instance(s)` : `${shown.length} of ${items.length} instance(s) match the filters`;
    syncRows(grid.tbody, shown, { key: (i) => i.id, render: rowFor, empty: emptyRow(7, "No instance matches the filters.") });
  }

  async function load() {
    const mine = ++state.seq;
    try {
      /** @type {{items: DataSourceInstance[]}} */
      const page = await get("/data-source-instances", { signal: ctx.signal });
      const items = page.items; // each with its sync state and last pass
      if (mine !== state.seq || !ctx.alive) return;
      showError(problem, null);
      state.items = items;
      draw();
    } catch (err) {
      if (isAbort(err) || mine !== state.seq) return;
      showError(problem, err);
    }
  }

  mount(
    panel,
    card(
      null,
      h("div", { class: "form-row" }, field("Customer", customer), field("Connection", connection), field("State", stateFilter)),
      problem,
      count,
      body,
    ),
  );
  mount(grid.tbody, emptyRow(7, "Loading…"));
  load();
  const stop = ctx.every(REFRESH_MS, load);
  return () => {
    state.seq += 1;
    stop();
  };
}

/** @param {DataSourceInstance} i */
function rowFor(i) {
  const last = i.lastPass;
  return h(
    "tr",
    { "data-testid": "data-source-row", "data-instance-id": i.id },
    h("td", {}, h("a", { href: `#/data-source/${enc(i.id)}`, "data-testid": "data-source-link" }, i.dataSourceKey)),
    h("td", { class: "wrap-anywhere" }, h("a", { href: `#/customers/${enc(i.customerId)}` }, i.customerId)),
    h("td", {}, copyValue(i.connectionId, { short: true })),
    h("td", {}, dataBadge(i.status, { "data-testid": "data-source-status" })),
    h("td", {}, i.syncState ? dataBadge(i.syncState, { "data-testid": "data-source-sync" }) : h("span", { class: "muted" }, "no sync")),
    h("td", { class: "nowrap" }, last ? [dataBadge(last.status), " ", h("span", { class: "small muted" }, fmtDate(last.endedAt || last.startedAt))] : h("span", { class: "muted" }, "—")),
    h("td", { class: "nowrap" }, fmtDate(i.updatedAt)),
  );
}

// --- field mappings ---------------------------------------------------------------------------

/**
 * Field-mapping definitions (with a "New field mapping" form) and their instances.
 * @param {HTMLElement} panel
 * @param {PageContext} ctx
 */
async function showMappings(panel, ctx) {
  const defsBox = h("div", { "data-testid": "field-mappings" }, loading());
  const instBox = h("div", { "data-testid": "field-mapping-instances" }, loading());
  /** @type {DataSource[]} */
  let sources = [];
  mount(
    panel,
    card("Field mappings", newButton("New field mapping", (close) => mappingForm(sources, close, reload)), defsBox),
    card("On connections", h("p", { class: "small muted" }, "Each connection's field mapping, built by its deployment on that connection's fields. Open one to choose which external field feeds each app field."), instBox),
  );

  async function reload() {
    try {
      /** @type {Promise<Page<FieldMapping>>} */
      const defsCall = get("/field-mappings", { query: { limit: MAPPING_PAGE }, signal: ctx.signal });
      /** @type {Promise<Page<FieldMappingInstance>>} */
      const instsCall = get("/field-mapping-instances", { query: { limit: MAPPING_PAGE }, signal: ctx.signal });
      /** @type {Promise<{items: DataSource[]}>} */
      const sourcesCall = get("/data-sources", { signal: ctx.signal });
      const [defs, insts, ds] = await Promise.all([defsCall, instsCall, sourcesCall]);
      if (!ctx.alive) return;
      sources = ds.items;
      mount(defsBox, definitionsView(defs));
      mount(instBox, instancesView(insts));
    } catch (err) {
      if (isAbort(err)) return;
      mount(defsBox, errorBox(err, { "data-testid": "field-mappings-error" }));
      mount(instBox);
    }
  }
  await reload();
}

/** @param {Page<FieldMapping>} page */
function definitionsView(page) {
  if (!page.items.length) {
    return emptyState("No field mappings yet.", {
      testid: "field-mappings-empty",
      hint: "A field mapping says which of a connection's fields feeds each of your app's fields. Create one with New field mapping above, or:",
      curl: `curl -X POST ${location.origin}/field-mappings -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\\n  -d '{"key": "contact-fields", "level": "app", "integrationKey": "crm", "dataSourceKey": "contacts", "name": "Contact fields", "appSchema": {"type": "object", "properties": {"email": {"type": "string"}}}, "importValue": {"email": {"$expr": "email"}}, "autoDeploy": true}'`,
    });
  }
  return [
    table(
      ["Key", "Name", "Level", "Scope", "Data source", "App fields", "Revision"],
      page.items.map((m) =>
        h(
          "tr",
          { "data-testid": "field-mapping-row", "data-key": m.key },
          h("td", {}, copyValue(m.key)),
          h("td", {}, m.name),
          h("td", {}, badge(m.level)),
          h("td", { class: "wrap-anywhere" }, m.customerId ? `customer ${m.customerId}` : m.integrationKey ? `integration ${m.integrationKey}` : "every integration"),
          h("td", {}, m.dataSourceKey),
          h("td", {}, String(Object.keys(m.appSchema.properties || {}).length)),
          h("td", {}, `${m.revision}${m.autoDeploy ? " · auto-deploy" : ""}`),
        ),
      ),
      { "data-testid": "field-mappings-table" },
    ),
    page.cursor ? h("p", { class: "small muted" }, `Showing the first ${page.items.length}.`) : null,
  ];
}

/** @param {Page<FieldMappingInstance>} page */
function instancesView(page) {
  if (!page.items.length) {
    return emptyState("No field mapping is deployed to a connection yet.", {
      testid: "field-mapping-instances-empty",
      hint: "Deploy a connection (or mark a field mapping auto-deploy and connect a customer): its field mapping then appears here.",
    });
  }
  return [
    table(
      ["Field mapping", "Customer", "Connection", "Revision", "State"],
      page.items.map((fm) =>
        h(
          "tr",
          { "data-testid": "field-mapping-instance-row", "data-instance-id": fm.id },
          h("td", {}, h("a", { href: `#/field-mapping/${enc(fm.id)}`, "data-testid": "field-mapping-instance-link" }, fm.fieldMappingKey)),
          h("td", { class: "wrap-anywhere" }, h("a", { href: `#/customers/${enc(fm.customerId)}` }, fm.customerId)),
          h("td", {}, copyValue(fm.connectionId, { short: true })),
          h("td", {}, fm.outdated ? `${fm.baseRevision} (newest ${fm.latestRevision})` : String(fm.baseRevision)),
          h(
            "td",
            {},
            fm.archived
              ? badge("archived", "state-archived")
              : fm.broken
                ? badge(`broken: ${fm.problems.length} problem(s)`, "bad", { "data-testid": "field-mapping-instance-broken" })
                : badge("ok", "ok"),
            Object.keys(fm.customization).length ? [" ", badge("customised")] : null,
          ),
        ),
      ),
      { "data-testid": "field-mapping-instances-table" },
    ),
    page.cursor ? h("p", { class: "small muted" }, `Showing the first ${page.items.length}.`) : null,
  ];
}

/**
 * The "New field mapping" form.
 * @param {DataSource[]} sources
 * @param {() => void} close
 * @param {() => Promise<void>} reload
 */
function mappingForm(sources, close, reload) {
  const key = h("input", { type: "text", required: true, "data-testid": "fm-key", placeholder: "contact-fields", autocomplete: "off" });
  const name = h("input", { type: "text", required: true, "data-testid": "fm-name", placeholder: "Contact fields" });
  const level = h("select", { "data-testid": "fm-level" }, h("option", { value: "app" }, "app (one integration)"), h("option", { value: "universal" }, "universal"), h("option", { value: "customer" }, "customer (one customer)"));
  const source = h(
    "select",
    { "data-testid": "fm-data-source" },
    sources.length ? sources.map((s) => h("option", { value: `${s.integrationKey}/${s.key}` }, `${s.key} (${s.integrationKey})`)) : h("option", { value: "" }, "no data sources defined"),
  );
  const customerId = h("input", { type: "text", "data-testid": "fm-customer", placeholder: "only for level customer" });
  const appSchema = h("textarea", { class: "code", rows: 6, "data-testid": "fm-app-schema", spellcheck: "false" }, '{\n  "type": "object",\n  "properties": {\n    "email": {"type": "string"}\n  }\n}');
  const importValue = h("textarea", { class: "code", rows: 3, "data-testid": "fm-import", spellcheck: "false" }, '{"email": {"$expr": "email"}}');
  const autoDeploy = h("input", { type: "checkbox", "data-testid": "fm-auto-deploy", checked: true });
  const problem = errorBox(null, { "data-testid": "fm-error" });
  const done = statusLine();
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "fm-create" }, "Create field mapping");
  return h(
    "form",
    {
      novalidate: true,
      onsubmit: action({ button: submit, problem, status: done }, async () => {
        if (!key.value.trim()) throw new InputError("Key: enter a key, e.g. contact-fields.", key);
        if (!name.value.trim()) throw new InputError("Name: enter a name.", name);
        if (!source.value) throw new InputError("Define a data source first (POST /data-sources).", source);
        const [integrationKey, dataSourceKey] = source.value.split("/");
        await post("/field-mappings", {
          key: key.value.trim(),
          name: name.value.trim(),
          level: level.value,
          integrationKey: level.value === "app" ? integrationKey : null,
          customerId: level.value === "customer" ? customerId.value.trim() || null : null,
          dataSourceKey,
          appSchema: readJSON(appSchema, "App schema"),
          importValue: readJSON(importValue, "Import mapping"),
          autoDeploy: autoDeploy.checked,
        });
        close();
        await reload();
      }),
    },
    h("div", { class: "form-row" }, field("Key", key), field("Name", name), field("Level", level), field("Data source", source), field("Customer", customerId)),
    field("App schema (JSON Schema of your record)", appSchema),
    field("Import mapping (app field → expression over the connection's record)", importValue),
    h("label", { class: "checkbox" }, autoDeploy, " Deploy to matching connections automatically"),
    problem,
    h("div", { class: "actions" }, submit, done),
  );
}
