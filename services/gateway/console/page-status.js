// @ts-check
// Status: every service's replicas, versions and backlogs, this workspace's checks, and the
// problems in sentences (GET /system/status), refreshed while the page is open.

import { enc, get } from "./api.js";
import { fmtDate, h, mount, shortId } from "./dom.js";
import { errorBox, showError } from "./forms.js";
import { badge, card, emptyRow, syncRows, table } from "./widgets.js";
/** @import { PageContext, PageParams } from "./app.js" */

// The reply of GET /system/status (libs/common/contracts/system.py), as the page reads it.

/**
 * @typedef {object} Replica
 * @property {string} id
 * @property {string} version
 * @property {string | null} started
 * @property {number | null} requests
 */

/**
 * @typedef {object} StatusCheck
 * @property {string} key
 * @property {boolean} ok
 * @property {number} count
 * @property {string} summary
 * @property {string | null} at
 * @property {string[]} sample
 */

/**
 * @typedef {object} ServiceStatus
 * @property {string} instance
 * @property {string} version
 * @property {boolean} ok
 * @property {string[]} problems
 * @property {{pending: number, lagSeconds: number}} outbox
 * @property {{consumer: string, pending: number, ackPending: number, redelivered: number}[]} consumers
 * @property {{queue: string, due: number, running: number, lagSeconds: number}[]} jobs
 * @property {{givenUp: number, retrying: number}} deadLetters
 * @property {StatusCheck[]} checks
 */

/**
 * @typedef {object} ServiceOverview
 * @property {boolean} ok
 * @property {Replica[]} replicas
 * @property {string[]} versions
 * @property {ServiceStatus | null} status
 * @property {string | null} error
 */

/**
 * @typedef {object} SystemStatus
 * @property {boolean} ok
 * @property {string} checkedAt
 * @property {string} workspaceId
 * @property {string[]} problems
 * @property {Record<string, ServiceOverview>} services
 */

const REFRESH_MS = 10000;

/** Where a check's sample ids lead in the console (ids of other checks are shown as code). */
const SAMPLE_LINKS = /** @type {Record<string, (id: string) => string>} */ ({
  deployments_in_error: (id) => `#/deployments/${enc(id)}`,
});

/**
 * @param {HTMLElement} root
 * @param {PageParams} _params
 * @param {PageContext} ctx
 */
export async function render(root, _params, ctx) {
  const overall = h("span", { "data-testid": "status-overall" });
  const checked = h("span", { class: "small muted", "data-testid": "status-checked" });
  const problem = errorBox(null, { "data-testid": "status-error" });
  const problems = h("div", { "data-testid": "status-problems" });
  const services = table(
    ["Service", "State", "Replicas", "Versions", "Outbox (lag)", "Consumers", "Jobs due (wait)", "Dead letters"],
    [],
    { "data-testid": "status-services" },
  );
  const checks = table(["Service", "Check", "State", "Summary", "Some of them"], [], { "data-testid": "status-checks" });
  const refresh = h("button", { type: "button", class: "secondary small", "data-testid": "status-refresh", onclick: () => load() }, "Refresh");

  async function load() {
    refresh.disabled = true;
    try {
      /** @type {SystemStatus} */
      const doc = await get("/system/status", { signal: ctx.signal });
      if (!ctx.alive) return;
      showError(problem, null);
      draw(doc);
    } catch (err) {
      if (!ctx.alive) return;
      showError(problem, err);
    } finally {
      refresh.disabled = false;
    }
  }

  /** @param {SystemStatus} doc */
  function draw(doc) {
    mount(overall, doc.ok ? badge("all well", "ok") : badge(`${doc.problems.length} problem${doc.problems.length === 1 ? "" : "s"}`, "bad"));
    checked.textContent = `checked ${fmtDate(doc.checkedAt)}`;
    mount(
      problems,
      doc.problems.length
        ? h("div", { class: "error", role: "alert" }, h("ul", {}, doc.problems.map((p) => h("li", { "data-testid": "status-problem" }, p))))
        : h("p", { class: "success", "data-testid": "status-no-problems" }, "Every service answered and none reports a problem."),
    );
    const entries = Object.entries(doc.services);
    syncRows(services.tbody, entries, { key: ([name]) => name, render: ([name, s]) => serviceRow(name, s) });
    const found = entries.flatMap(([name, s]) => (s.status ? s.status.checks.map((c) => ({ name, check: c })) : []));
    syncRows(checks.tbody, found, {
      key: ({ name, check }) => `${name}:${check.key}`,
      render: ({ name, check }) => checkRow(name, check),
      empty: emptyRow(5, "No checks: no service answered."),
    });
  }

  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Status"), overall, checked, refresh),
    problem,
    card("Problems", problems),
    card("Services", h("p", { class: "hint" }, "Replicas, versions and backlogs are the whole installation's; checks and dead letters are this workspace's."), services),
    card("This workspace", checks),
  );
  await load();
  ctx.every(REFRESH_MS, load);
}

/**
 * @param {string} name
 * @param {ServiceOverview} s
 */
function serviceRow(name, s) {
  const st = s.status;
  const replicas = h(
    "td",
    { "data-testid": "status-replicas" },
    String(s.replicas.length),
    s.replicas.length
      ? h("div", { class: "small muted" }, s.replicas.map((r) => h("div", { class: "nowrap", title: r.id }, h("code", {}, shortId(r.id)), r.started ? ` since ${fmtDate(r.started)}` : "")))
      : null,
  );
  const state = st === null ? badge("down", "bad", { title: s.error || "" }) : s.ok ? badge("ok", "ok") : badge("problem", "warn");
  const none = () => h("span", { class: "muted" }, "—");
  return h(
    "tr",
    { "data-testid": "status-service-row", "data-service": name },
    h("td", { class: "nowrap" }, h("strong", {}, name)),
    h("td", { "data-testid": "status-service-state" }, state, st === null && s.error ? h("div", { class: "small text-danger" }, s.error) : null),
    replicas,
    h("td", {}, s.versions.join(", ") || none()),
    h("td", { class: "nowrap" }, st ? `${st.outbox.pending} (${Math.round(st.outbox.lagSeconds)} s)` : none()),
    h(
      "td",
      { class: "small" },
      st?.consumers.length
        ? st.consumers.map((c) => h("div", { class: "nowrap", title: `${c.ackPending} awaiting acknowledgement` }, h("code", {}, c.consumer), `: ${c.pending} pending, ${c.redelivered} redelivered`))
        : none(),
    ),
    h("td", { class: "small" }, st?.jobs.length ? st.jobs.map((q) => h("div", { class: "nowrap" }, h("code", {}, q.queue), `: ${q.due} (${Math.round(q.lagSeconds)} s), ${q.running} running`)) : none()),
    h("td", {}, st ? `${st.deadLetters.givenUp}${st.deadLetters.retrying ? ` (+${st.deadLetters.retrying} retrying)` : ""}` : none()),
  );
}

/**
 * @param {string} name
 * @param {StatusCheck} c
 */
function checkRow(name, c) {
  const link = SAMPLE_LINKS[c.key];
  return h(
    "tr",
    { "data-testid": "status-check-row", "data-check": c.key, class: c.ok ? "" : "failed" },
    h("td", {}, name),
    h("td", {}, h("code", {}, c.key)),
    h("td", {}, c.ok ? badge("ok", "ok") : badge("problem", "bad")),
    h("td", { class: "cell-text", "data-testid": "status-check-summary" }, c.summary),
    h(
      "td",
      { class: "small" },
      c.sample.map((id) => h("div", { class: "nowrap" }, link ? h("a", { href: link(id) }, h("code", {}, id)) : h("code", {}, id))),
    ),
  );
}
