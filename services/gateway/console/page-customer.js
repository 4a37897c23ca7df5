// @ts-check
// One customer at a glance: their fields, connections (with state), flow instances, recent
// runs and data sources, each with what to do when there are none; then tabs for their
// deployments and customer-level flows.

import { enc, get, isAbort } from "./api.js";
import { customerFlows } from "./customer-flows.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import { errorBox, fieldProblem } from "./forms.js";
import {
  badge, card, copyValue, emptyRow, emptyState, loading, progressBar, stateBadge, statusBadge, table, tabs,
} from "./widgets.js";
/**
 * @import {
 *   Connection, Customer, DataSourceInstance, Deployment, FlowInstance, FlowRun, Page,
 * } from "./api-types.js"
 */
/** @import { PageContext, PageParams } from "./app.js" */

/** @typedef {(el: HTMLElement, customer: Customer, ctx: PageContext) => void} TabBuilder */

/** @type {Record<string, TabBuilder>} */
const TABS = { deployments: deploymentsTab, flows: customerFlows };
const RECENT_RUNS = 10;
const AUTH = `-H "Authorization: Bearer $TETHER_ADMIN_TOKEN"`;
const JSON_BODY = `-H 'Content-Type: application/json'`;

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const id = params.id ?? "";
  /** @type {Customer} */
  const customer = await get(`/customers/${enc(id)}`, { signal: ctx.signal });
  /** @type {Record<string, HTMLDivElement>} tabs are built once, when first shown */
  const built = {};
  const view = tabs(
    [
      { key: "deployments", label: "Deployments", testid: "tab-customer-deployments" },
      { key: "flows", label: "Customer-level flows", testid: "tab-customer-flows" },
    ],
    (key, panel) => {
      if (!built[key]) {
        built[key] = h("div", {});
        TABS[key](built[key], customer, ctx);
      }
      mount(panel, built[key]);
    },
  );
  const summary = h("p", { class: "glance-summary", "data-testid": "customer-summary", "aria-live": "polite" });
  const connectionsBox = h("div", { "data-testid": "customer-connections" }, loading());
  const instancesBox = h("div", { "data-testid": "customer-instances" }, loading());
  const runsBox = h("div", { "data-testid": "customer-runs" }, loading());
  const sourcesBox = h("div", { "data-testid": "customer-data-sources" }, loading());
  mount(
    root,
    h("p", { class: "small" }, h("a", { href: "#/customers" }, "← Customers")),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, customer.name || customer.id),
      customer.archived ? badge("archived") : null,
      summary,
    ),
    detailsCard(customer),
    h(
      "div",
      { class: "glance" },
      card("Connections", connectionsBox),
      card("Flow instances", instancesBox),
    ),
    card("Recent runs", runsBox),
    card("Data sources", sourcesBox),
    view.el,
  );
  const wanted = params.query.get("tab") ?? "";
  view.select(Object.hasOwn(TABS, wanted) ? wanted : "deployments");
  if (Object.hasOwn(TABS, wanted)) view.el.scrollIntoView();

  const connections = section(connectionsBox, () => customerConnections(customer, ctx));
  const instances = section(instancesBox, async () => {
    /** @type {Page<FlowInstance>} */
    const page = await get("/flow-instances", { query: { customerId: customer.id, limit: 100 }, signal: ctx.signal });
    return page.items;
  });
  const runs = section(runsBox, async () => {
    /** @type {Page<FlowRun>} */
    const page = await get("/flow-runs", { query: { customerId: customer.id, limit: RECENT_RUNS }, signal: ctx.signal });
    return page;
  });
  const sources = section(sourcesBox, async () => {
    const mine = await connections;
    if (!mine) return null;
    const pages = await Promise.all(
      mine.filter((c) => c.state !== "archived").map(async (c) => {
        /** @type {{items: DataSourceInstance[]}} */
        const page = await get("/data-source-instances", { query: { connectionId: c.id }, signal: ctx.signal });
        return page.items;
      }),
    );
    return pages.flat();
  });

  const [cs, is, rs, ds] = await Promise.all([connections, instances, runs, sources]);
  if (!ctx.alive) return;
  if (cs) mount(connectionsBox, connectionsView(customer, cs));
  if (is) mount(instancesBox, instancesView(customer, is, cs ?? []));
  if (rs) mount(runsBox, runsView(customer, rs, is ?? []));
  if (ds) mount(sourcesBox, sourcesView(ds, cs ?? []));
  summary.textContent = glance(cs, is, rs);
}

/**
 * Run one section's read; on failure show the error in the section and resolve to null.
 * @template T
 * @param {HTMLElement} box
 * @param {() => Promise<T>} read
 * @returns {Promise<T | null>}
 */
async function section(box, read) {
  try {
    return await read();
  } catch (err) {
    if (!isAbort(err)) mount(box, errorBox(err));
    return null;
  }
}

/**
 * The customer's connections (the first 100).
 * @param {Customer} customer
 * @param {PageContext} ctx
 */
async function customerConnections(customer, ctx) {
  /** @type {Page<Connection>} */
  const page = await get("/connections", { query: { customerId: customer.id, limit: 100 }, signal: ctx.signal });
  return page.items;
}

/**
 * "2 connections (1 in error) · 3 flow instances · 10 recent runs (2 failed)".
 * @param {Connection[] | null} cs
 * @param {FlowInstance[] | null} is
 * @param {Page<FlowRun> | null} rs
 */
function glance(cs, is, rs) {
  /** @param {number} n @param {string} word */
  const count = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const parts = [];
  if (cs) {
    const live = cs.filter((c) => c.state !== "archived");
    const bad = live.filter((c) => c.state === "error" || c.state === "disconnected").length;
    parts.push(`${count(live.length, "connection")}${bad ? ` (${bad} not connected)` : ""}`);
  }
  if (is) parts.push(count(is.filter((i) => !i.archived).length, "flow instance"));
  if (rs) {
    const failed = rs.items.filter((r) => r.state === "failed").length;
    parts.push(`${count(rs.items.length, rs.cursor ? "recent run" : "run")}${failed ? ` (${failed} failed)` : ""}`);
  }
  return parts.join(" · ");
}

/** @param {Customer} customer */
function detailsCard(customer) {
  const invalid = customer.fieldsValid === false
    ? h(
      "div",
      { class: "warning", role: "alert", "data-testid": "fields-invalid" },
      h("p", {}, "This customer's fields do not match the workspace's customer fields schema:"),
      h("ul", {}, (customer.fieldsErrors || []).map((e) => h("li", {}, fieldProblem(e.field, e.message)))),
    )
    : null;
  const fields = customer.fields || {};
  return card(
    "Customer",
    h(
      "dl",
      { class: "meta" },
      h("dt", {}, "Id"), h("dd", { "data-testid": "customer-id" }, copyValue(customer.id)),
      h("dt", {}, "Name"), h("dd", { "data-testid": "customer-name" }, customer.name || "—"),
      h("dt", {}, "Created"), h("dd", {}, fmtDate(customer.createdAt)),
      h("dt", {}, "Updated"), h("dd", {}, fmtDate(customer.updatedAt)),
      customer.archived ? [h("dt", {}, "Archived"), h("dd", {}, fmtDate(customer.archivedAt))] : null,
    ),
    invalid,
    h("h3", {}, "Fields"),
    Object.keys(fields).length
      ? h("pre", { "data-testid": "customer-fields" }, pretty(fields))
      : h("p", { class: "muted", "data-testid": "customer-fields" }, "No fields. Your backend sets them with the customer's token or PATCH /customers/{id}."),
  );
}

/**
 * @param {Customer} customer
 * @param {Connection[]} items
 */
function connectionsView(customer, items) {
  if (!items.length) {
    return emptyState("No connections yet.", {
      hint: "This customer connects an account in your app through a Connect session; open one for them with:",
      curl: `curl -X POST ${location.origin}/connect-sessions ${AUTH} ${JSON_BODY} -d '${JSON.stringify({ customerId: customer.id, integrationKey: "hubspot" })}'`,
      testid: "customer-connections-empty",
    });
  }
  const rows = items.map((c) =>
    h(
      "tr",
      { "data-testid": "customer-connection-row", "data-connection-id": c.id },
      h("td", {}, c.name, h("div", { class: "small muted" }, c.integrationKey, " ", copyValue(c.id, { short: true }))),
      h(
        "td",
        {},
        stateBadge(c.state, { "data-testid": "customer-connection-state" }),
        c.lastError ? h("div", { class: "small text-danger cell-text" }, c.lastError) : null,
        h("div", { class: "small muted" }, c.lastRefreshAt ? `refreshed ${fmtDate(c.lastRefreshAt)}` : `since ${fmtDate(c.createdAt)}`),
      ),
    ),
  );
  return [
    table(["Connection", "State"], rows),
    h("p", { class: "small muted" }, h("a", { href: `#/connections?customerId=${enc(customer.id)}` }, "Test, refresh or archive them on the Connections page")),
  ];
}

/**
 * @param {Customer} customer
 * @param {FlowInstance[]} items
 * @param {Connection[]} connections
 */
function instancesView(customer, items, connections) {
  if (!items.length) {
    const connection = connections.find((c) => c.state !== "archived");
    return emptyState("No flow instances yet.", {
      hint: connections.length
        ? "A flow is deployed to a connection when it is created (flows with auto-deploy) or with:"
        : "Flows are deployed to a customer's connections: this customer has none yet.",
      curl: connection
        ? `curl -X POST ${location.origin}/flow-instances ${AUTH} ${JSON_BODY} -d '${JSON.stringify({ flowId: "<flow id>", connectionId: connection.id })}'`
        : undefined,
      testid: "customer-instances-empty",
    });
  }
  const rows = items.map((i) =>
    h(
      "tr",
      { "data-testid": "customer-instance-row", "data-instance-id": i.id },
      h("td", {}, h("a", { href: `#/flows/${enc(i.flowId)}` }, i.flow?.name || "flow"), h("div", { class: "small muted" }, i.integrationKey, " ", copyValue(i.id, { short: true }))),
      h(
        "td",
        {},
        i.archived ? badge("archived") : i.enabled ? badge("enabled", "ok") : badge("disabled", "warn"),
        " ",
        i.outdated ? badge(`r${i.baseRevision} of ${i.latestRevision}`, "warn", { title: "A newer revision of the flow exists" }) : badge(`r${i.baseRevision}`),
        Object.keys(i.customization || {}).length ? [" ", badge("customised", "info")] : null,
      ),
    ),
  );
  return [
    table(["Flow", "State"], rows),
    h("p", { class: "small muted" }, h("a", { href: `#/customers/${enc(customer.id)}?tab=flows` }, "Customise them in the customer-level flows tab")),
  ];
}

/**
 * @param {Customer} customer
 * @param {Page<FlowRun>} page
 * @param {FlowInstance[]} instances
 */
function runsView(customer, page, instances) {
  const names = new Map(instances.map((i) => [i.id, i.flow?.name || "flow"]));
  if (!page.items.length) {
    const instance = instances.find((i) => i.enabled && !i.archived);
    return emptyState("No runs yet.", {
      hint: instance
        ? "A run starts when a flow's trigger fires; start one by hand with:"
        : "Runs start when the trigger of one of this customer's flow instances fires.",
      curl: instance
        ? `curl -X POST ${location.origin}/flow-instances/${instance.id}/run ${AUTH} ${JSON_BODY} -d '{"input": {}}'`
        : undefined,
      testid: "customer-runs-empty",
    });
  }
  const rows = page.items.map((r) =>
    h(
      "tr",
      { "data-testid": "customer-run-row", "data-run-id": r.id },
      h("td", { class: "id-cell" }, copyValue(r.id, { short: true, href: `#/run/${enc(r.id)}` }), h("div", {}, statusBadge(r.state, { "data-testid": "customer-run-state" }))),
      h("td", {}, names.get(r.flowInstanceId) ?? h("span", { class: "muted" }, "—"), h("div", { class: "small muted" }, r.trigger?.type ?? "")),
      h("td", { class: "nowrap" }, fmtDate(r.createdAt)),
      h("td", { class: "cell-text small" }, r.errors?.length ? h("span", { class: "text-danger" }, r.errors[0].message) : ""),
    ),
  );
  return [
    table(["Run", "Flow", "Started", "Error"], rows),
    h("p", { class: "small muted" }, h("a", { href: `#/runs?customerId=${enc(customer.id)}` }, page.cursor ? "All of this customer's runs" : "This customer's runs on the Runs page")),
  ];
}

/**
 * @param {DataSourceInstance[]} items
 * @param {Connection[]} connections
 */
function sourcesView(items, connections) {
  if (!items.length) {
    return emptyState("No data sources deployed.", {
      hint: connections.length
        ? "A data source is deployed to every connection of its integration (Data page)."
        : "Data sources are deployed to a customer's connections: this customer has none yet.",
      button: h("a", { href: "#/data", class: "button-link" }, "Data sources"),
      testid: "customer-data-sources-empty",
    });
  }
  const names = new Map(connections.map((c) => [c.id, c.name]));
  const rows = items.map((d) =>
    h(
      "tr",
      { "data-testid": "customer-data-source-row" },
      h("td", {}, h("code", {}, d.dataSourceKey)),
      h("td", {}, statusBadge(d.status), d.lastError ? h("div", { class: "small text-danger cell-text" }, d.lastError) : null),
      h("td", {}, names.get(d.connectionId) ?? d.connectionId),
      h("td", { class: "nowrap" }, fmtDate(d.updatedAt)),
    ),
  );
  return table(["Data source", "Status", "Connection", "Updated"], rows);
}

/** @type {TabBuilder} */
async function deploymentsTab(el, customer, ctx) {
  mount(el, loading());
  try {
    const connections = await customerConnections(customer, ctx);
    if (!connections.length) {
      mount(el, card(null, emptyState("Nothing deployed yet.", {
        hint: "Deployments bring a connection's flows, app events and data sources up to date; this customer has no connections yet.",
        testid: "customer-deployments-empty",
      })));
      return;
    }
    const sections = await Promise.all(
      connections.map(async (c) => {
        try {
          /** @type {Page<Deployment>} */
          const page = await get(`/connections/${enc(c.id)}/deployments`, { query: { limit: 20 }, signal: ctx.signal });
          return deploymentsCard(c, page.items);
        } catch (err) {
          if (isAbort(err)) throw err;
          return card(`${c.name} (${c.integrationKey})`, errorBox(err));
        }
      }),
    );
    mount(el, sections);
  } catch (err) {
    if (!isAbort(err)) mount(el, errorBox(err));
  }
}

/**
 * @param {Connection} connection
 * @param {Deployment[]} items
 */
function deploymentsCard(connection, items) {
  const rows = items.map((d) =>
    h(
      "tr",
      { "data-testid": "customer-deployment-row" },
      h("td", {}, statusBadge(d.status)),
      h("td", {}, d.reason),
      h(
        "td",
        {},
        progressBar(d.stepsDone, d.stepsTotal, {
          testid: "customer-deployment-progress",
          complete: d.status === "succeeded",
        }),
      ),
      h("td", { class: "nowrap" }, fmtDate(d.createdAt)),
      h("td", {}, h("a", { href: `#/deployments/${enc(d.id)}` }, "Steps")),
    ),
  );
  return card(
    null,
    h("h2", {}, connection.name, " ", h("span", { class: "muted small" }, connection.integrationKey), " ", stateBadge(connection.state)),
    table(["Status", "Reason", "Progress", "Created", ""], rows.length ? rows : [emptyRow(5, "No deployments yet: one starts when the connection is created.")]),
  );
}
