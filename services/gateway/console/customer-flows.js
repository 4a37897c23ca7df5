// A customer's Flows tab: customer-level flows (list, create) and flow instances.

import { enc, get, isAbort, patch, post } from "./api.js";
import {
  badge, card, emptyRow, errorBox, field, fmtDate, h, loading, mount, parseJSON, pretty, shortId,
  showError, statusLine, table,
} from "./dom.js";

const DEFAULT_DEFINITION = '{"trigger": {"type": "api"}, "nodes": {"start": {"type": "delay", "config": {"seconds": 60}}}}';

export function customerFlows(el, customer, ctx) {
  const flowsBox = h("div", {});
  const instancesBox = h("div", {});
  mount(
    el,
    card("Customer-level flows", flowsBox, createForm(customer, () => loadFlows(flowsBox, customer, ctx))),
    card("Flow instances", h("p", { class: "muted" }, "Flows deployed to this customer's connections, with their customisation."), instancesBox),
  );
  loadFlows(flowsBox, customer, ctx);
  loadInstances(instancesBox, customer, ctx);
}

async function loadFlows(box, customer, ctx) {
  if (!box.childNodes.length) mount(box, loading());
  try {
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
    mount(box, table(["Key", "Name", "Integration", "Trigger", "Revision", ""], rows.length ? rows : [emptyRow(6, "No customer-level flows yet.")]));
  } catch (err) {
    if (!isAbort(err)) mount(box, errorBox(err));
  }
}

function createForm(customer, reload) {
  const key = h("input", { type: "text", "data-testid": "cflow-key", required: true, autocomplete: "off", placeholder: "sync-contacts" });
  const name = h("input", { type: "text", "data-testid": "cflow-name", maxlength: 200, autocomplete: "off" });
  const json = h("textarea", { "data-testid": "cflow-json", class: "code", rows: 8, spellcheck: "false", value: pretty(JSON.parse(DEFAULT_DEFINITION)) });
  const problem = errorBox(null, { "data-testid": "cflow-error" });
  const done = statusLine({ "data-testid": "cflow-created" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "cflow-create" }, "Create flow");
  return h(
    "form",
    {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        showError(problem, null);
        done.set("");
        const parsed = parseJSON(json.value);
        if (parsed.error) {
          showError(problem, `Definition: ${parsed.error}`);
          json.focus();
          return;
        }
        const definition = parsed.value;
        const body = {
          ...definition,
          key: key.value.trim(),
          name: name.value.trim() || definition.name,
          level: "customer",
          customerId: customer.id,
        };
        button.disabled = true;
        try {
          const flow = await post("/flows", body);
          done.set(`Created ${flow.key}`);
          key.value = "";
          name.value = "";
          reload();
        } catch (err) {
          showError(problem, err);
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h3", {}, "New customer-level flow"),
    h("div", { class: "form-row" }, field("Key", key), field("Name", name)),
    field("Definition (JSON: trigger, nodes, parameters, autoDeploy)", json),
    problem,
    h("div", { class: "actions" }, button, done),
  );
}

async function loadInstances(box, customer, ctx) {
  mount(box, loading());
  try {
    const page = await get("/flow-instances", { query: { customerId: customer.id, limit: 100 }, signal: ctx.signal });
    if (!page.items.length) {
      mount(box, h("p", { class: "muted", "data-testid": "no-flow-instances" }, "No flow instances for this customer."));
      return;
    }
    mount(box, page.items.map((instance) => instanceView(instance)));
  } catch (err) {
    if (!isAbort(err)) mount(box, errorBox(err));
  }
}

/** The leaves a JSON Merge Patch sets (null = removes). */
export function patchPaths(value, prefix = "") {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return [{ path: prefix || "(whole document)", value, removed: value === null }];
  }
  const keys = Object.keys(value);
  if (!keys.length) return prefix ? [{ path: prefix, value, removed: false }] : [];
  return keys.flatMap((k) => patchPaths(value[k], prefix ? `${prefix}.${k}` : k));
}

function instanceView(initial) {
  const el = h("article", { class: "instance", "data-testid": "flow-instance" });
  const problem = errorBox(null, { "data-testid": "instance-conflicts" });
  const busy = (buttons, on) => buttons.forEach((b) => { b.disabled = on; });

  const draw = (inst) => {
    const changes = patchPaths(inst.customization || {});
    const act = (label, testid, run, cls = "secondary") => h("button", {
      type: "button",
      class: cls,
      "data-testid": testid,
      onclick: async (event) => {
        const all = Array.from(el.querySelectorAll("button"));
        showError(problem, null);
        busy(all, true);
        try {
          draw(await run());
        } catch (err) {
          if (err.status === 409 && Array.isArray(err.details)) {
            showError(problem, err, "Upgrade conflicts — change or reset the customisation first");
          } else {
            showError(problem, err);
          }
          busy(all, false);
          event.target.focus();
        }
      },
    }, label);
    mount(
      el,
      h(
        "div",
        { class: "instance-head" },
        h("strong", {}, inst.flow?.name || "Flow"),
        h("a", { href: `#/flows/${enc(inst.flowId)}`, class: "small" }, "open flow"),
        h("span", { class: "small muted" }, `${inst.integrationKey} · connection `, h("code", { title: inst.connectionId }, shortId(inst.connectionId))),
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
