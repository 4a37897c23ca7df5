// @ts-check
// One action: its definition (and editing it), a Run form generated from its inputSchema
// that runs it on one of the test customer's connections, and its run log.

import { ApiError, del, enc, get, isAbort, patch, post } from "./api.js";
import { fmtDate, h, mount, pretty, shortId } from "./dom.js";
import { action, errorBox, field, InputError, readOptionalJSON, showError, statusLine } from "./forms.js";
import { schemaForm } from "./schema-form.js";
import { loadTypes } from "./typed-form.js";
import { badge, confirmButton, copyValue, emptyState, loadMore, loading, statusBadge } from "./widgets.js";
import { actionScope } from "./page-actions.js";
/** @import { Connection, Page, Workspace } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */
/** @import { Action, ActionRequestSpec } from "./page-actions.js" */
/** @import { JsonSchema, SchemaForm } from "./schema-form.js" */

/**
 * One run of an action, as logged (ActionRun).
 * @typedef {object} ActionRun
 * @property {string} id
 * @property {string} actionKey
 * @property {number} revision
 * @property {string} connectionId
 * @property {string} customerId
 * @property {string} integrationKey
 * @property {"success" | "error" | "running"} status
 * @property {unknown} input
 * @property {unknown} output
 * @property {number | null} outputSize
 * @property {boolean} outputDropped
 * @property {{method: string, path: string, status: number | null} | null} request
 * @property {{code: string, message: string, status: number, details?: unknown} | null} error
 * @property {number | null} durationMs
 * @property {string | null} idempotencyKey
 * @property {string} startedAt
 * @property {string | null} finishedAt
 */

/**
 * @typedef {object} ActionRunResult
 * @property {unknown} output
 * @property {string} actionRunId
 * @property {boolean} replayed
 */

const RUNS_SHOWN = 20;
const REFRESH_MS = 10000;
const DEFAULT_TEST_CUSTOMER = "test-customer"; // identity's default when settings name none
const NO_INPUT = /** @type {JsonSchema} */ ({ type: "object", properties: {} });

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const key = params.id || "";
  if (!key) throw new Error("Choose an action on the Actions page.");
  /** @type {Promise<Action>} */
  const reading = get(`/actions/${enc(key)}`, { signal: ctx.signal });
  /** @type {Promise<Workspace | null>} the test customer is named in the settings */
  const settings = get("/workspace", { signal: ctx.signal }).then(
    (ws) => /** @type {Workspace} */ (ws),
    (err) => (isAbort(err) ? Promise.reject(err) : null),
  );
  const [first, ws, requestSchema] = await Promise.all([reading, settings, requestTypeSchema(ctx)]);
  const testCustomer = ws?.settings?.testCustomer?.id || DEFAULT_TEST_CUSTOMER;
  const head = h("div", { class: "page-head" });
  const runBox = h("div", {});
  const definitionBox = h("div", {});
  const log = runLog(key, ctx);

  /** @param {Action} a */
  function draw(a) {
    mount(
      head,
      h("h1", {}, a.name),
      badge(a.level, "info", { "data-testid": "action-level" }),
      copyValue(a.key, { testid: "action-key" }),
      h("span", { class: "small muted", "data-testid": "action-revision" }, `revision ${a.revision}`),
    );
    mount(runBox, runCard(a, testCustomer, ctx, log.load));
    mount(definitionBox, definitionCard(a, requestSchema, draw, ctx));
  }

  draw(first);
  mount(root, head, runBox, log.element, definitionBox);
  await log.load();
  ctx.every(REFRESH_MS, log.load);
}

/**
 * One request type of GET /action-request-types (libs/common/contracts/schemas.py).
 * @typedef {{type: string, title: string, description: string, schema: JsonSchema}} RequestType
 */

/**
 * The JSON Schema of an action's request (the `http` type of GET /action-request-types).
 * @param {PageContext} ctx
 * @returns {Promise<JsonSchema | null>} null when the API does not answer it: the request is
 *   then edited as JSON
 */
async function requestTypeSchema(ctx) {
  /** @type {{items: RequestType[]}} */
  const types = await loadTypes("/action-request-types", ctx.signal);
  return types.items.find((t) => t.type === "http")?.schema ?? null;
}

// --- run ----------------------------------------------------------------------------------

/**
 * Which customer runs the action here: a customer-level action's own customer, else the
 * workspace's test customer.
 * @param {Action} a
 * @param {string} testCustomer
 */
function runner(a, testCustomer) {
  return a.level === "customer" && a.customerId ? a.customerId : testCustomer;
}

/**
 * The integrations an action can run on.
 * @param {Action} a
 */
function integrationsOf(a) {
  if (a.level === "universal") return Object.keys(a.implementations ?? {});
  return a.integrationKey ? [a.integrationKey] : [];
}

/**
 * The Run card: choose a connection of the customer, fill the input, run, see the result.
 * @param {Action} a
 * @param {string} testCustomer
 * @param {PageContext} ctx
 * @param {() => Promise<void>} ranOne refreshes the run log
 */
function runCard(a, testCustomer, ctx, ranOne) {
  const customerId = runner(a, testCustomer);
  const body = h("div", {}, loading("Finding the connections…"));
  const element = h(
    "section",
    { class: "card", "data-testid": "run-card" },
    h("h2", {}, "Run"),
    h(
      "p",
      { class: "muted" },
      a.level === "customer" ? "Runs as this action's customer " : "Runs as the test customer ",
      h("code", { "data-testid": "run-customer" }, customerId),
      " on one of their connections, exactly as your backend would call ",
      h("code", {}, `POST /actions/${a.key}/run`),
      ".",
    ),
    body,
  );
  fill();
  return element;

  async function fill() {
    /** @type {Connection[]} */
    let connections;
    try {
      /** @type {Page<Connection>} */
      const page = await get("/connections", { query: { customerId, limit: 200 }, signal: ctx.signal });
      const wanted = new Set(integrationsOf(a));
      connections = page.items.filter((c) => wanted.has(c.integrationKey) && c.state !== "archived");
    } catch (err) {
      if (!isAbort(err)) mount(body, errorBox(err, { "data-testid": "run-error" }));
      return;
    }
    if (!ctx.alive) return;
    if (!connections.length) {
      const names = integrationsOf(a).join(" or ") || "an integration";
      mount(
        body,
        emptyState(`${customerId} has no connection to ${names} yet.`, {
          hint: "Connect an account for them on the Connections page, then come back to run the action.",
          button: h("button", { type: "button", class: "primary", "data-testid": "run-connect", onclick: () => ctx.navigate("#/connections") }, "Go to Connections"),
          testid: "run-no-connection",
        }),
      );
      return;
    }
    mount(body, runForm(a, connections));
  }

  /**
   * @param {Action} a
   * @param {Connection[]} connections
   */
  function runForm(a, connections) {
    const connection = h(
      "select",
      { "data-testid": "run-connection" },
      connections.map((c) => h("option", { value: c.id }, `${c.name || c.integrationKey} · ${c.integrationKey} · ${c.state} · ${shortId(c.id)}`)),
    );
    const preferred = connections.find((c) => c.state === "connected");
    if (preferred) connection.value = preferred.id;
    /** @type {SchemaForm} */
    const input = schemaForm(a.inputSchema ?? NO_INPUT, { testid: "run-input", label: "Input" });
    const problem = errorBox(null, { "data-testid": "run-error" });
    const result = h("div", { "data-testid": "run-result", "aria-live": "polite" });
    const submit = h("button", { type: "submit", class: "primary", "data-testid": "run-submit" }, "Run action");
    return h(
      "form",
      {
        novalidate: true,
        onsubmit: action({ button: submit, problem }, async () => {
          mount(result);
          const value = input.read();
          try {
            /** @type {ActionRunResult} */
            const reply = await post(`/actions/${enc(a.key)}/run`, { connectionId: connection.value, input: value });
            mount(
              result,
              h(
                "div",
                { class: "success", role: "status" },
                h("p", {}, reply.replayed ? "The result of an earlier run with the same key:" : "The run succeeded. Output:"),
              ),
              h("pre", { class: "code act-output", "data-testid": "run-output" }, pretty(reply.output)),
              h("p", { class: "small muted" }, "Run ", copyValue(reply.actionRunId, { testid: "run-id" })),
            );
          } finally {
            if (ctx.alive) ranOne(); // a failed run is logged too
          }
        }),
      },
      field("Connection", connection, "One of the customer's connections to the action's integration."),
      h("div", { class: "field" }, h("span", { class: "act-label" }, "Input"), input.element),
      problem,
      h("div", { class: "actions" }, submit),
      result,
    );
  }
}

// --- run log --------------------------------------------------------------------------------

/**
 * The run log card, newest first; each run opens to its input, output and error. Runs kept
 * open stay open across refreshes.
 * @param {string} key
 * @param {PageContext} ctx
 */
function runLog(key, ctx) {
  const list = h("div", { class: "act-run-log", "data-testid": "action-runs" });
  const problem = errorBox(null, { "data-testid": "action-runs-error" });
  const refresh = h("button", { type: "button", class: "secondary small", "data-testid": "action-runs-refresh" }, "Refresh");
  /** @type {Map<string, {sig: string, el: HTMLDetailsElement}>} */
  const shown = new Map();
  let seq = 0;
  const more = loadMore({ step: RUNS_SHOWN, label: "Load older runs", testid: "action-runs-more", reload: () => load() });

  async function load() {
    const mine = ++seq;
    try {
      /** @type {Page<ActionRun>} */
      const page = await get("/action-runs", { query: { actionKey: key, limit: more.limit }, signal: ctx.signal });
      if (mine !== seq || !ctx.alive) return;
      showError(problem, null);
      draw(page.items);
      more.update(page.cursor);
    } catch (err) {
      if (isAbort(err) || mine !== seq) return;
      showError(problem, err);
    }
  }
  refresh.onclick = () => load();

  /** @param {ActionRun[]} runs */
  function draw(runs) {
    if (!runs.length) {
      shown.clear();
      mount(list, emptyState("No runs yet.", { hint: "Run the action above; every run (and every failed one) is logged here with its input and output.", testid: "action-runs-empty" }));
      return;
    }
    const items = runs.map((run) => {
      const sig = JSON.stringify(run);
      const old = shown.get(run.id);
      if (old && old.sig === sig) return old.el;
      const el = runItem(run);
      if (old?.el.open) el.open = true;
      shown.set(run.id, { sig, el });
      return el;
    });
    const ids = new Set(runs.map((r) => r.id));
    for (const id of Array.from(shown.keys())) if (!ids.has(id)) shown.delete(id);
    mount(list, items);
  }

  const element = h(
    "section",
    { class: "card" },
    h("div", { class: "act-head" }, h("h2", {}, "Run log"), refresh),
    problem,
    list,
    h("div", { class: "actions" }, more.button),
  );
  return { element, load };
}

/** @param {ActionRun} run */
function runItem(run) {
  const made = run.request ? `${run.request.method} ${run.request.path}${run.request.status ? ` → ${run.request.status}` : ""}` : "";
  return h(
    "details",
    { class: ["act-run", run.status === "error" ? "failed" : ""], "data-testid": "action-run", "data-run-id": run.id, "data-status": run.status },
    h(
      "summary",
      {},
      statusBadge(run.status === "success" ? "succeeded" : run.status === "error" ? "failed" : "running", { "data-testid": "action-run-status" }),
      h("span", { class: "nowrap" }, fmtDate(run.startedAt)),
      run.durationMs !== null ? h("span", { class: "muted small" }, `${run.durationMs} ms`) : null,
      made ? h("code", { class: "small wrap-anywhere" }, made) : null,
      run.error ? h("span", { class: "text-danger small act-run-error" }, run.error.message) : null,
    ),
    h(
      "dl",
      { class: "meta" },
      h("dt", {}, "Run"), h("dd", {}, copyValue(run.id)),
      h("dt", {}, "Connection"), h("dd", {}, copyValue(run.connectionId, { short: true }), ` ${run.integrationKey}, customer ${run.customerId}`),
      h("dt", {}, "Revision"), h("dd", {}, String(run.revision)),
      run.idempotencyKey ? [h("dt", {}, "Idempotency key"), h("dd", {}, h("code", {}, run.idempotencyKey))] : null,
    ),
    h("div", { class: "act-run-io" },
      h("div", {}, h("h4", {}, "Input"), h("pre", { class: "code", "data-testid": "action-run-input" }, pretty(run.input))),
      run.error
        ? h("div", {}, h("h4", {}, "Error"), h("pre", { class: "code text-danger", "data-testid": "action-run-error" }, pretty(run.error)))
        : h(
            "div",
            {},
            h("h4", {}, "Output"),
            run.outputDropped
              ? h("p", { class: "muted", "data-testid": "action-run-output" }, `Not kept: ${run.outputSize ?? "?"} bytes is over the log's limit.`)
              : h("pre", { class: "code", "data-testid": "action-run-output" }, pretty(run.output)),
          ),
    ),
  );
}

// --- definition -------------------------------------------------------------------------------

/**
 * @param {string} title
 * @param {unknown} value
 * @param {string} testid
 */
function jsonBlock(title, value, testid) {
  return h("div", { class: "act-def-block" }, h("h4", {}, title), h("pre", { class: "code", "data-testid": testid }, pretty(value)));
}

/**
 * @param {ActionRequestSpec} spec
 * @param {string} testid
 */
function requestView(spec, testid) {
  return h(
    "div",
    { class: "act-def-block", "data-testid": testid },
    h("p", {}, h("code", {}, `${spec.method} ${spec.path}`)),
    spec.query && Object.keys(spec.query).length ? [h("h4", {}, "Query"), h("pre", { class: "code" }, pretty(spec.query))] : null,
    spec.headers && Object.keys(spec.headers).length ? [h("h4", {}, "Headers"), h("pre", { class: "code" }, pretty(spec.headers))] : null,
    spec.body !== undefined && spec.body !== null ? [h("h4", {}, "Body"), h("pre", { class: "code" }, pretty(spec.body))] : null,
  );
}

/**
 * The definition, read-only with an Edit button that turns it into a form.
 * @param {Action} a
 * @param {JsonSchema | null} requestSchema
 * @param {(a: Action) => void} redraw shows a saved action everywhere on the page
 * @param {PageContext} ctx
 */
function definitionCard(a, requestSchema, redraw, ctx) {
  const box = h("section", { class: "card", "data-testid": "action-definition" });
  const problem = errorBox(null, { "data-testid": "action-delete-error" });
  const view = () => {
    const edit = h("button", { type: "button", class: "secondary", "data-testid": "action-edit", onclick: () => mount(box, editForm(a, requestSchema, redraw, view)) }, "Edit definition");
    const remove = confirmButton({
      label: "Delete action",
      confirmLabel: "Delete it",
      question: "Its instances go too; its runs stay logged.",
      testid: "action-delete",
      cls: "secondary",
      action: action({ problem }, async () => {
        await del(`/actions/${enc(a.key)}`);
        ctx.navigate("#/actions");
      }),
    });
    mount(
      box,
      h("div", { class: "act-head" }, h("h2", {}, "Definition"), h("div", { class: "actions" }, edit, remove)),
      h(
        "dl",
        { class: "meta" },
        h("dt", {}, "Key"), h("dd", {}, h("code", {}, a.key)),
        h("dt", {}, "Level"), h("dd", {}, a.level),
        h("dt", {}, "Runs on"), h("dd", {}, actionScope(a)),
        h("dt", {}, "Revision"), h("dd", {}, `${a.revision} (updated ${fmtDate(a.updatedAt)})`),
        h("dt", {}, "Output mapping"), h("dd", {}, a.outputMapping ? h("code", { "data-testid": "action-output-mapping" }, a.outputMapping) : h("span", { class: "muted" }, "none: the app's answer body as it is")),
      ),
      h(
        "div",
        { class: "act-def-grid" },
        jsonBlock("Input schema", a.inputSchema ?? {}, "action-input-schema"),
        a.request ? h("div", {}, h("h4", {}, "Request"), requestView(a.request, "action-request")) : null,
        a.implementations
          ? h("div", {}, h("h4", {}, "Implementations"), Object.entries(a.implementations).map(([integration, spec]) => [h("p", { class: "small muted" }, integration), requestView(spec, `action-implementation-${integration}`)]))
          : null,
        a.parameters ? jsonBlock("Parameters (set per customer)", a.parameters, "action-parameters") : null,
      ),
      problem,
    );
  };
  view();
  return box;
}

/**
 * The edit form; saving sends the current revision, so a concurrent change is refused.
 * @param {Action} a
 * @param {JsonSchema | null} requestSchema
 * @param {(a: Action) => void} redraw
 * @param {() => void} cancel
 */
function editForm(a, requestSchema, redraw, cancel) {
  const name = h("input", { type: "text", "data-testid": "edit-action-name", value: a.name, maxlength: 200, required: true, autocomplete: "off" });
  const inputSchema = h("textarea", { "data-testid": "edit-action-input-schema", class: "code", rows: 10, spellcheck: "false", value: a.inputSchema ? pretty(a.inputSchema) : "" });
  const output = h("input", { type: "text", "data-testid": "edit-action-output", value: a.outputMapping ?? "", maxlength: 4096, autocomplete: "off" });
  /** @type {{element: HTMLElement, read: () => unknown} | null} */
  let request = null;
  if (a.level !== "universal") {
    if (requestSchema) {
      request = schemaForm(requestSchema, { value: a.request ?? { method: "GET", path: "/" }, testid: "edit-request", label: "Request" });
    } else {
      const text = h("textarea", { "data-testid": "edit-request-json", class: "code", rows: 10, spellcheck: "false", value: a.request ? pretty(a.request) : "" });
      request = { element: field("Request (JSON)", text, "method, path, query, headers, body; values may hold {{ input.x }}."), read: () => readOptionalJSON(text, "Request") };
    }
  }
  const implementations = h("textarea", { "data-testid": "edit-action-implementations", class: "code", rows: 10, spellcheck: "false", value: a.implementations ? pretty(a.implementations) : "" });
  const problem = errorBox(null, { "data-testid": "edit-action-error" });
  const saved = statusLine({ "data-testid": "edit-action-saved" });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "edit-action-save" }, "Save definition");
  const close = h("button", { type: "button", class: "secondary", "data-testid": "edit-action-cancel", onclick: cancel }, "Cancel");
  return [
    h("div", { class: "act-head" }, h("h2", {}, "Edit definition")),
    h(
      "form",
      {
        novalidate: true,
        onsubmit: action({ button: submit, problem, status: saved }, async () => {
          if (!name.value.trim()) throw new InputError("The action needs a name.", name);
          /** @type {Record<string, unknown>} */
          const body = {
            revision: a.revision,
            name: name.value.trim(),
            inputSchema: readOptionalJSON(inputSchema, "Input schema"),
            outputMapping: output.value.trim() || null,
          };
          if (request) body.request = request.read();
          else body.implementations = readOptionalJSON(implementations, "Implementations");
          try {
            /** @type {Action} */
            const next = await patch(`/actions/${enc(a.key)}`, body);
            redraw(next);
          } catch (err) {
            if (err instanceof ApiError && err.code === "revision_conflict") {
              throw new Error("Someone saved this action meanwhile: reload the page to see their revision, then edit again.");
            }
            throw err;
          }
        }),
      },
      field("Name", name),
      field("Input schema (JSON Schema)", inputSchema, "The Run form is generated from it; empty means no input."),
      request ? h("div", { class: "field", "data-testid": "edit-request" }, requestSchema ? h("span", { class: "act-label" }, "Request") : null, request.element) : field("Implementations (JSON)", implementations, "The request per integration key."),
      field("Output mapping", output, "JMESPath over the body of the app's answer; empty gives the body as it is."),
      problem,
      h("div", { class: "actions" }, submit, close, saved),
    ),
  ];
}
