// @ts-check
// Deployments: list with progress, steps of the selected one, redeploy, live refresh.

import { enc, get, isAbort, post } from "./api.js";
import { fmtDate, h, mount, shortId } from "./dom.js";
import { action, errorBox, field, showError } from "./forms.js";
import { card, copyValue, emptyRow, emptyState, loading, progressBar, statusBadge, syncRows, table } from "./widgets.js";
/** @import { Deployment, DeploymentPage, Integration, Page } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */

const ACTIVE = new Set(["pending", "running"]);
const REFRESH_MS = 2000; // while a deployment is pending or running
const IDLE_REFRESH_MS = 5000; // otherwise, to notice new deployments

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  /**
   * @type {{
   *   integrationKey: string, selected: string | null, items: Deployment[],
   *   detail: Deployment | null, timer: (() => void) | null, seq: number,
   * }}
   */
  const state = {
    integrationKey: params.query.get("integrationKey") || "",
    selected: params.id || null,
    items: [],
    detail: null,
    timer: null,
    seq: 0,
  };
  /** @type {Integration[]} */
  let integrations = [];
  try {
    /** @type {Page<Integration>} */
    const page = await get("/integrations", { signal: ctx.signal });
    integrations = page.items;
  } catch (err) {
    if (isAbort(err)) throw err;
  }
  const listProblem = errorBox(null, { "data-testid": "deployments-error" });
  const aggregate = h("div", { class: "small muted", "data-testid": "deployments-aggregate" });
  const grid = table(["Status", "Reason", "Connection", "Created", "Progress"], [], { "data-testid": "deployments-table", class: "stack-on-phone" });
  const detailBox = h("div", { "data-testid": "deployment-detail" });
  const empty = emptyState("No deployments yet.", {
    hint: "A deployment starts by itself when a connection is created or an element (flow, app event, data source) changes; redeploy a connection with:",
    curl: `curl -X POST ${location.origin}/connections/<connection id>/deploy -H "Authorization: Bearer $TETHER_ADMIN_TOKEN"`,
    button: h("a", { href: "#/connections", class: "button-link" }, "Connections"),
    testid: "deployments-empty",
  });
  empty.hidden = true;

  const filter = h(
    "select",
    {
      "data-testid": "deployments-integration",
      value: state.integrationKey,
      onchange: () => {
        state.integrationKey = filter.value;
        load();
      },
    },
    h("option", { value: "" }, "all integrations"),
    integrations.map((i) => h("option", { value: i.key }, i.name === i.key ? i.key : `${i.name} (${i.key})`)),
  );

  function schedule() {
    if (state.timer) state.timer();
    state.timer = null;
    const busy = state.items.some((d) => ACTIVE.has(d.status)) || (state.detail !== null && ACTIVE.has(state.detail.status));
    state.timer = ctx.after(busy ? REFRESH_MS : IDLE_REFRESH_MS, () => load(true));
  }

  async function load(quiet = false) {
    const mine = ++state.seq;
    if (!quiet && !state.items.length) mount(grid.tbody, emptyRow(5, "Loading…"));
    try {
      /** @type {Promise<DeploymentPage>} */
      const listed = get("/deployments", { query: { limit: 50, integrationKey: state.integrationKey }, signal: ctx.signal });
      const [page, detail] = await Promise.all([listed, readSelected()]);
      if (mine !== state.seq || !ctx.alive) return;
      showError(listProblem, null);
      state.items = page.items;
      const none = !page.items.length && !state.integrationKey;
      empty.hidden = !none;
      grid.hidden = none;
      aggregate.textContent = page.stepsTotal
        ? `All listed deployments: ${page.stepsDone}/${page.stepsTotal} steps done`
        : "";
      syncRows(grid.tbody, page.items, { key: (d) => d.id, render: rowFor, empty: emptyRow(5, "No deployment of this integration yet.") });
      markSelected();
      if (detail instanceof Error) {
        if (isAbort(detail)) return;
        state.detail = null;
        mount(detailBox, card("Deployment", errorBox(detail)));
      } else if (detail) {
        state.detail = detail;
        drawDetail(detail);
      }
    } catch (err) {
      if (isAbort(err) || mine !== state.seq) return;
      showError(listProblem, err);
    }
    schedule();
  }

  /**
   * The selected deployment, or the error reading it (shown in its card, not over the list).
   * @returns {Promise<Deployment | Error | null>}
   */
  async function readSelected() {
    if (!state.selected) return null;
    try {
      return await get(`/deployments/${enc(state.selected)}`, { signal: ctx.signal });
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /** @param {string} id */
  function select(id) {
    state.selected = id;
    history.replaceState(null, "", `${location.pathname}${location.search}#/deployments/${enc(id)}`);
    markSelected();
    mount(detailBox, card("Deployment", loading()));
    load(true);
  }

  function markSelected() {
    for (const tr of Array.from(grid.tbody.rows)) {
      const on = tr.dataset.key === state.selected;
      tr.classList.toggle("selected", on);
      if (on) tr.setAttribute("aria-current", "true");
      else tr.removeAttribute("aria-current");
    }
  }

  /** @param {Deployment} d */
  function rowFor(d) {
    return h(
      "tr",
      {
        "data-testid": "deployment-row",
        "data-deployment-id": d.id,
        class: "clickable",
        tabindex: "0",
        title: "Show the steps",
        onclick: () => select(d.id),
        onkeydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            select(d.id);
          }
        },
      },
      h("td", {}, statusBadge(d.status, { "data-testid": "deployment-status" })),
      h("td", { "data-label": "Reason" }, d.reason),
      h("td", { class: "id-cell", "data-label": "Connection" }, h("code", { title: d.connectionId }, shortId(d.connectionId)), h("span", { class: "small muted" }, ` ${d.integrationKey}`), h("div", { class: "small muted nowrap" }, d.customerId)),
      h("td", { class: "nowrap", "data-label": "Created" }, fmtDate(d.createdAt)),
      h("td", {}, progressBar(d.stepsDone, d.stepsTotal, {
        testid: "deployment-progress",
        percentTestid: "deployment-percent",
        complete: d.status === "succeeded",
      })),
    );
  }

  /** @param {Deployment} d */
  function drawDetail(d) {
    const problem = errorBox(null, { "data-testid": "redeploy-error" });
    const redeploy = h("button", { type: "button", class: "primary", "data-testid": "deployment-redeploy" }, "Redeploy this connection");
    redeploy.onclick = action({ button: redeploy, problem }, async () => {
      /** @type {Deployment} */
      const started = await post(`/connections/${enc(d.connectionId)}/deploy`, {});
      select(started.id);
    });
    const steps = d.steps.map((step) =>
      h(
        "tr",
        { "data-testid": "deployment-step", class: step.status === "failed" ? "failed" : "" },
        h("td", {}, step.kind),
        h("td", {}, h("code", {}, step.elementKey)),
        h("td", {}, statusBadge(step.status, { "data-testid": "step-status" })),
        h("td", {}, String(step.attempts)),
        h("td", { class: "wrap-anywhere", "data-testid": "step-error" }, step.error ? h("span", { class: step.status === "failed" ? "text-danger" : "" }, step.error) : ""),
        h("td", { class: "nowrap" }, fmtDate(step.updatedAt)),
      ),
    );
    const failed = d.steps.filter((s) => s.status === "failed" && s.error);
    mount(
      detailBox,
      card(
        null,
        h("div", { class: "page-head" }, h("h2", {}, "Deployment ", h("code", {}, shortId(d.id))), statusBadge(d.status)),
        h(
          "dl",
          { class: "meta" },
          h("dt", {}, "Id"), h("dd", {}, copyValue(d.id, { testid: "deployment-id" })),
          h("dt", {}, "Connection"), h("dd", {}, copyValue(d.connectionId, { short: true }), ` ${d.integrationKey}`),
          h("dt", {}, "Customer"), h("dd", {}, copyValue(d.customerId, { href: `#/customers/${enc(d.customerId)}` })),
          h("dt", {}, "Reason"), h("dd", {}, d.reason),
          h("dt", {}, "Progress"), h("dd", {}, progressBar(d.stepsDone, d.stepsTotal, { testid: "detail-progress", complete: d.status === "succeeded" })),
          h("dt", {}, "Created"), h("dd", {}, fmtDate(d.createdAt)),
          h("dt", {}, "Started"), h("dd", {}, fmtDate(d.startedAt)),
          h("dt", {}, "Finished"), h("dd", {}, fmtDate(d.finishedAt)),
          d.supersededBy ? [h("dt", {}, "Superseded by"), h("dd", {}, h("button", { type: "button", class: "link", onclick: () => d.supersededBy && select(d.supersededBy) }, d.supersededBy))] : null,
        ),
        failed.length
          ? h("div", { class: "error", role: "alert", "data-testid": "failed-steps" }, h("p", {}, `${failed.length} step(s) failed:`), h("ul", {}, failed.map((s) => h("li", {}, `${s.kind} ${s.elementKey}: ${s.error}`))))
          : null,
        table(["Kind", "Element", "Status", "Attempts", "Error", "Updated"], steps.length ? steps : [emptyRow(6, "No steps: nothing to deploy.")], { "data-testid": "deployment-steps" }),
        h("div", { class: "actions" }, redeploy),
        problem,
      ),
    );
  }

  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Deployments")),
    card(null, h("div", { class: "form-row" }, field("Integration", filter)), listProblem, aggregate, empty, grid),
    detailBox,
  );
  if (state.selected) mount(detailBox, card("Deployment", loading()));
  await load();
}
