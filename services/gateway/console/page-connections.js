// @ts-check
// Connections: filters, a live table with per-row actions, and connecting a test account
// behind a "New connection" button.

import { del, enc, get, isAbort, post } from "./api.js";
import { fmtDate, h, mount, shortId } from "./dom.js";
import { action, errorBox, field, showError } from "./forms.js";
import { card, confirmButton, copyValue, emptyRow, emptyState, newButton, stateBadge, syncRows, table } from "./widgets.js";
/**
 * @import {
 *   Connection, ConnectionTestResult, ConnectSession, Deployment, Integration, Page, Workspace,
 * } from "./api-types.js"
 */
/** @import { PageContext, PageParams } from "./app.js" */

/** @typedef {{customerId: string, integrationKey: string, state: string}} Filters */

const STATES = ["connected", "disconnected", "error", "archived"];
const REFRESH_MS = 3000;

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  /** @type {Page<Integration>} */
  const { items: integrations } = await get("/integrations", { signal: ctx.signal });
  /** @type {Filters} */
  const filters = {
    customerId: params.query.get("customerId") || "",
    integrationKey: params.query.get("integrationKey") || "",
    state: params.query.get("state") || "",
  };
  const listProblem = errorBox(null, { "data-testid": "connections-error" });
  const actionResult = h("div", { "data-testid": "connection-action-result", role: "status", "aria-live": "polite" });
  const grid = table(["Name", "Customer", "Integration", "State", "Actions"], [], { "data-testid": "connections-table", class: "stack-on-phone" });
  const more = h("p", { class: "small muted" });
  const noRows = emptyRow(5, "No connection matches these filters.");
  const create = newButton("New connection", () => connectForm(integrations, load, ctx));
  const empty = emptyState("No connections yet.", {
    hint: integrations.length
      ? "A connection is made when a customer connects an account through a Connect session. Connect one for the test customer here, or open a session for a customer with:"
      : "Create an integration first (Integrations page); then customers connect their accounts to it.",
    curl: `curl -X POST ${location.origin}/connect-sessions -H "Authorization: Bearer $TETHER_ADMIN_TOKEN" -H 'Content-Type: application/json' -d '${JSON.stringify({ customerId: "cus_1", integrationKey: integrations[0]?.key ?? "hubspot" })}'`,
    button: integrations.length
      ? h("button", { type: "button", class: "secondary", "data-testid": "empty-new-connection", onclick: () => create.open() }, "New connection")
      : h("a", { href: "#/integrations", class: "button-link" }, "Integrations"),
    testid: "connections-empty",
  });
  empty.hidden = true;
  mount(grid.tbody, emptyRow(5, "Loading…"));
  let seq = 0;

  async function load() {
    const mine = ++seq;
    try {
      /** @type {Page<Connection>} */
      const page = await get("/connections", { query: { ...filters, limit: 100 }, signal: ctx.signal });
      if (mine !== seq || !ctx.alive) return;
      showError(listProblem, null);
      const none = !page.items.length && !filters.customerId && !filters.integrationKey && !filters.state;
      empty.hidden = !none;
      grid.hidden = none;
      syncRows(grid.tbody, page.items, {
        key: (c) => c.id,
        render: row,
        empty: noRows,
        // Keep a row with an open confirm step too.
        keep: (tr) => Boolean(tr.querySelector("[data-testid$='-confirm']")),
      });
      more.textContent = page.cursor ? "Showing the first 100 connections: narrow the filters to see others." : "";
    } catch (err) {
      if (isAbort(err) || mine !== seq) return;
      showError(listProblem, err);
    }
  }

  /**
   * Say how a row's action went, above the table.
   * @param {string} kind what was done, e.g. "Refresh acme"
   * @param {string} text
   */
  function report(kind, text, isError = false) {
    mount(actionResult, h("div", { class: isError ? "error" : "success", role: isError ? "alert" : "status" }, h("p", {}, `${kind}: ${text}`)));
  }

  /**
   * Run a row's action, report its outcome and reload the table.
   * @param {string} kind
   * @param {() => Promise<string>} run resolves to what to report
   */
  async function act(kind, run) {
    try {
      const text = await run();
      report(kind, text);
    } catch (err) {
      if (!isAbort(err)) report(kind, err instanceof Error ? err.message : String(err), true);
    }
    await load();
  }

  /** @param {Connection} c */
  function row(c) {
    /**
     * @param {string} label
     * @param {string} testid
     * @param {() => Promise<string>} run
     */
    const button = (label, testid, run) => {
      const b = h("button", {
        type: "button",
        class: "secondary",
        "data-testid": testid,
        onclick: async () => {
          b.disabled = true;
          await act(`${label} ${c.name}`, run);
          b.disabled = false;
        },
      }, label);
      return b;
    };
    const live = c.state !== "archived";
    return h(
      "tr",
      { "data-testid": "connection-row", "data-connection-id": c.id },
      h("td", {}, c.name, h("div", { class: "small muted" }, copyValue(c.id, { short: true, testid: "connection-id" }))),
      h("td", { class: "id-cell", "data-label": "Customer" }, copyValue(c.customerId, { href: `#/customers/${enc(c.customerId)}` })),
      h("td", { "data-label": "Integration" }, c.integrationKey),
      h(
        "td",
        {},
        stateBadge(c.state, { "data-testid": "connection-state" }),
        c.lastError ? h("div", { class: "small text-danger cell-text", "data-testid": "connection-error" }, c.lastError) : null,
        h("div", { class: "small muted" }, c.lastRefreshAt ? `refreshed ${fmtDate(c.lastRefreshAt)}` : `since ${fmtDate(c.createdAt)}`),
      ),
      h(
        "td",
        {},
        h(
          "div",
          { class: "row-actions" },
          live ? button("Test", "connection-test", async () => {
            /** @type {ConnectionTestResult} */
            const r = await post(`/connections/${enc(c.id)}/test`, {});
            return r.ok ? `ok${r.status ? ` (HTTP ${r.status})` : ""}` : `failed${r.status ? ` (HTTP ${r.status})` : ""}: ${r.error || "no detail"}`;
          }) : null,
          live ? button("Refresh", "connection-refresh", async () => {
            /** @type {Connection} */
            const r = await post(`/connections/${enc(c.id)}/refresh`, {});
            return `now ${r.state}`;
          }) : null,
          live ? button("Redeploy", "connection-deploy", async () => {
            /** @type {Deployment} */
            const d = await post(`/connections/${enc(c.id)}/deploy`, {});
            return `deployment ${shortId(d.id)} ${d.status} (${d.stepsDone}/${d.stepsTotal} steps)`;
          }) : null,
          live ? confirmButton({
            label: "Archive",
            confirmLabel: "Archive",
            testid: "connection-archive",
            cls: "secondary small",
            action: () => act(`Archive ${c.name}`, async () => {
              /** @type {Connection} */
              const r = await del(`/connections/${enc(c.id)}`);
              return `now ${r.state}`;
            }),
          }) : null,
        ),
      ),
    );
  }

  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Connections"), create),
    card(null, filterForm(integrations, filters, load, ctx), listProblem, actionResult, empty, grid, more),
  );
  await load();
  ctx.every(REFRESH_MS, load);
}

/**
 * @param {Integration[]} integrations
 * @param {Filters} filters changed in place
 * @param {() => void} apply
 * @param {PageContext} ctx
 */
function filterForm(integrations, filters, apply, ctx) {
  const customer = h("input", { type: "search", "data-testid": "filter-customer", value: filters.customerId, autocomplete: "off", placeholder: "any" });
  const integration = h(
    "select",
    { "data-testid": "filter-integration", value: filters.integrationKey },
    h("option", { value: "" }, "any"),
    integrations.map((i) => h("option", { value: i.key }, i.name === i.key ? i.key : `${i.name} (${i.key})`)),
  );
  const state = h(
    "select",
    { "data-testid": "filter-state", value: filters.state },
    h("option", { value: "" }, "any"),
    STATES.map((s) => h("option", { value: s }, s)),
  );
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const update = () => {
    clearTimeout(timer);
    filters.customerId = customer.value.trim();
    filters.integrationKey = integration.value;
    filters.state = state.value;
    apply();
  };
  customer.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(update, 300);
  });
  ctx.onLeave(() => clearTimeout(timer));
  integration.addEventListener("change", update);
  state.addEventListener("change", update);
  return h(
    "form",
    { role: "search", "aria-label": "Filter connections", onsubmit: (event) => { event.preventDefault(); update(); } },
    h("div", { class: "form-row" }, field("Customer id", customer), field("Integration", integration), field("State", state)),
  );
}

/**
 * @param {Integration[]} integrations
 * @param {() => void} reload
 * @param {PageContext} ctx
 */
function connectForm(integrations, reload, ctx) {
  const select = h(
    "select",
    { "data-testid": "connect-integration" },
    integrations.map((i) => h("option", { value: i.key }, i.name === i.key ? i.key : `${i.name} (${i.key})`)),
  );
  const result = h("div", { "data-testid": "connect-result", role: "status", "aria-live": "polite" });
  const problem = errorBox(null, { "data-testid": "connect-error" });
  /** @type {Window | null} */
  let popup = null;
  const button = h("button", { type: "button", class: "primary", "data-testid": "connect-start", disabled: !integrations.length }, "Connect an account");
  button.onclick = action({ button, problem }, async () => {
    mount(result);
    /** @type {Workspace} */
    const ws = await get("/workspace");
    const customerId = ws.settings?.testCustomer?.id || "test-customer";
    /** @type {ConnectSession} */
    const session = await post("/connect-sessions", { integrationKey: select.value, customerId });
    popup = window.open(session.url, "tether-connect", "popup,width=520,height=720");
    if (!popup) {
      mount(
        result,
        h("p", { class: "notice" }, "The browser blocked the popup. ", h("a", { href: session.url, target: "tether-connect" }, "Open the Connect page"), "."),
      );
    } else {
      mount(result, h("p", { class: "muted" }, `Waiting for the Connect window (customer ${customerId})…`));
    }
  });

  /** @param {MessageEvent} event */
  const onMessage = (event) => {
    if (!result.isConnected) {
      // The form was closed: the table's own refresh shows the new connection.
      window.removeEventListener("message", onMessage);
      return;
    }
    const data = event.data;
    if (!data || typeof data !== "object" || data.type !== "tether:connection") return;
    if (event.origin !== location.origin && (!popup || event.source !== popup)) return;
    const ok = data.status === "connected";
    mount(
      result,
      h(
        "div",
        { class: ok ? "success" : "error" },
        h(
          "p",
          {},
          `Connection ${data.status}`,
          data.connectionId ? ` — ${data.connectionId}` : "",
          data.error ? `: ${data.error}` : "",
        ),
      ),
    );
    reload();
  };
  window.addEventListener("message", onMessage);
  ctx.onLeave(() => window.removeEventListener("message", onMessage));
  return [
    h("p", { class: "muted" }, "Connects an account for the workspace's test customer (Settings → Testing) in the Connect UI, in a popup."),
    integrations.length ? null : h("p", { class: "notice" }, "Create an integration first (Integrations page)."),
    h("div", { class: "form-row" }, field("Integration", select), h("div", { class: "button-cell" }, button)),
    problem,
    result,
  ];
}
