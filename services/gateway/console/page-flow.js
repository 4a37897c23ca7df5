// @ts-check
// One flow: a visual editor (the diagram; a form per node, for the trigger and for the flow,
// generated from the JSON Schemas the API publishes), the whole definition as JSON for
// advanced edits, saves with optimistic locking, validation problems at the nodes, history.

import { ApiError, enc, get, isAbort, put } from "./api.js";
import { fmtDate, h, mount, pretty, uid } from "./dom.js";
import { drawGraph, nodeOfField } from "./flow-graph.js";
import { action, errorBox, field, InputError, parseJSON, sentence, showError, statusLine } from "./forms.js";
import { schemaForm } from "./schema-form.js";
import { isObject, loadTypes, typedForm } from "./typed-form.js";
import { badge, card, confirmButton, copyValue, loading, newButton, tabs } from "./widgets.js";
/** @import { Flow, FlowRevision, Page } from "./api-types.js" */
/** @import { GraphView } from "./flow-graph.js" */
/** @import { NodeType, SchemaType } from "./typed-form.js" */
/** @import { PageContext, PageParams } from "./app.js" */

const READ_ONLY = ["id", "key", "level", "integrationKey", "customerId", "revision", "archived", "createdAt", "updatedAt"];

/**
 * A node as the editor holds it: the wire form of the contract's Node.
 * @typedef {object} EditNode
 * @property {string} type
 * @property {string | null} [name]
 * @property {Record<string, unknown>} [config]
 * @property {{to: string}[]} [links]
 * @property {{attempts?: number, backoff?: number} | null} [retry]
 * @property {"stop" | "continue"} [onError]
 */

/**
 * The definition being edited (what a save sends).
 * @typedef {object} Draft
 * @property {string} name
 * @property {Record<string, unknown>} trigger
 * @property {Record<string, EditNode>} nodes
 * @property {unknown} parameters
 * @property {boolean} autoDeploy
 */

/**
 * What the visual editor shows beside the diagram.
 * @typedef {{kind: "flow"} | {kind: "trigger"} | {kind: "node", key: string}} Selection
 */

/**
 * A copy of the part of a flow its editor edits.
 * @param {Flow} flow
 * @returns {Draft}
 */
function draftOf(flow) {
  return structuredClone({
    name: flow.name,
    trigger: /** @type {Record<string, unknown>} */ ({ ...flow.trigger }),
    nodes: /** @type {Record<string, EditNode>} */ (flow.nodes ?? {}),
    parameters: flow.parameters,
    autoDeploy: flow.autoDeploy,
  });
}

/**
 * A definition typed as JSON, as a draft (its parts are checked by the API on save; here
 * only as far as the visual editor needs them).
 * @param {Record<string, unknown>} value
 * @returns {Draft}
 */
function draftFromJSON(value) {
  const nodes = value.nodes ?? {};
  if (!isObject(nodes)) throw new InputError("nodes must be an object of node key → node.");
  for (const [key, node] of Object.entries(nodes)) {
    if (!isObject(node) || typeof node.type !== "string") throw new InputError(`Node ${key} needs a "type".`);
  }
  const trigger = value.trigger ?? { type: "api" };
  if (!isObject(trigger)) throw new InputError("trigger must be an object with a type.");
  return {
    ...value,
    name: String(value.name ?? ""),
    trigger,
    nodes: /** @type {Record<string, EditNode>} */ (nodes),
    parameters: value.parameters ?? null,
    autoDeploy: Boolean(value.autoDeploy),
  };
}

/**
 * A key not yet used among `keys`: `<base>`, else `<base>-2`, `<base>-3`, …
 * @param {string} base
 * @param {string[]} keys
 */
function freeKey(base, keys) {
  const stem = base.replace(/[^a-z0-9_-]+/gi, "-").toLowerCase() || "node";
  if (!keys.includes(stem)) return stem;
  for (let i = 2; ; i += 1) if (!keys.includes(`${stem}-${i}`)) return `${stem}-${i}`;
}

/**
 * A node type's description: its first sentence, the rest (config, output, errors) folded.
 * @param {NodeType} nodeType
 */
function describe(nodeType) {
  const text = nodeType.description ?? "";
  const cut = text.search(/\.\s/);
  const first = cut < 0 ? text : text.slice(0, cut + 1);
  const rest = cut < 0 ? "" : text.slice(cut + 1).trim();
  return h(
    "div",
    { class: "hint type-description", "data-testid": "node-type-description" },
    h("p", {}, first),
    rest ? h("details", {}, h("summary", {}, `More about ${nodeType.title || nodeType.type}`), h("p", {}, rest)) : null,
  );
}

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const id = params.id ?? "";
  /** @type {Promise<Flow>} */
  const flowRead = get(`/flows/${enc(id)}`, { signal: ctx.signal });
  /** @type {[Flow, {items: NodeType[], error: unknown}, {items: SchemaType[], error: unknown}]} */
  const [flow, nodeTypes, triggerTypes] = await Promise.all([
    flowRead,
    loadTypes("/flow-node-types", ctx.signal),
    loadTypes("/flow-trigger-types", ctx.signal),
  ]);
  if (!ctx.alive) return;

  /**
   * invalid: problem sentences by node key; fields: the fields the last save's problems named.
   * @type {{flow: Flow, draft: Draft, selected: Selection, invalid: Map<string, string[]>,
   *   fields: Map<string, string>, view: GraphView, mode: string,
   *   commit: (strict: boolean) => void}}
   */
  const state = {
    flow,
    draft: draftOf(flow),
    selected: { kind: "flow" },
    invalid: new Map(),
    fields: new Map(),
    view: { zoom: null },
    mode: "visual",
    commit: () => {},
  };

  const head = h("div", {});
  const graphBox = h("div", {});
  const panelBox = h("div", { class: "node-panel", "data-testid": "node-panel" });
  const revisionsBox = h("div", {});
  const revisionView = h("div", {});
  const editor = h("textarea", { "data-testid": "flow-json", class: "code tall", rows: 24, spellcheck: "false", id: uid("flow-json") });
  const errors = errorBox(null, { "data-testid": "flow-errors" });
  const conflict = h("div", { "data-testid": "flow-conflict" });
  const saved = statusLine({ "data-testid": "flow-saved" });
  const save = h("button", { type: "button", class: "primary", "data-testid": "flow-save" }, "Save");
  const typesProblem = nodeTypes.error || triggerTypes.error
    ? h("p", { class: "warning small", "data-testid": "types-unavailable" }, "The API did not list its node and trigger types, so configs are edited as JSON.")
    : null;
  const nodeKeys = () => Object.keys(state.draft.nodes);

  function drawHead() {
    const f = state.flow;
    mount(
      head,
      h("p", { class: "small" }, h("a", { href: f.level === "customer" && f.customerId ? `#/customers/${enc(f.customerId)}?tab=flows` : "#/flows" }, "← Flows")),
      h(
        "div",
        { class: "page-head" },
        h("h1", { "data-testid": "flow-name" }, f.name),
        badge(f.level, "info", { "data-testid": "flow-level" }),
        f.archived ? badge("archived") : null,
        f.autoDeploy ? badge("auto-deploy", "ok") : null,
      ),
      h(
        "dl",
        { class: "meta" },
        h("dt", {}, "Id"), h("dd", {}, copyValue(f.id, { testid: "flow-id" })),
        h("dt", {}, "Key"), h("dd", {}, copyValue(f.key, { testid: "flow-key" })),
        h("dt", {}, "Level"), h("dd", {}, f.level),
        f.integrationKey ? [h("dt", {}, "Integration"), h("dd", {}, f.integrationKey)] : null,
        f.customerId ? [h("dt", {}, "Customer"), h("dd", {}, h("a", { href: `#/customers/${enc(f.customerId)}` }, f.customerId))] : null,
        h("dt", {}, "Revision"), h("dd", { "data-testid": "flow-revision" }, String(f.revision)),
        h("dt", {}, "Updated"), h("dd", {}, fmtDate(f.updatedAt)),
      ),
    );
  }

  /** @param {Draft} [definition] what to draw (default: the draft) */
  function drawDiagram(definition = state.draft) {
    const sel = state.selected;
    mount(
      graphBox,
      drawGraph(definition, state.invalid, {
        selected: sel.kind === "node" ? sel.key : null,
        triggerSelected: sel.kind === "trigger",
        onSelect: (key) => select({ kind: "node", key }),
        onSelectTrigger: () => select({ kind: "trigger" }),
        view: state.view,
      }),
    );
  }

  /**
   * Show another node (or the trigger, or the flow) in the panel, once what the panel holds
   * is read into the draft (a field that does not read keeps the panel, with its error).
   * @param {Selection} next
   */
  function select(next) {
    if (state.mode === "json" && !applyJSON()) return;
    if (!committed()) return;
    state.selected = next;
    if (state.mode === "json") modeTabs.select("visual");
    else drawPanel();
    drawDiagram();
  }

  /**
   * Read the panel into the draft; a field that does not read is shown, focused and kept.
   * @returns {boolean} whether the draft now holds the panel
   */
  function committed() {
    try {
      state.commit(true);
      return true;
    } catch (err) {
      showError(errors, err);
      if (err instanceof InputError) err.control?.focus();
      return false;
    }
  }

  /**
   * Mark the controls a save's problems named (their sentences are in the error box).
   * @param {string} prefix e.g. `nodes.fetch.`
   * @param {Record<string, HTMLElement | null>} controls path (after the prefix) → control
   * @param {HTMLElement | null} [configForm] where `config.<path>` controls are
   */
  function markProblems(prefix, controls, configForm) {
    for (const where of state.fields.keys()) {
      if (!where.startsWith(prefix)) continue;
      const rest = where.slice(prefix.length);
      /** @type {Element | null} */
      let control = controls[rest] ?? null;
      if (!control && configForm && rest.startsWith("config.")) {
        control = configForm.querySelector(`[data-field="${CSS.escape(rest.slice("config.".length))}"]`);
      }
      if (control) control.setAttribute("aria-invalid", "true");
    }
  }

  function drawPanel() {
    const sel = state.selected;
    if (sel.kind === "node" && state.draft.nodes[sel.key]) drawNodePanel(sel.key);
    else if (sel.kind === "trigger") drawTriggerPanel();
    else drawFlowPanel();
  }

  /** The flow's own fields: name and auto-deploy. */
  function drawFlowPanel() {
    state.selected = { kind: "flow" };
    const name = h("input", { type: "text", "data-testid": "def-name", value: state.draft.name, maxlength: 200, autocomplete: "off" });
    const autoDeploy = h("input", { type: "checkbox", "data-testid": "def-auto-deploy", checked: state.draft.autoDeploy });
    state.commit = (strict) => {
      if (strict && !name.value.trim()) throw new InputError("The flow needs a name.", name);
      state.draft.name = name.value.trim() || state.draft.name;
      state.draft.autoDeploy = autoDeploy.checked;
    };
    mount(
      panelBox,
      h("h2", {}, "Flow"),
      h("p", { class: "muted small" }, "Select the trigger or a node in the diagram to edit it; add nodes with “Add node”."),
      h("div", { class: "form-row", oninput: () => state.commit(false) }, field("Name", name)),
      h("label", { class: "checkbox" }, autoDeploy, " Deploy to every connection of its scope automatically (auto-deploy)"),
      h("p", { class: "hint" }, "Parameters (a JSON Schema of values customers set) are edited in the JSON view."),
    );
    autoDeploy.addEventListener("change", () => state.commit(false));
  }

  function drawTriggerPanel() {
    const form = typedForm(triggerTypes.items, { value: state.draft.trigger, testid: "trigger", label: "Trigger" });
    state.commit = (strict) => {
      try {
        state.draft.trigger = form.read();
      } catch (err) {
        if (strict) throw err;
      }
    };
    const box = h("div", { oninput: () => state.commit(false), onchange: () => state.commit(false) }, form.element);
    mount(panelBox, h("h2", {}, "Trigger"), box);
    for (const where of state.fields.keys()) {
      if (!where.startsWith("trigger.")) continue;
      const control = form.element.querySelector(`[data-field="${CSS.escape(where.slice("trigger.".length))}"]`);
      control?.setAttribute("aria-invalid", "true");
    }
  }

  /** @param {string} key */
  function drawNodePanel(key) {
    const node = state.draft.nodes[key];
    const nodeType = nodeTypes.items.find((t) => t.type === node.type);
    const keyInput = h("input", { type: "text", "data-testid": "node-key", value: key, autocomplete: "off", required: true });
    const nameInput = h("input", { type: "text", "data-testid": "node-name", value: node.name ?? "", autocomplete: "off", maxlength: 200 });
    /** @type {HTMLSelectElement | HTMLInputElement} */
    const typeSelect = nodeTypes.items.length
      ? h(
        "select",
        { "data-testid": "node-type", onchange: () => { changeType(typeSelect.value); } },
        nodeTypes.items.map((t) => h("option", { value: t.type }, t.title && t.title !== t.type ? `${t.title} (${t.type})` : t.type)),
        nodeType ? null : h("option", { value: node.type }, `${node.type} (unknown)`),
      )
      : h("input", { type: "text", "data-testid": "node-type", value: node.type, autocomplete: "off" });
    typeSelect.value = node.type;
    const config = schemaForm(nodeType?.configSchema ?? { type: "object" }, { value: node.config ?? {}, testid: "node-config", label: `Config of ${key}` });
    const onError = h(
      "select",
      { "data-testid": "node-on-error" },
      h("option", { value: "stop" }, "stop the run"),
      h("option", { value: "continue" }, "continue (the node's output is null)"),
    );
    onError.value = node.onError ?? "stop";
    const retryOn = h("input", { type: "checkbox", "data-testid": "node-retry", checked: Boolean(node.retry) });
    const attempts = h("input", { type: "number", min: 1, max: 10, step: 1, "data-testid": "node-retry-attempts", value: String(node.retry?.attempts ?? 3) });
    const backoff = h("input", { type: "number", min: 0, max: 600, step: "any", "data-testid": "node-retry-backoff", value: String(node.retry?.backoff ?? 1) });
    const retryFields = h("div", { class: "retry-fields" }, field("Tries in all", attempts), field("Seconds before the 2nd try", backoff));
    retryFields.hidden = !retryOn.checked;
    retryOn.addEventListener("change", () => {
      retryFields.hidden = !retryOn.checked;
    });

    /**
     * @param {HTMLInputElement} input
     * @param {string} what
     */
    const number = (input, what) => {
      const value = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(value)) throw new InputError(`${what} must be a number.`, input);
      return value;
    };

    /** Rename the node (links to it follow); false when the new key is taken or empty. */
    const rename = (/** @type {boolean} */ strict) => {
      const next = keyInput.value.trim();
      if (next === key) return;
      if (!next || state.draft.nodes[next]) {
        if (strict) throw new InputError(next ? `There is already a node ${next}.` : "The node needs a key.", keyInput);
        return;
      }
      /** @type {Record<string, EditNode>} */
      const nodes = {};
      for (const [k, n] of Object.entries(state.draft.nodes)) {
        nodes[k === key ? next : k] = { ...n, links: (n.links ?? []).map((l) => (l.to === key ? { ...l, to: next } : l)) };
      }
      state.draft.nodes = nodes;
      state.invalid.delete(key);
      key = next;
      state.selected = { kind: "node", key };
      drawDiagram();
    };

    state.commit = (strict) => {
      const current = state.draft.nodes[key];
      /** @type {EditNode} */
      const next = { ...current, type: typeSelect.value.trim() || current.type, name: nameInput.value.trim() || null, onError: onError.value === "continue" ? "continue" : "stop" };
      try {
        const read = config.read();
        next.config = isObject(read) ? read : {};
      } catch (err) {
        if (strict) throw err;
      }
      try {
        next.retry = retryOn.checked ? { attempts: number(attempts, "Tries in all"), backoff: number(backoff, "Seconds before the 2nd try") } : null;
      } catch (err) {
        if (strict) throw err;
      }
      // Only a new name changes the diagram; redrawing on every blur would swallow the click
      // (on another node) that caused it.
      const redraw = (next.name ?? null) !== (current.name ?? null);
      state.draft.nodes[key] = next;
      if (strict) rename(true);
      else if (redraw) drawDiagram();
    };

    /** @param {string} type */
    const changeType = (type) => {
      state.commit(false);
      const chosen = nodeTypes.items.find((t) => t.type === type);
      const props = chosen && isObject(chosen.configSchema.properties) ? Object.keys(chosen.configSchema.properties) : [];
      const old = state.draft.nodes[key].config ?? {};
      state.draft.nodes[key] = { ...state.draft.nodes[key], type, config: Object.fromEntries(Object.entries(old).filter(([k]) => props.includes(k))) };
      drawNodePanel(key);
      drawDiagram();
    };

    const links = node.links ?? [];
    const targets = nodeKeys().filter((k) => k !== key && !links.some((l) => l.to === k));
    const target = h(
      "select",
      { "data-testid": "node-link-target", id: uid("link-target") },
      targets.length ? targets.map((k) => h("option", { value: k }, k)) : h("option", { value: "" }, "— no other node —"),
    );
    const linkButton = h("button", {
      type: "button",
      class: "secondary",
      "data-testid": "node-link-add",
      disabled: !targets.length,
      onclick: () => edit(() => {
        const n = state.draft.nodes[key];
        state.draft.nodes[key] = { ...n, links: [...(n.links ?? []), { to: target.value }] };
      }),
    }, "Link");

    /** Read the panel, change the draft, then redraw the panel and the diagram. */
    const edit = (/** @type {() => void} */ change) => {
      if (!committed()) return;
      change();
      drawPanel();
      drawDiagram();
    };

    const remove = confirmButton({
      label: "Delete node",
      confirmLabel: "Delete",
      question: `Delete ${key} and the links to it?`,
      testid: "node-delete",
      cls: "secondary",
      action: async () => {
        /** @type {Record<string, EditNode>} */
        const nodes = {};
        for (const [k, n] of Object.entries(state.draft.nodes)) {
          if (k !== key) nodes[k] = { ...n, links: (n.links ?? []).filter((l) => l.to !== key) };
        }
        state.draft.nodes = nodes;
        state.invalid.delete(key);
        state.commit = () => {};
        state.selected = { kind: "flow" };
        drawPanel();
        drawDiagram();
      },
    });

    const form = h(
      "div",
      {
        oninput: (/** @type {Event} */ e) => {
          if (e.target !== keyInput) state.commit(false);
        },
        onchange: (/** @type {Event} */ e) => {
          if (e.target === keyInput) rename(false);
          else if (e.target !== typeSelect) state.commit(false);
        },
      },
      h("div", { class: "form-row" }, field("Key", keyInput, "Unique in the flow; links to it follow a rename."), field("Name", nameInput)),
      field("Type", typeSelect),
      nodeType?.description ? describe(nodeType) : null,
      h("h3", {}, "Config"),
      config.element,
      h("h3", {}, "On failure"),
      h("div", { class: "form-row" }, field("When the node fails", onError)),
      h("label", { class: "checkbox" }, retryOn, " Set the retries (default: 3 tries on transient errors, 1 on others)"),
      retryFields,
    );
    mount(
      panelBox,
      h("h2", {}, "Node ", h("code", { "data-testid": "node-panel-key" }, key), badge(node.type, "info")),
      form,
      h("h3", {}, "Links"),
      links.length
        ? h(
          "ul",
          { class: "link-list", "data-testid": "node-links" },
          links.map((l) =>
            h(
              "li",
              { "data-to": l.to },
              "→ ",
              h("code", {}, l.to),
              state.draft.nodes[l.to] ? null : badge("missing", "bad"),
              h("button", {
                type: "button",
                class: "secondary small",
                "data-testid": "node-unlink",
                "data-to": l.to,
                "aria-label": `Unlink ${key} from ${l.to}`,
                onclick: () => edit(() => {
                  const n = state.draft.nodes[key];
                  state.draft.nodes[key] = { ...n, links: (n.links ?? []).filter((x) => x.to !== l.to) };
                }),
              }, "Unlink"),
            ),
          ),
        )
        : h("p", { class: "muted small", "data-testid": "node-links" }, "No links: the run ends after this node."),
      h("div", { class: "link-add" }, field("Link to…", target), h("div", { class: "field" }, linkButton)),
      h("div", { class: "panel-actions" }, remove),
    );
    markProblems(`nodes.${key}.`, { name: nameInput, type: typeSelect, onError, retry: attempts, "retry.attempts": attempts, "retry.backoff": backoff }, config.element);
  }

  /** Add-node form (inside the "Add node" panel). */
  const addNode = newButton("Add node", (close) => {
    const keys = nodeKeys();
    const type = nodeTypes.items.length
      ? h("select", { "data-testid": "add-node-type" }, nodeTypes.items.map((t) => h("option", { value: t.type }, t.title && t.title !== t.type ? `${t.title} (${t.type})` : t.type)))
      : h("input", { type: "text", "data-testid": "add-node-type", autocomplete: "off", placeholder: "http-request" });
    const key = h("input", { type: "text", "data-testid": "add-node-key", autocomplete: "off", value: freeKey(type.value || "node", keys) });
    let keyTyped = false;
    key.addEventListener("input", () => {
      keyTyped = true;
    });
    type.addEventListener("change", () => {
      if (!keyTyped) key.value = freeKey(type.value || "node", nodeKeys());
    });
    const sel = state.selected;
    const from = h(
      "select",
      { "data-testid": "add-node-from" },
      h("option", { value: "" }, "— none (it follows the trigger) —"),
      keys.map((k) => h("option", { value: k }, k)),
    );
    from.value = sel.kind === "node" && keys.includes(sel.key) ? sel.key : keys.length ? keys[keys.length - 1] : "";
    const problem = errorBox(null, { "data-testid": "add-node-error" });
    const button = h("button", { type: "submit", class: "primary", "data-testid": "add-node-submit" }, "Add");
    return h(
      "form",
      {
        novalidate: true,
        onsubmit: action({ button, problem }, () => {
          const k = key.value.trim();
          if (!type.value.trim()) throw new InputError("Choose the node's type.", type);
          if (!k) throw new InputError("The node needs a key.", key);
          if (state.mode === "json") readJSONView();
          else state.commit(true);
          if (state.draft.nodes[k]) throw new InputError(`There is already a node ${k}.`, key);
          state.draft.nodes[k] = { type: type.value.trim(), config: {}, links: [] };
          const source = from.value ? state.draft.nodes[from.value] : null;
          if (source) state.draft.nodes[from.value] = { ...source, links: [...(source.links ?? []), { to: k }] };
          state.commit = () => {};
          state.selected = { kind: "node", key: k };
          close();
          if (state.mode === "json") modeTabs.select("visual");
          else drawPanel();
          drawDiagram();
        }),
      },
      h("div", { class: "form-row" }, field("Type", type), field("Key", key), field("Linked from", from)),
      problem,
      h("div", { class: "actions" }, button),
    );
  }, { testid: "add-node" });

  /** Read the JSON view into the draft (an InputError when it does not read). */
  function readJSONView() {
    const parsed = parseJSON(editor.value);
    if (parsed.error !== undefined || !parsed.value) throw new InputError(`Flow JSON: ${parsed.error ?? "Enter some JSON"}`, editor);
    try {
      state.draft = draftFromJSON(parsed.value);
    } catch (err) {
      if (err instanceof InputError) throw new InputError(`Flow JSON: ${err.message}`, editor);
      throw err;
    }
  }

  /** Read the JSON view into the draft; false (with the error shown) when it does not read. */
  function applyJSON() {
    try {
      readJSONView();
      return true;
    } catch (err) {
      showError(errors, err);
      editor.focus();
      return false;
    }
  }

  const modeTabs = tabs(
    [{ key: "visual", label: "Visual", testid: "mode-visual" }, { key: "json", label: "Advanced: JSON", testid: "mode-json" }],
    (key, panel) => {
      if (key === state.mode && panel.childNodes.length) return;
      if (key === "json") {
        try {
          state.commit(true);
        } catch (err) {
          showError(errors, err);
          modeTabs.select("visual");
          if (err instanceof InputError) err.control?.focus();
          return;
        }
        state.mode = "json";
        state.commit = () => {}; // the forms are gone: the JSON is what is edited now
        editor.value = pretty(state.draft);
        mount(
          panel,
          h("div", { class: "field" }, h("label", { for: editor.id }, "Flow JSON (name, trigger, nodes, parameters, autoDeploy)"), editor),
          h("p", { class: "hint" }, "Edits here show in the diagram as you type and in the forms when you go back to Visual."),
        );
      } else {
        if (state.mode === "json" && !applyJSON()) {
          modeTabs.select("json");
          return;
        }
        state.mode = "visual";
        clearTimeout(typing);
        showError(errors, null);
        mount(panel, panelBox);
        drawPanel();
        drawDiagram();
      }
    },
  );

  function resetEditor() {
    state.draft = draftOf(state.flow);
    state.invalid = new Map();
    state.fields = new Map();
    state.commit = () => {};
    if (state.mode === "json") editor.value = pretty(state.draft);
    else drawPanel();
    drawDiagram();
  }

  // Redraw the diagram as the JSON is edited (when it parses).
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let typing;
  editor.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      const parsed = parseJSON(editor.value);
      if (parsed.error !== undefined || !parsed.value) return;
      try {
        // Only drawn: the draft takes the JSON when the view is left or saved.
        if (state.mode === "json") drawDiagram(draftFromJSON(parsed.value));
      } catch {
        // not a definition yet: the diagram waits
      }
    }, 400);
  });
  ctx.onLeave(() => clearTimeout(typing));

  /**
   * Show a validation error once, as sentences grouped by the node they are about; the
   * nodes get marked in the diagram and their fields in the forms.
   * @param {ApiError} err
   * @param {string[]} keys the node keys that were sent
   */
  function showProblems(err, keys) {
    state.invalid = new Map();
    state.fields = new Map();
    /** @type {string[]} */
    const general = [];
    const details = Array.isArray(err.details) ? err.details : [];
    const texts = details.map((d) => (d && typeof d === "object" ? `${d.field}: ${d.message ?? ""}` : String(d)));
    details.forEach((d, i) => {
      const where = d && typeof d === "object" ? d.field : null;
      if (typeof where === "string") state.fields.set(where, String(d.message ?? ""));
      const node = nodeOfField(where, keys);
      if (node && typeof where === "string") {
        const rest = where.slice(`nodes.${node}.`.length);
        const line = rest && where !== `nodes.${node}` ? `${rest}: ${d.message ?? ""}` : String(d.message ?? "");
        const lines = state.invalid.get(node) ?? [];
        if (!lines.includes(line)) state.invalid.set(node, [...lines, line]);
      } else if (!general.includes(texts[i])) {
        general.push(texts[i]);
      }
    });
    // The message repeats the first problem ("the flow is not valid: nodes.a.type: …"),
    // which the lists below already say.
    const repeated = texts.find((text) => err.message.endsWith(`: ${text}`));
    const headline = repeated ? err.message.slice(0, -(repeated.length + 2)) : err.message;
    mount(
      errors,
      h("p", {}, sentence(headline)),
      state.invalid.size
        ? h(
          "ul",
          { class: "node-errors" },
          Array.from(state.invalid, ([node, lines]) =>
            h(
              "li",
              { "data-node": node },
              h("button", { type: "button", class: "link", "data-testid": "problem-node", onclick: () => select({ kind: "node", key: node }) }, `Node ${node}`),
              h("ul", {}, lines.map((line) => h("li", {}, sentence(line)))),
            ),
          ),
        )
        : null,
      general.length ? h("ul", {}, general.map((line) => h("li", {}, sentence(line)))) : null,
    );
    errors.hidden = false;
  }

  async function reload() {
    mount(conflict);
    showError(errors, null);
    saved.set("");
    try {
      state.flow = await get(`/flows/${enc(id)}`, { signal: ctx.signal });
      drawHead();
      resetEditor();
      loadRevisions();
      saved.set(`Reloaded revision ${state.flow.revision}`);
    } catch (err) {
      if (!isAbort(err)) showError(errors, err);
    }
  }

  /** The definition to save: the JSON view's text, or the draft with the open form read in. */
  function definitionToSave() {
    if (state.mode === "json") {
      readJSONView();
    } else {
      state.commit(true);
    }
    return state.draft;
  }

  save.addEventListener("click", action({ button: save, problem: errors, status: saved }, async () => {
    mount(conflict);
    const definition = definitionToSave();
    /** @type {Record<string, unknown>} */
    const body = { ...definition };
    for (const k of READ_ONLY) delete body[k];
    const keys = Object.keys(definition.nodes);
    try {
      state.flow = await put(`/flows/${enc(id)}`, body, { headers: { "If-Match": String(state.flow.revision) } });
      drawHead();
      resetEditor();
      saved.set(`Saved revision ${state.flow.revision}`);
      loadRevisions();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 409 && err.code === "revision_conflict") {
        const now = err.details && !Array.isArray(err.details) ? err.details.currentRevision : null;
        mount(
          conflict,
          h(
            "div",
            { class: "warning", role: "alert" },
            h("p", {}, `Someone else saved this flow first${now ? ` (it is now at revision ${now})` : ""}. Your edits are still in the editor: copy them from the JSON view if you want to keep them, then reload.`),
            h("div", { class: "actions" }, h("button", { type: "button", class: "primary", "data-testid": "flow-reload", onclick: reload }, "Reload the latest revision")),
          ),
        );
      } else if (err.status === 422) {
        showProblems(err, keys);
        if (state.mode === "visual") drawPanel();
        drawDiagram();
      } else {
        throw err;
      }
    }
  }));

  async function loadRevisions() {
    mount(revisionsBox, loading());
    try {
      /** @type {Page<FlowRevision>} */
      const page = await get(`/flows/${enc(id)}/revisions`, { signal: ctx.signal });
      /** @type {HTMLButtonElement[]} */
      const buttons = [];
      const list = h(
        "ul",
        { class: "revision-list", "data-testid": "revision-list" },
        page.items.map((rev) => {
          const button = h("button", {
            type: "button",
            "data-testid": "revision-item",
            "data-revision": rev.revision,
            onclick: () => {
              for (const b of buttons) b.classList.toggle("active", b === button);
              showRevision(rev);
            },
          }, h("strong", {}, `Revision ${rev.revision}`), rev.revision === state.flow.revision ? " (current)" : "", h("br", {}), h("span", { class: "small muted" }, fmtDate(rev.createdAt)));
          buttons.push(button);
          return h("li", {}, button);
        }),
      );
      mount(revisionsBox, page.items.length ? list : h("p", { class: "muted" }, "No revisions."));
    } catch (err) {
      if (!isAbort(err)) mount(revisionsBox, errorBox(err));
    }
  }

  /** @param {FlowRevision} rev */
  async function showRevision(rev) {
    let definition = rev.definition;
    if (!definition) {
      mount(revisionView, loading());
      try {
        /** @type {FlowRevision} */
        const full = await get(`/flows/${enc(id)}/revisions/${rev.revision}`, { signal: ctx.signal });
        definition = full.definition;
      } catch (err) {
        if (!isAbort(err)) mount(revisionView, errorBox(err));
        return;
      }
    }
    mount(
      revisionView,
      h("h3", {}, `Revision ${rev.revision}`),
      h("pre", { "data-testid": "revision-json" }, pretty(definition)),
      h(
        "div",
        { class: "actions" },
        h("button", {
          type: "button",
          class: "secondary",
          "data-testid": "revision-load",
          onclick: () => {
            state.draft = draftFromJSON(structuredClone(/** @type {Record<string, unknown>} */ ({ ...definition })));
            state.commit = () => {};
            state.invalid = new Map();
            state.fields = new Map();
            if (state.mode === "json") editor.value = pretty(state.draft);
            else drawPanel();
            drawDiagram();
            saved.set(`Revision ${rev.revision} loaded into the editor: save to make it current`);
          },
        }, "Load into editor"),
      ),
    );
  }

  drawHead();
  mount(
    root,
    head,
    card("Diagram", typesProblem, graphBox, h("div", { class: "editor-bar" }, addNode)),
    h(
      "div",
      { class: "flow-layout" },
      h(
        "div",
        {},
        card(
          null,
          modeTabs.el,
          errors,
          conflict,
          h(
            "div",
            { class: "save-bar" },
            save,
            h("button", { type: "button", class: "secondary", "data-testid": "flow-revert", onclick: () => { resetEditor(); showError(errors, null); saved.set(""); } }, "Discard changes"),
            saved,
          ),
        ),
      ),
      card("Revisions", revisionsBox, revisionView),
    ),
  );
  modeTabs.select("visual");
  loadRevisions();
}
