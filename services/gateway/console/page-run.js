// @ts-check
// Run: one flow run — what started it and when, its progress, the node diagram coloured by
// node state, each node's executions (input, output, error, timings, for-each items), live
// refresh while it is queued or running, Stop, and Rerun (whole, or from a chosen node).

import { enc, get, isAbort, post } from "./api.js";
import { fmtDate, h, mount, pretty, shortId } from "./dom.js";
import { drawGraph } from "./flow-graph.js";
import { action, errorBox, field, showError } from "./forms.js";
import { badge, card, confirmButton, copyValue, loading, progressBar, stateBadge } from "./widgets.js";
/** @import { FlowDefinition, JsonObject } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */
/** @import { GraphView } from "./flow-graph.js" */

/** @typedef {"queued" | "running" | "completed" | "failed" | "stopped"} RunState */
/** @typedef {"running" | "waiting" | "completed" | "failed" | "skipped"} NodeState */

/**
 * Why a node (or a run) failed.
 * @typedef {object} RunError
 * @property {string} code
 * @property {string} message
 * @property {string | null} [node]
 * @property {unknown} [data]
 */

/**
 * A node of a run at a glance: its worst state, how many executions, their errors.
 * @typedef {object} NodeSummary
 * @property {NodeState} state
 * @property {number} runs
 * @property {RunError[]} errors
 */

/**
 * What started a run.
 * @typedef {object} RunTrigger
 * @property {string} type api, app-event, schedule, data-record-*, rerun
 * @property {string | null} [eventId]
 * @property {string | null} [tick]
 * @property {string | null} [rerunOf]
 * @property {string | null} [fromNode]
 */

/**
 * One execution of a flow instance (`definition` only when one run is read).
 * @typedef {object} FlowRun
 * @property {string} id
 * @property {string} flowInstanceId
 * @property {string} flowId
 * @property {number} revision
 * @property {string} connectionId
 * @property {string} customerId
 * @property {RunState} state
 * @property {RunTrigger} trigger
 * @property {unknown} input
 * @property {string} createdAt
 * @property {string | null} startedAt
 * @property {string | null} endedAt
 * @property {RunError[]} errors
 * @property {Record<string, NodeSummary>} nodes by node key (for-each inner nodes: `<forEach>.<inner>`)
 * @property {FlowDefinition | null} [definition]
 */

/**
 * One execution of a node (a for-each's inner nodes have one per item).
 * @typedef {object} NodeExecution
 * @property {string | null} item
 * @property {NodeState} state
 * @property {number} attempts
 * @property {unknown} input
 * @property {unknown} output
 * @property {number | null} outputSize
 * @property {boolean} outputDropped
 * @property {boolean} reused
 * @property {string | null} startedAt
 * @property {string | null} endedAt
 * @property {number | null} durationMs
 * @property {JsonObject[]} logs
 * @property {RunError | null} error
 */

/**
 * @typedef {object} NodeExecutionPage
 * @property {string} key
 * @property {string} type
 * @property {NodeExecution[]} items
 */

/** A run in one of these states may still change: the page keeps reading it. */
export const ACTIVE = new Set(["queued", "running"]);
const NODE_DONE = new Set(["completed", "failed", "skipped"]);
const NODE_STATES = ["running", "waiting", "completed", "failed", "skipped"];
const REFRESH_MS = 1500;

/**
 * "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min".
 * @param {number | null | undefined} ms
 */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/**
 * How long a run has run: start to end, or to now while it runs (null before it starts).
 * @param {FlowRun} run
 * @param {number} [now]
 */
export function runDuration(run, now = Date.now()) {
  if (!run.startedAt) return null;
  const end = run.endedAt ? Date.parse(run.endedAt) : now;
  return end - Date.parse(run.startedAt);
}

/**
 * What started a run, in a few words (a rerun links to its original).
 * @param {RunTrigger} trigger
 */
export function triggerText(trigger) {
  if (trigger.type === "rerun") {
    return [
      "rerun of ",
      trigger.rerunOf ? h("a", { href: `#/run/${enc(trigger.rerunOf)}`, "data-testid": "run-rerun-of" }, shortId(trigger.rerunOf)) : "?",
      trigger.fromNode ? [" from node ", h("code", {}, trigger.fromNode)] : null,
    ];
  }
  if (trigger.type === "schedule" && trigger.tick) return `schedule (tick ${fmtDate(trigger.tick)})`;
  if (trigger.eventId) return [`${trigger.type} (event `, h("code", { title: trigger.eventId }, shortId(trigger.eventId)), ")"];
  return trigger.type;
}

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const id = params.id || "";
  const title = h("h1", {}, "Run ", h("code", { title: id }, shortId(id)));
  if (!id) {
    mount(root, h("h1", {}, "Run"), errorBox("No run id in the address.", { "data-testid": "run-error" }), h("p", {}, h("a", { href: "#/runs" }, "All runs")));
    return;
  }
  /** @type {FlowRun} */
  let run;
  try {
    run = await get(`/flow-runs/${enc(id)}`, { signal: ctx.signal });
  } catch (err) {
    if (!ctx.alive) return;
    mount(
      root,
      h("div", { class: "page-head runs-page" }, title),
      errorBox(err, { "data-testid": "run-error" }),
      h("p", {}, h("a", { href: "#/runs" }, "All runs")),
    );
    return;
  }
  if (!ctx.alive) return;
  const definition = run.definition ?? null;
  const keys = Object.keys(definition?.nodes ?? {});

  /**
   * What the page shows: the selected node, signatures of what is drawn (a part is drawn
   * again only when its signature changes), and the stop of the live refresh.
   * @type {{selected: string | null, graphSig: string, stopSig: string, rerunSig: string, nodeSig: string, stop: (() => void) | null}}
   */
  const state = {
    selected: params.query.get("node"),
    graphSig: "",
    stopSig: "",
    rerunSig: "",
    nodeSig: "",
    stop: null,
  };
  if (state.selected && !(state.selected in run.nodes) && !keys.includes(state.selected)) state.selected = null;
  // A failed run opens at the node that failed.
  state.selected ??= run.errors.find((e) => e.node && keys.includes(e.node))?.node ?? null;

  const headState = h("span", { "data-testid": "run-state-wrap" });
  const headBox = h("div");
  const progressBox = h("div", { "data-testid": "run-progress-box" });
  const errorsBox = h("div", { "data-testid": "run-errors" });
  const graphBox = h("div", { class: "run-graph" });
  const nodeBox = h("div", { "data-testid": "run-node", class: "run-node" });
  const stopBox = h("span", { class: "run-stop" });
  const stopProblem = errorBox(null, { "data-testid": "run-stop-error" });
  const rerunBox = h("div");
  const refreshProblem = errorBox(null, { "data-testid": "run-refresh-error" });
  const live = h("span", { class: "small muted run-live", "data-testid": "run-live", role: "status", "aria-live": "polite" });

  /** @type {GraphView} the diagram's zoom and scroll, kept across redraws */
  const graphView = { zoom: null };

  /** Draw what depends on the run's reply (parts that did not change are left alone). */
  function draw() {
    mount(headState, stateBadge(run.state, { "data-testid": "run-state" }));
    live.textContent = ACTIVE.has(run.state) ? "Live: refreshing every few seconds." : "";
    mount(headBox, header(run, definition));
    mount(progressBox, progress(run, keys));
    mount(errorsBox, run.errors.length ? runErrors(run.errors) : null);
    // The diagram is drawn again only when node states change (so its pan and zoom stay).
    const graphSig = JSON.stringify(run.nodes);
    if (graphSig !== state.graphSig) {
      state.graphSig = graphSig;
      mount(graphBox, diagram(run, definition, state.selected, select, graphView), legend());
    }
    const top = state.selected?.split(".")[0];
    for (const node of Array.from(graphBox.querySelectorAll("[data-node]"))) {
      node.classList.toggle("selected", node.getAttribute("data-node") === top);
    }
    if (run.state !== state.stopSig) {
      state.stopSig = run.state;
      mount(stopBox, ACTIVE.has(run.state) ? stopButton() : null);
    }
    const rerunSig = JSON.stringify([run.state, state.selected]);
    if (rerunSig !== state.rerunSig) {
      state.rerunSig = rerunSig;
      mount(rerunBox, rerun());
    }
  }

  /** @param {string} key */
  function select(key) {
    state.selected = key;
    history.replaceState(null, "", `${location.pathname}${location.search}#/run/${enc(id)}?node=${enc(key)}`);
    state.nodeSig = "";
    mount(nodeBox, card(`Node ${key}`, loading()));
    draw();
    loadNode();
  }

  async function loadNode() {
    const key = state.selected;
    if (!key) {
      mount(nodeBox, card("Nodes", h("p", { class: "muted", "data-testid": "run-node-hint" }, "Click a node in the diagram to see its executions: input, output, error and timings.")));
      return;
    }
    try {
      /** @type {NodeExecutionPage} */
      const page = await get(`/flow-runs/${enc(id)}/nodes/${enc(key)}`, { signal: ctx.signal });
      if (!ctx.alive || key !== state.selected) return;
      const sig = JSON.stringify(page);
      if (sig === state.nodeSig) return;
      state.nodeSig = sig;
      mount(nodeBox, nodePanel(page, run, select, nodeBox));
    } catch (err) {
      if (!ctx.alive || key !== state.selected) return;
      state.nodeSig = "";
      mount(nodeBox, card(`Node ${key}`, errorBox(err, { "data-testid": "run-node-error" })));
    }
  }

  async function refresh() {
    /** @type {FlowRun} */
    const next = await get(`/flow-runs/${enc(id)}`, { signal: ctx.signal });
    if (!ctx.alive) return;
    showError(refreshProblem, null);
    run = next;
    draw();
    await loadNode();
    if (!ACTIVE.has(run.state)) stopLive();
  }

  function startLive() {
    if (state.stop || !ACTIVE.has(run.state)) return;
    state.stop = ctx.every(REFRESH_MS, async () => {
      try {
        await refresh();
      } catch (err) {
        if (ctx.alive && !isAbort(err)) showError(refreshProblem, err);
      }
    });
  }

  function stopLive() {
    state.stop?.();
    state.stop = null;
  }

  function stopButton() {
    return confirmButton({
      label: "Stop",
      confirmLabel: "Stop this run",
      question: "Stop before its next node?",
      testid: "run-stop",
      cls: "secondary",
      action: async () => {
        showError(stopProblem, null);
        try {
          /** @type {FlowRun} */
          const stopped = await post(`/flow-runs/${enc(id)}/stop`, {});
          run = stopped;
          draw();
          if (!ACTIVE.has(run.state)) stopLive();
          await loadNode();
        } catch (err) {
          if (!isAbort(err)) showError(stopProblem, err);
        }
      },
    });
  }

  function rerun() {
    const problem = errorBox(null, { "data-testid": "run-action-error" });
    const ended = !ACTIVE.has(run.state);
    const again = h("button", { type: "button", class: "secondary", "data-testid": "run-rerun" }, "Rerun");
    again.onclick = action({ button: again, problem }, async () => {
      /** @type {FlowRun} */
      const started = await post(`/flow-runs/${enc(id)}/rerun`, {});
      ctx.navigate(`#/run/${enc(started.id)}`);
    });
    const from = h(
      "select",
      { "data-testid": "run-rerun-node", value: state.selected && keys.includes(state.selected) ? state.selected : keys[0] ?? "", disabled: !ended || !keys.length },
      keys.map((k) => h("option", { value: k }, k)),
    );
    const fromButton = h("button", { type: "button", class: "secondary", "data-testid": "run-rerun-from", disabled: !ended || !keys.length }, "Rerun from this node");
    fromButton.onclick = action({ button: fromButton, problem }, async () => {
      /** @type {FlowRun} */
      const started = await post(`/flow-runs/${enc(id)}/rerun`, { fromNode: from.value });
      ctx.navigate(`#/run/${enc(started.id)}`);
    });
    return h(
      "div",
      { class: "run-actions" },
      h("div", { class: "actions" }, again, h("span", { class: "hint" }, "The same revision and input; every node runs again.")),
      h(
        "div",
        { class: "form-row run-rerun-from" },
        field("Rerun from node", from, ended ? "Nodes before it reuse this run's outputs; it and what follows run again." : "Once the run has ended."),
        h("div", { class: "button-cell" }, fromButton),
      ),
      problem,
    );
  }

  mount(
    root,
    h(
      "div",
      { class: "runs-page run-page", "data-testid": "run-page", "data-run-id": run.id },
      h("div", { class: "page-head" }, title, headState, copyValue(run.id, { testid: "run-id" }), stopBox, live),
      stopProblem,
      refreshProblem,
      card(null, headBox, progressBox, errorsBox),
      h("div", { class: "run-layout" }, card("Diagram", graphBox), nodeBox),
      card("Rerun", rerunBox),
      card("Run input", h("pre", { "data-testid": "run-input" }, pretty(run.input ?? null))),
    ),
  );
  draw();
  if (state.selected) mount(nodeBox, card(`Node ${state.selected}`, loading()));
  await loadNode();
  startLive();
}

/**
 * @param {FlowRun} run
 * @param {FlowDefinition | null} definition
 */
function header(run, definition) {
  const duration = runDuration(run);
  return h(
    "dl",
    { class: "meta run-meta", "data-testid": "run-meta" },
    h("dt", {}, "Flow"),
    h("dd", {}, h("a", { href: `#/flows/${enc(run.flowId)}`, "data-testid": "run-flow" }, definition?.name || shortId(run.flowId)), h("span", { class: "muted small" }, ` revision ${run.revision}`)),
    h("dt", {}, "Instance"),
    h("dd", {}, copyValue(run.flowInstanceId, { testid: "run-instance" })),
    h("dt", {}, "Customer"),
    h("dd", {}, h("a", { href: `#/customers/${enc(run.customerId)}`, "data-testid": "run-customer" }, run.customerId)),
    h("dt", {}, "Connection"),
    h("dd", {}, copyValue(run.connectionId, { testid: "run-connection" })),
    h("dt", {}, "Trigger"),
    h("dd", { "data-testid": "run-trigger" }, triggerText(run.trigger)),
    h("dt", {}, "Created"),
    h("dd", {}, fmtDate(run.createdAt)),
    h("dt", {}, "Started"),
    h("dd", {}, fmtDate(run.startedAt)),
    h("dt", {}, "Ended"),
    h("dd", {}, fmtDate(run.endedAt)),
    h("dt", {}, "Duration"),
    h("dd", { "data-testid": "run-duration" }, duration === null ? "not started" : fmtDuration(duration), run.endedAt || duration === null ? "" : " so far"),
  );
}

/**
 * Nodes done (completed, failed or skipped) of the flow's nodes, and what is under way.
 * @param {FlowRun} run
 * @param {string[]} keys the definition's (top-level) node keys
 */
function progress(run, keys) {
  const states = keys.map((k) => run.nodes[k]?.state).filter(Boolean);
  const done = states.filter((s) => s && NODE_DONE.has(s)).length;
  const running = states.filter((s) => s === "running").length;
  const waiting = states.filter((s) => s === "waiting").length;
  const now = [running ? `${running} running` : "", waiting ? `${waiting} waiting` : ""].filter(Boolean).join(", ");
  return h(
    "div",
    { class: "run-progress" },
    h("span", { class: "muted" }, "Nodes done "),
    progressBar(done, keys.length, { testid: "run-progress", complete: run.state === "completed" }),
    now ? h("span", { class: "small", "data-testid": "run-progress-now" }, ` ${now}`) : null,
    run.state === "queued" ? h("span", { class: "small muted" }, " waiting for a worker (runs of one connection go one at a time)") : null,
  );
}

/** @param {RunError[]} errors */
function runErrors(errors) {
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", {}, errors.length === 1 ? "The run has an error:" : `The run has ${errors.length} errors:`),
    h("ul", {}, errors.map((e) => h("li", { "data-testid": "run-error-item" }, e.node ? [h("code", {}, e.node), ": "] : null, `${e.message} (${e.code})`))),
  );
}

/**
 * @param {FlowRun} run
 * @param {FlowDefinition | null} definition
 * @param {string | null} selected
 * @param {(key: string) => void} onSelect
 * @param {GraphView} view
 */
function diagram(run, definition, selected, onSelect, view) {
  if (!definition) return h("p", { class: "muted" }, "This run's definition is not available.");
  /** @type {Map<string, string>} */
  const states = new Map();
  for (const [key, summary] of Object.entries(run.nodes)) states.set(key, summary.state);
  const top = selected?.split(".")[0] ?? null;
  return drawGraph(definition, new Map(), { states, selected: top, onSelect, view });
}

function legend() {
  return h(
    "p",
    { class: "run-legend small muted", "aria-label": "Node states" },
    NODE_STATES.map((s) => h("span", { class: `legend-item state-${s}` }, h("span", { class: "legend-swatch", "aria-hidden": "true" }), s)),
    h("span", { class: "legend-item" }, h("span", { class: "legend-swatch none", "aria-hidden": "true" }), "not reached"),
  );
}

/**
 * A node's executions; a for-each lists its inner nodes too.
 * @param {NodeExecutionPage} page
 * @param {FlowRun} run
 * @param {(key: string) => void} select
 * @param {HTMLElement} box the panel's container (open executions stay open on refresh)
 */
function nodePanel(page, run, select, box) {
  const open = new Set(Array.from(box.querySelectorAll("details.execution[open]")).map((d) => d.getAttribute("data-item")));
  const inner = Object.keys(run.nodes).filter((k) => k.startsWith(`${page.key}.`) && !k.slice(page.key.length + 1).includes("."));
  const parent = page.key.includes(".") ? page.key.slice(0, page.key.lastIndexOf(".")) : null;
  const many = page.items.length > 1;
  return card(
    null,
    h("div", { class: "page-head" }, h("h2", {}, "Node ", h("code", { "data-testid": "run-node-key" }, page.key)), badge(page.type), run.nodes[page.key] ? stateBadge(run.nodes[page.key].state, { "data-testid": "run-node-state" }) : badge("not reached")),
    parent ? h("p", { class: "small" }, "Inside ", h("button", { type: "button", class: "link", onclick: () => select(parent) }, parent), ", once per item.") : null,
    inner.length
      ? h(
          "p",
          { class: "small run-inner" },
          "Inner nodes: ",
          inner.map((k) => h("button", { type: "button", class: "secondary small", "data-testid": "run-inner-node", onclick: () => select(k) }, k.slice(page.key.length + 1), ` (${run.nodes[k].runs})`)),
        )
      : null,
    page.items.length
      ? page.items.map((e) => execution(e, !many || e.state === "failed" || open.has(e.item ?? "")))
      : h("p", { class: "muted", "data-testid": "run-node-none" }, "This node has not run (yet) in this run."),
  );
}

/**
 * One execution: state, attempts, timings, then input, output and error.
 * @param {NodeExecution} e
 * @param {boolean} open
 */
function execution(e, open) {
  const label = e.item !== null ? `item ${e.item}` : "execution";
  return h(
    "details",
    { class: ["execution", `state-${e.state}`], "data-testid": "run-execution", "data-item": e.item ?? "", "data-state": e.state, open },
    h(
      "summary",
      {},
      h("span", { class: "execution-label" }, label),
      stateBadge(e.state, { "data-testid": "execution-state" }),
      h("span", { class: "small muted" }, `${e.attempts} ${e.attempts === 1 ? "try" : "tries"} · ${fmtDuration(e.durationMs)}`),
      e.reused ? badge("reused", "info", { title: "Copied from the original run by a rerun: the app was not called again" }) : null,
    ),
    h(
      "dl",
      { class: "meta small" },
      h("dt", {}, "Started"),
      h("dd", {}, fmtDate(e.startedAt)),
      h("dt", {}, "Ended"),
      h("dd", {}, fmtDate(e.endedAt)),
      e.outputSize !== null ? [h("dt", {}, "Output size"), h("dd", {}, `${e.outputSize} bytes`)] : null,
    ),
    e.error
      ? h(
          "div",
          { class: "error", role: "alert", "data-testid": "execution-error" },
          h("p", {}, `${e.error.message} (${e.error.code})`),
          e.error.data !== null && e.error.data !== undefined ? h("pre", { class: "error-data" }, pretty(e.error.data)) : null,
        )
      : null,
    h("div", { class: "io" },
      h("div", {}, h("h4", {}, "Input"), h("pre", { "data-testid": "execution-input" }, pretty(e.input ?? null))),
      h(
        "div",
        {},
        h("h4", {}, "Output"),
        e.outputDropped
          ? h("p", { class: "muted small", "data-testid": "execution-output-dropped" }, "Not kept: too large, or past its retention.")
          : h("pre", { "data-testid": "execution-output" }, pretty(e.output ?? null)),
      ),
    ),
    e.logs.length ? h("details", { class: "logs" }, h("summary", {}, `Logs (${e.logs.length})`), h("pre", {}, e.logs.map((l) => JSON.stringify(l)).join("\n"))) : null,
  );
}
