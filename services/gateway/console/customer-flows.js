// @ts-check
// A customer's Flows tab: customer-level flows (list, create) and flow instances, whose
// nodes' configs can be customised in the form of their node type (saved as the instance's
// JSON Merge Patch).

import { ApiError, enc, get, isAbort, patch, post } from "./api.js";
import { fmtDate, h, mount, pretty, shortId } from "./dom.js";
import { action, errorBox, field, readJSON, statusLine } from "./forms.js";
import { schemaForm } from "./schema-form.js";
import { isObject, loadTypes } from "./typed-form.js";
import { badge, card, copyValue, emptyRow, loading, newButton, table } from "./widgets.js";
/** @import { SchemaForm } from "./schema-form.js" */
/** @import { NodeType } from "./typed-form.js" */
/** @import { Customer, Flow, FlowInstance, Page } from "./api-types.js" */
/** @import { PageContext } from "./app.js" */

const DEFAULT_DEFINITION = { trigger: { type: "api" }, nodes: { start: { type: "delay", config: { seconds: 60 } } } };

/**
 * @param {HTMLElement} el
 * @param {Customer} customer
 * @param {PageContext} ctx
 */
export function customerFlows(el, customer, ctx) {
  const flowsBox = h("div", {});
  const instancesBox = h("div", {});
  mount(
    el,
    card(
      "Customer-level flows",
      flowsBox,
      newButton("New customer-level flow", () => createForm(customer, () => loadFlows(flowsBox, customer, ctx)), { testid: "new-cflow" }),
    ),
    card("Flow instances", h("p", { class: "muted" }, "Flows deployed to this customer's connections, with their customisation."), instancesBox),
  );
  loadFlows(flowsBox, customer, ctx);
  loadInstances(instancesBox, customer, ctx);
}

/**
 * @param {HTMLElement} box
 * @param {Customer} customer
 * @param {PageContext} ctx
 */
async function loadFlows(box, customer, ctx) {
  if (!box.childNodes.length) mount(box, loading());
  try {
    /** @type {Page<Flow>} */
    const page = await get("/flows", { query: { customerId: customer.id, limit: 100 }, signal: ctx.signal });
    const rows = page.items.map((f) =>
      h(
        "tr",
        { "data-testid": "cflow-row" },
        h("td", {}, h("a", { href: `#/flows/${enc(f.id)}` }, h("code", {}, f.key))),
        h("td", {}, f.name),
        h("td", {}, f.integrationKey || h("span", { class: "muted" }, "any")),
        h("td", {}, f.trigger?.type || ""),
        h("td", {}, String(f.revision)),
        h("td", {}, f.archived ? badge("archived") : null),
      ),
    );
    mount(box, table(["Key", "Name", "Integration", "Trigger", "Revision", ""], rows.length ? rows : [emptyRow(6, "No customer-level flows yet: a flow only this customer runs starts with New customer-level flow.")]));
  } catch (err) {
    if (!isAbort(err)) mount(box, errorBox(err));
  }
}

/**
 * @param {Customer} customer
 * @param {() => void} reload the list of flows
 */
function createForm(customer, reload) {
  const key = h("input", { type: "text", "data-testid": "cflow-key", required: true, autocomplete: "off", placeholder: "sync-contacts" });
  const name = h("input", { type: "text", "data-testid": "cflow-name", maxlength: 200, autocomplete: "off" });
  const json = h("textarea", { "data-testid": "cflow-json", class: "code", rows: 8, spellcheck: "false", value: pretty(DEFAULT_DEFINITION) });
  const problem = errorBox(null, { "data-testid": "cflow-error" });
  const done = statusLine({ "data-testid": "cflow-created" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "cflow-create" }, "Create flow");
  return h(
    "form",
    {
      novalidate: true,
      onsubmit: action({ button, problem, status: done }, async () => {
        const definition = readJSON(json, "Definition");
        const body = {
          ...definition,
          key: key.value.trim(),
          name: name.value.trim() || definition.name,
          level: "customer",
          customerId: customer.id,
        };
        /** @type {Flow} */
        const flow = await post("/flows", body);
        done.set(`Created ${flow.key}`);
        key.value = "";
        name.value = "";
        reload();
      }),
    },
    h("h3", {}, "New customer-level flow"),
    h("div", { class: "form-row" }, field("Key", key), field("Name", name)),
    field("Definition (JSON: trigger, nodes, parameters, autoDeploy)", json),
    problem,
    h("div", { class: "actions" }, button, done),
  );
}

/**
 * @param {HTMLElement} box
 * @param {Customer} customer
 * @param {PageContext} ctx
 */
async function loadInstances(box, customer, ctx) {
  mount(box, loading());
  try {
    /** @type {Promise<Page<FlowInstance>>} */
    const listed = get("/flow-instances", { query: { customerId: customer.id, limit: 100 }, signal: ctx.signal });
    /** @type {Promise<{items: NodeType[], error: unknown}>} */
    const typesRead = loadTypes("/flow-node-types", ctx.signal);
    const [page, types] = await Promise.all([listed, typesRead]);
    if (!page.items.length) {
      mount(box, h("p", { class: "muted", "data-testid": "no-flow-instances" }, "No flow instances for this customer: they appear once a flow is deployed to one of its connections."));
      return;
    }
    mount(box, page.items.map((instance) => instanceView(instance, types.items)));
  } catch (err) {
    if (!isAbort(err)) mount(box, errorBox(err));
  }
}

/**
 * The leaves a JSON Merge Patch sets (null = removes).
 * @param {unknown} value
 * @param {string} [prefix]
 * @returns {{path: string, value: unknown, removed: boolean}[]}
 */
export function patchPaths(value, prefix = "") {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return [{ path: prefix || "(whole document)", value, removed: value === null }];
  }
  const keys = Object.keys(value);
  if (!keys.length) return prefix ? [{ path: prefix, value, removed: false }] : [];
  const object = /** @type {Record<string, unknown>} */ (value);
  return keys.flatMap((k) => patchPaths(object[k], prefix ? `${prefix}.${k}` : k));
}

/**
 * A JSON Merge Patch turning `from` into `to` (objects compared key by key; null removes).
 * @param {unknown} from
 * @param {unknown} to
 * @returns {unknown}
 */
export function mergeDiff(from, to) {
  if (!isObject(from) || !isObject(to)) return to;
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const k of Object.keys(from)) if (!(k in to)) out[k] = null;
  for (const [k, v] of Object.entries(to)) {
    if (!(k in from)) out[k] = v;
    else if (JSON.stringify(from[k]) !== JSON.stringify(v)) out[k] = mergeDiff(from[k], v);
  }
  return out;
}

/**
 * Two merge patches as one: applying the result is applying `first`, then `second`.
 * @param {unknown} first
 * @param {unknown} second
 * @returns {unknown}
 */
export function mergeCompose(first, second) {
  if (!isObject(first) || !isObject(second)) return second;
  /** @type {Record<string, unknown>} */
  const out = { ...first };
  for (const [k, v] of Object.entries(second)) out[k] = isObject(out[k]) && isObject(v) ? mergeCompose(out[k], v) : v;
  return out;
}

/**
 * Customise one node's config of an instance: a node select, the config form of its type
 * filled with the effective config, and a save that adds the difference to the
 * customisation. Test ids: `custom-node`, `custom-config-field-<path>`, `custom-save`.
 * @param {FlowInstance} inst
 * @param {NodeType[]} types
 * @param {(inst: FlowInstance) => void} redraw with the instance the API sent back
 */
function customizeForm(inst, types, redraw) {
  const keys = Object.keys(inst.flow.nodes ?? {});
  const node = h("select", { "data-testid": "custom-node" }, keys.map((k) => h("option", { value: k }, `${k} (${inst.flow.nodes[k].type})`)));
  const formBox = h("div", {});
  const problem = errorBox(null, { "data-testid": "custom-error" });
  const done = statusLine({ "data-testid": "custom-saved" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "custom-save" }, "Save customisation");
  /** @type {SchemaForm | null} */
  let form = null;
  const show = () => {
    const n = inst.flow.nodes[node.value];
    if (!n) return;
    const type = types.find((t) => t.type === n.type);
    form = schemaForm(type?.configSchema ?? { type: "object" }, { value: n.config ?? {}, testid: "custom-config", label: `Config of ${node.value}` });
    mount(formBox, form.element);
  };
  node.addEventListener("change", show);
  show();
  return h(
    "form",
    {
      novalidate: true,
      class: "customize",
      onsubmit: action({ button, problem, status: done }, async () => {
        if (!form) return;
        const key = node.value;
        const diff = mergeDiff(inst.flow.nodes[key].config ?? {}, form.read());
        if (isObject(diff) && !Object.keys(diff).length) {
          done.set("Nothing changed");
          return;
        }
        const customization = mergeCompose(inst.customization ?? {}, { nodes: { [key]: { config: diff } } });
        /** @type {FlowInstance} */
        const updated = await patch(`/flow-instances/${enc(inst.id)}`, { customization });
        redraw(updated);
      }),
    },
    field("Node", node, "Its config as this instance runs it; a save keeps only what differs from the flow."),
    formBox,
    problem,
    h("div", { class: "actions" }, button, done),
  );
}

/**
 * @param {FlowInstance} initial
 * @param {NodeType[]} types the node types, for the customisation forms
 */
function instanceView(initial, types) {
  const el = h("article", { class: "instance", "data-testid": "flow-instance" });
  const problem = errorBox(null, { "data-testid": "instance-conflicts" });

  /** @param {FlowInstance} inst */
  const draw = (inst) => {
    const changes = patchPaths(inst.customization || {});
    /**
     * A button that sends one change and redraws the instance from the reply.
     * @param {string} label
     * @param {string} testid
     * @param {() => Promise<FlowInstance>} run
     */
    const act = (label, testid, run, cls = "secondary") => {
      const button = h("button", {
        type: "button",
        class: cls,
        "data-testid": testid,
        onclick: async () => {
          const all = Array.from(el.querySelectorAll("button"));
          const done = await action({ button: all, problem }, async () => {
            try {
              draw(await run());
            } catch (err) {
              if (err instanceof ApiError && err.status === 409 && Array.isArray(err.details)) {
                const message = `Upgrade conflicts — change or reset the customisation first: ${err.message}`;
                throw new ApiError(err.status, err.code, message, err.details);
              }
              throw err;
            }
          })();
          if (!done) button.focus();
        },
      }, label);
      return button;
    };
    mount(
      el,
      h(
        "div",
        { class: "instance-head" },
        h("strong", {}, inst.flow?.name || "Flow"),
        h("a", { href: `#/flows/${enc(inst.flowId)}`, class: "small" }, "open flow"),
        h("span", { class: "small muted" }, `${inst.integrationKey} · connection `, h("code", { title: inst.connectionId }, shortId(inst.connectionId))),
        copyValue(inst.id, { short: true, testid: "instance-id" }),
        h("span", { "data-testid": "instance-revision" }, `base revision ${inst.baseRevision}`, inst.latestRevision !== inst.baseRevision ? ` (latest ${inst.latestRevision})` : ""),
        inst.outdated ? badge("outdated", "warn", { "data-testid": "instance-outdated" }) : badge("up to date", "ok"),
        badge(inst.enabled ? "enabled" : "disabled", inst.enabled ? "ok" : "", { "data-testid": "instance-enabled" }),
        inst.archived ? badge("archived") : null,
      ),
      changes.length
        ? h(
          "ul",
          { class: "change-list", "aria-label": "Customised paths", "data-testid": "instance-changes" },
          changes.map((c) =>
            h("li", { class: c.removed ? "removed" : "" }, c.removed ? `− ${c.path} (removed)` : `~ ${c.path} = ${JSON.stringify(c.value)}`),
          ),
        )
        : h("p", { class: "muted small" }, "Not customised: the instance runs the flow as it is."),
      h(
        "div",
        { class: "diff-cols" },
        h("div", {}, h("h4", {}, "Customisation (JSON Merge Patch)"), h("pre", { "data-testid": "instance-customization" }, pretty(inst.customization || {}))),
        h("div", {}, h("h4", {}, `Effective flow (base revision ${inst.baseRevision} + customisation)`), h("pre", { "data-testid": "instance-effective" }, pretty(inst.flow))),
      ),
      Object.keys(inst.flow.nodes ?? {}).length
        ? h("details", { class: "customize-box" }, h("summary", { "data-testid": "instance-customize" }, "Customise a node's config"), customizeForm(inst, types, draw))
        : null,
      problem,
      h(
        "div",
        { class: "actions" },
        act("Upgrade", "instance-upgrade", () => post(`/flow-instances/${enc(inst.id)}/upgrade`, {}), inst.outdated ? "primary" : "secondary"),
        act("Reset", "instance-reset", () => post(`/flow-instances/${enc(inst.id)}/reset`, {})),
        act(inst.enabled ? "Disable" : "Enable", "instance-toggle", () => patch(`/flow-instances/${enc(inst.id)}`, { enabled: !inst.enabled })),
        h("span", { class: "small muted" }, `updated ${fmtDate(inst.updatedAt)}`),
      ),
    );
  };
  draw(initial);
  return el;
}
