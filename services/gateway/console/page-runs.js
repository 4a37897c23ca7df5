// @ts-check
// Runs: every flow run of the workspace, newest first, filtered by flow, customer, connection,
// state and time (the filters live in the hash: #/runs?flow=…&state=…), a page at a time.

import { enc, get, isAbort } from "./api.js";
import { fmtDate, h, mount, shortId } from "./dom.js";
import { errorBox, field, InputError, showError } from "./forms.js";
import { card, copyButton, emptyRow, emptyState, stateBadge, syncRows, table } from "./widgets.js";
import { ACTIVE, fmtDuration, runDuration, triggerText } from "./page-run.js";
/** @import { Flow, Page } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */
/** @import { FlowRun } from "./page-run.js" */

/**
 * The list's filters as the hash carries them (from/to as datetime-local values).
 * @typedef {{flow: string, customer: string, connection: string, state: string, from: string, to: string}} Filters
 */

const STATES = ["queued", "running", "completed", "failed", "stopped"];
const FILTER_KEYS = /** @type {const} */ (["flow", "customer", "connection", "state", "from", "to"]);
const PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;
const REFRESH_MS = 3000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A datetime-local value ("2026-11-30T14:05") as an ISO instant; "" stays "".
 * @param {string} value
 */
function instant(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString();
}

/**
 * The API's query for the filters.
 * @param {Filters} f
 */
function apiQuery(f) {
  return { flowId: f.flow, customerId: f.customer, connectionId: f.connection, state: f.state, from: instant(f.from), to: instant(f.to) };
}

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  /** @type {Filters} */
  const filters = { flow: "", customer: "", connection: "", state: "", from: "", to: "" };
  for (const key of FILTER_KEYS) filters[key] = params.query.get(key)?.trim() ?? "";
  const filtered = FILTER_KEYS.some((key) => filters[key]);
  // The page size can be set in the hash too (#/runs?limit=20); the form keeps it.
  const asked = Number.parseInt(params.query.get("limit") ?? "", 10);
  const pageSize = asked >= 1 && asked <= MAX_PAGE_SIZE ? asked : PAGE_SIZE;

  /** @type {Flow[]} */
  let flows = [];
  try {
    /** @type {Page<Flow>} */
    const page = await get("/flows", { query: { limit: 1000 }, signal: ctx.signal });
    flows = page.items;
  } catch (err) {
    if (isAbort(err)) throw err;
  }
  if (!ctx.alive) return;
  const flowNames = new Map(flows.map((f) => [f.id, f.name]));

  /** @type {{items: FlowRun[], cursor: string | null, more: boolean, seq: number}} more: pages past the first are shown */
  const state = { items: [], cursor: null, more: false, seq: 0 };
  const listProblem = errorBox(null, { "data-testid": "runs-error" });
  const headers = ["State", "Run", "Flow", "Customer", "Connection", "Trigger", "Created", "Duration", "Nodes"];
  const grid = table(headers, [emptyRow(headers.length, "Loading…")], { "data-testid": "runs-table" });
  const empty = h("div");
  const more = h("button", { type: "button", class: "secondary", "data-testid": "runs-more", hidden: true, onclick: () => loadMore() }, "Load more");
  const count = h("p", { class: "small muted", "data-testid": "runs-count" });

  /** @param {FlowRun} run */
  function row(run) {
    const duration = runDuration(run);
    return h(
      "tr",
      { "data-testid": "run-row", "data-run-id": run.id, "data-state": run.state },
      h("td", {}, stateBadge(run.state, { "data-testid": "run-row-state" })),
      h("td", { class: "nowrap" }, runLink(run.id)),
      h("td", {}, h("a", { href: `#/flows/${enc(run.flowId)}` }, flowNames.get(run.flowId) ?? shortId(run.flowId)), h("span", { class: "muted small" }, ` r${run.revision}`)),
      h("td", { class: "wrap-anywhere", "data-testid": "run-row-customer" }, run.customerId),
      h("td", {}, h("code", { title: run.connectionId }, shortId(run.connectionId))),
      h("td", { class: "small" }, triggerText(run.trigger)),
      h("td", { class: "nowrap" }, fmtDate(run.createdAt)),
      h("td", { class: "nowrap" }, duration === null ? "—" : fmtDuration(duration)),
      h("td", {}, nodeCounts(run)),
    );
  }

  function show() {
    syncRows(grid.tbody, state.items, { key: (r) => r.id, render: row });
    grid.hidden = !state.items.length;
    mount(empty, state.items.length ? null : emptyView(filtered, ctx));
    more.hidden = !state.cursor;
    count.textContent = state.items.length ? `${state.items.length} run(s) shown${state.cursor ? "; older ones: Load more" : ""}` : "";
  }

  async function loadFirst() {
    const mine = ++state.seq;
    /** @type {Page<FlowRun>} */
    const page = await get("/flow-runs", { query: { ...apiQuery(filters), limit: pageSize }, signal: ctx.signal });
    if (mine !== state.seq || !ctx.alive) return;
    showError(listProblem, null);
    if (!state.more) {
      state.items = page.items;
      state.cursor = page.cursor ?? null;
    } else {
      // Pages below the first stay; the first page's runs are replaced and new ones put on top.
      const fresh = new Map(page.items.map((r) => [r.id, r]));
      const kept = state.items.filter((r) => !fresh.has(r.id));
      const oldest = page.items.at(-1);
      state.items = [...page.items, ...kept.filter((r) => !oldest || r.createdAt <= oldest.createdAt)];
    }
    show();
  }

  async function loadMore() {
    if (!state.cursor) return;
    more.disabled = true;
    state.seq += 1; // a refresh under way would put back the list as it was
    try {
      /** @type {Page<FlowRun>} */
      const page = await get("/flow-runs", { query: { ...apiQuery(filters), limit: pageSize, cursor: state.cursor }, signal: ctx.signal });
      if (!ctx.alive) return;
      const known = new Set(state.items.map((r) => r.id));
      state.items = [...state.items, ...page.items.filter((r) => !known.has(r.id))];
      state.cursor = page.cursor ?? null;
      state.more = true;
      show();
    } catch (err) {
      if (!isAbort(err)) showError(listProblem, err);
    } finally {
      more.disabled = false;
    }
  }

  mount(
    root,
    h(
      "div",
      { class: "runs-page" },
      h("div", { class: "page-head" }, h("h1", {}, "Runs"), h("span", { class: "muted small" }, "Every run of a flow instance, newest first.")),
      card(null, filterForm(filters, flows, pageSize === PAGE_SIZE ? "" : String(pageSize), ctx), listProblem, count, empty, grid, h("div", { class: "pager" }, more)),
    ),
  );
  try {
    await loadFirst();
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
    grid.hidden = true;
    showError(listProblem, err);
    return;
  }
  let ticks = 0;
  ctx.every(REFRESH_MS, async () => {
    // While nothing listed is under way only new runs can appear: look a third as often.
    ticks += 1;
    if (!state.items.some((r) => ACTIVE.has(r.state)) && ticks % 3) return;
    try {
      await loadFirst();
    } catch (err) {
      if (!isAbort(err) && ctx.alive) showError(listProblem, err);
    }
  });
}

/**
 * A run's short id as a link to its page, with a button that copies the whole id.
 * @param {string} id
 */
function runLink(id) {
  const source = h("input", { type: "text", value: id, readonly: true, class: "copy-source", tabindex: -1, "aria-hidden": "true" });
  return h(
    "span",
    { class: "copy-value" },
    h("a", { href: `#/run/${enc(id)}`, "data-testid": "run-link", title: id }, h("code", { class: "id" }, shortId(id))),
    source,
    copyButton(source, { class: "secondary small copy", "aria-label": `Copy ${id}` }),
  );
}

/**
 * "2 completed, 1 failed" for the nodes a run reached (for-each inner nodes left out).
 * @param {FlowRun} run
 */
function nodeCounts(run) {
  /** @type {Map<string, number>} */
  const counts = new Map();
  for (const [key, summary] of Object.entries(run.nodes)) {
    if (key.includes(".")) continue;
    counts.set(summary.state, (counts.get(summary.state) ?? 0) + 1);
  }
  if (!counts.size) return h("span", { class: "muted small" }, "none yet");
  return h(
    "span",
    { class: "node-counts small" },
    Array.from(counts, ([s, n]) => h("span", { class: `node-count state-${s}` }, `${n} ${s}`)),
  );
}

/**
 * What an empty list says: how to start a run, or how to widen the filters.
 * @param {boolean} filtered
 * @param {PageContext} ctx
 */
function emptyView(filtered, ctx) {
  if (filtered) {
    return emptyState("No runs match these filters.", {
      testid: "runs-empty",
      hint: "Widen the time range, or clear the filters.",
      button: h("button", { type: "button", class: "secondary", "data-testid": "runs-empty-clear", onclick: () => ctx.navigate("#/runs") }, "Clear filters"),
    });
  }
  return emptyState("No runs yet.", {
    testid: "runs-empty",
    hint: "A run starts when a flow instance's trigger fires (an app event, a schedule, a data record) or when your backend asks for one through the API, as below. Flow instances are on each customer's page.",
    curl: `curl -X POST ${location.origin}/flow-instances/$FLOW_INSTANCE_ID/run \\\n  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"input": {}}'`,
    button: h("p", {}, h("a", { href: "#/flows", "data-testid": "runs-empty-flows" }, "Go to flows")),
  });
}

/**
 * The filter form: applying it writes the filters into the hash (which renders the page again).
 * @param {Filters} filters
 * @param {Flow[]} flows
 * @param {string} limit the page size the hash asked for ("" for the default)
 * @param {PageContext} ctx
 */
function filterForm(filters, flows, limit, ctx) {
  const flow = h(
    "select",
    { "data-testid": "runs-filter-flow", value: filters.flow },
    h("option", { value: "" }, "any flow"),
    flows.map((f) => h("option", { value: f.id }, f.name === f.key ? f.key : `${f.name} (${f.key})`)),
    filters.flow && !flows.some((f) => f.id === filters.flow) ? h("option", { value: filters.flow }, filters.flow) : null,
  );
  const customer = h("input", { type: "search", "data-testid": "runs-filter-customer", value: filters.customer, autocomplete: "off", placeholder: "any" });
  const connection = h("input", { type: "search", "data-testid": "runs-filter-connection", value: filters.connection, autocomplete: "off", placeholder: "any", spellcheck: "false" });
  const runState = h(
    "select",
    { "data-testid": "runs-filter-state", value: filters.state },
    h("option", { value: "" }, "any state"),
    STATES.map((s) => h("option", { value: s }, s)),
  );
  const from = h("input", { type: "datetime-local", "data-testid": "runs-filter-from", value: filters.from });
  const to = h("input", { type: "datetime-local", "data-testid": "runs-filter-to", value: filters.to });
  const problem = errorBox(null, { "data-testid": "runs-filter-error" });
  const apply = h("button", { type: "submit", class: "primary", "data-testid": "runs-filter-apply" }, "Apply");
  const clear = h("button", { type: "button", class: "secondary", "data-testid": "runs-filter-clear", onclick: () => ctx.navigate("#/runs") }, "Clear");
  return h(
    "form",
    {
      role: "search",
      "aria-label": "Filter runs",
      class: "runs-filters",
      novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        showError(problem, null);
        const next = new URLSearchParams();
        const values = { flow: flow.value, customer: customer.value.trim(), connection: connection.value.trim(), state: runState.value, from: from.value, to: to.value };
        try {
          if (values.connection && !UUID.test(values.connection)) throw new InputError("Connection id: paste a connection's id (a UUID).", connection);
          if (values.from && values.to && values.from >= values.to) throw new InputError("From must be before To.", from);
        } catch (err) {
          showError(problem, err);
          if (err instanceof InputError) err.control?.focus();
          return;
        }
        for (const [key, value] of Object.entries({ ...values, limit })) if (value) next.set(key, value);
        const text = next.toString();
        ctx.navigate(text ? `#/runs?${text}` : "#/runs");
      },
    },
    h(
      "div",
      { class: "form-row" },
      field("Flow", flow),
      field("Customer id", customer),
      field("Connection id", connection),
      field("State", runState),
      field("From", from),
      field("To", to),
      h("div", { class: "button-cell actions" }, apply, clear),
    ),
    problem,
  );
}
