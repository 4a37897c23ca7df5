// @ts-check
// One customer: details, and tabs for their connections, deployments and flows.

import { enc, get, isAbort } from "./api.js";
import { customerFlows } from "./customer-flows.js";
import { fmtDate, h, mount, pretty, shortId } from "./dom.js";
import { errorBox, sentence } from "./forms.js";
import {
  badge, card, emptyRow, loading, progressBar, stateBadge, statusBadge, table, tabs,
} from "./widgets.js";
/** @import { Connection, Customer, Deployment, Page } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */

/** @typedef {(el: HTMLElement, customer: Customer, ctx: PageContext) => void} TabBuilder */

/** @type {Record<string, TabBuilder>} */
const TABS = { connections: connectionsTab, deployments: deploymentsTab, flows: customerFlows };

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
      { key: "connections", label: "Connections", testid: "tab-customer-connections" },
      { key: "deployments", label: "Deployments", testid: "tab-customer-deployments" },
      { key: "flows", label: "Flows", testid: "tab-customer-flows" },
    ],
    (key, panel) => {
      if (!built[key]) {
        built[key] = h("div", {});
        TABS[key](built[key], customer, ctx);
      }
      mount(panel, built[key]);
    },
  );
  mount(
    root,
    h("p", { class: "small" }, h("a", { href: "#/customers" }, "← Customers")),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, customer.name || customer.id),
      customer.archived ? badge("archived") : null,
    ),
    detailsCard(customer),
    view.el,
  );
  const wanted = params.query.get("tab") ?? "";
  view.select(Object.hasOwn(TABS, wanted) ? wanted : "connections");
}

/** @param {Customer} customer */
function detailsCard(customer) {
  const invalid = customer.fieldsValid === false
    ? h(
      "div",
      { class: "warning", role: "alert", "data-testid": "fields-invalid" },
      h("p", {}, "This customer's fields do not match the workspace's customer fields schema:"),
      h(
        "ul",
        {},
        (customer.fieldsErrors || []).map((e) => h("li", {}, sentence(e.field ? `${e.field}: ${e.message}` : e.message))),
      ),
    )
    : null;
  return card(
    "Customer",
    h(
      "dl",
      { class: "meta" },
      h("dt", {}, "Id"), h("dd", { "data-testid": "customer-id" }, h("code", {}, customer.id)),
      h("dt", {}, "Name"), h("dd", { "data-testid": "customer-name" }, customer.name || "—"),
      h("dt", {}, "Created"), h("dd", {}, fmtDate(customer.createdAt)),
      h("dt", {}, "Updated"), h("dd", {}, fmtDate(customer.updatedAt)),
      customer.archived ? [h("dt", {}, "Archived"), h("dd", {}, fmtDate(customer.archivedAt))] : null,
    ),
    invalid,
    h("h3", {}, "Fields"),
    h("pre", { "data-testid": "customer-fields" }, pretty(customer.fields || {})),
  );
}

/**
 * @param {Customer} customer
 * @param {PageContext} ctx
 */
async function loadConnections(customer, ctx) {
  /** @type {Page<Connection>} */
  const page = await get("/connections", { query: { customerId: customer.id, limit: 100 }, signal: ctx.signal });
  return page.items;
}

/** @type {TabBuilder} */
async function connectionsTab(el, customer, ctx) {
  mount(el, loading());
  try {
    const items = await loadConnections(customer, ctx);
    const rows = items.map((c) =>
      h(
        "tr",
        { "data-testid": "customer-connection-row" },
        h("td", {}, c.name),
        h("td", {}, c.integrationKey),
        h("td", {}, stateBadge(c.state)),
        h("td", { class: "nowrap" }, fmtDate(c.lastRefreshAt)),
        h("td", { class: "wrap-anywhere" }, c.lastError || ""),
        h("td", {}, h("code", { title: c.id }, shortId(c.id))),
      ),
    );
    mount(
      el,
      card(
        null,
        table(
          ["Name", "Integration", "State", "Last refresh", "Last error", "Id"],
          rows.length ? rows : [emptyRow(6, "This customer has no connections.")],
        ),
        h("p", { class: "small muted" }, h("a", { href: "#/connections" }, "Manage connections")),
      ),
    );
  } catch (err) {
    if (!isAbort(err)) mount(el, errorBox(err));
  }
}

/** @type {TabBuilder} */
async function deploymentsTab(el, customer, ctx) {
  mount(el, loading());
  try {
    const connections = await loadConnections(customer, ctx);
    if (!connections.length) {
      mount(el, card(null, h("p", { class: "muted" }, "No connections, so nothing was deployed.")));
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
    table(["Status", "Reason", "Progress", "Created", ""], rows.length ? rows : [emptyRow(5, "No deployments yet.")]),
  );
}
