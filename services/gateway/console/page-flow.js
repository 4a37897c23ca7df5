// @ts-check
// One flow: diagram, JSON editor with optimistic locking, validation at the nodes, history.

import { ApiError, enc, get, isAbort, put } from "./api.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import { drawGraph, nodeOfField } from "./flow-graph.js";
import { action, errorBox, parseJSON, readJSON, sentence, showError, statusLine } from "./forms.js";
import { badge, card, loading } from "./widgets.js";
/** @import { Flow, FlowDefinition, FlowRevision, Page } from "./api-types.js" */
/** @import { GraphInput } from "./flow-graph.js" */
/** @import { PageContext, PageParams } from "./app.js" */

const READ_ONLY = ["id", "key", "level", "integrationKey", "customerId", "revision", "archived", "createdAt", "updatedAt"];

/**
 * The part of a flow its editor shows (and a save sends).
 * @param {Flow} flow
 * @returns {FlowDefinition}
 */
function definitionOf(flow) {
  return {
    name: flow.name,
    trigger: flow.trigger,
    nodes: flow.nodes,
    parameters: flow.parameters,
    autoDeploy: flow.autoDeploy,
  };
}

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const id = params.id ?? "";
  /** @type {{flow: Flow, invalid: Map<string, string[]>}} invalid: problems by node key */
  const state = { flow: await get(`/flows/${enc(id)}`, { signal: ctx.signal }), invalid: new Map() };

  const head = h("div", {});
  const graphBox = h("div", {});
  const revisionsBox = h("div", {});
  const revisionView = h("div", {});
  const editor = h("textarea", { "data-testid": "flow-json", class: "code tall", rows: 24, spellcheck: "false", id: "flow-json" });
  const errors = errorBox(null, { "data-testid": "flow-errors" });
  const conflict = h("div", { "data-testid": "flow-conflict" });
  const saved = statusLine({ "data-testid": "flow-saved" });
  const save = h("button", { type: "submit", class: "primary", "data-testid": "flow-save" }, "Save");

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
        h("dt", {}, "Key"), h("dd", {}, h("code", {}, f.key)),
        h("dt", {}, "Level"), h("dd", {}, f.level),
        f.integrationKey ? [h("dt", {}, "Integration"), h("dd", {}, f.integrationKey)] : null,
        f.customerId ? [h("dt", {}, "Customer"), h("dd", {}, h("a", { href: `#/customers/${enc(f.customerId)}` }, f.customerId))] : null,
        h("dt", {}, "Revision"), h("dd", { "data-testid": "flow-revision" }, String(f.revision)),
        h("dt", {}, "Updated"), h("dd", {}, fmtDate(f.updatedAt)),
      ),
    );
  }

  /** @param {GraphInput | null} definition */
  function drawDiagram(definition) {
    const problems = Array.from(state.invalid, ([node, lines]) =>
      h("li", { "data-node": node }, h("strong", {}, node), ": ", lines.map((line) => line.replace(`nodes.${node}.`, "")).join("; ")),
    );
    mount(
      graphBox,
      drawGraph(definition, state.invalid),
      problems.length ? h("ul", { class: "graph-problems", "data-testid": "graph-problems", "aria-label": "Problems at nodes" }, problems) : null,
    );
  }

  function resetEditor() {
    editor.value = pretty(definitionOf(state.flow));
    state.invalid = new Map();
    drawDiagram(definitionOf(state.flow));
  }

  // Redraw the diagram as the JSON is edited (when it parses).
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let typing;
  editor.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      const parsed = parseJSON(editor.value);
      if (parsed.error === undefined) drawDiagram(parsed.value);
    }, 400);
  });
  ctx.onLeave(() => clearTimeout(typing));

  /**
   * Show a validation error's details at the nodes they name (in the list and the diagram).
   * @param {ApiError} err
   * @param {string[]} keys the node keys that were sent
   */
  function showProblems(err, keys) {
    state.invalid = new Map();
    /** @type {string[]} */
    const general = [];
    const details = Array.isArray(err.details) ? err.details : [];
    const texts = details.map((d) => (d && typeof d === "object" ? `${d.field}: ${d.message ?? ""}` : String(d)));
    details.forEach((d, i) => {
      const node = nodeOfField(d && typeof d === "object" ? d.field : null, keys);
      if (node) state.invalid.set(node, [...(state.invalid.get(node) ?? []), texts[i]]);
      else general.push(texts[i]);
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
            h("li", { "data-node": node }, h("strong", {}, `Node ${node}`), h("ul", {}, lines.map((line) => h("li", {}, sentence(line))))),
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

  const onSave = action({ button: save, problem: errors, status: saved }, async () => {
    mount(conflict);
    const definition = readJSON(editor);
    const body = { ...definition };
    for (const k of READ_ONLY) delete body[k];
    const keys = body.nodes && typeof body.nodes === "object" ? Object.keys(body.nodes) : [];
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
            h("p", {}, `Someone else saved this flow first${now ? ` (it is now at revision ${now})` : ""}. Your edits are still in the editor: copy them if you want to keep them, then reload.`),
            h("div", { class: "actions" }, h("button", { type: "button", class: "primary", "data-testid": "flow-reload", onclick: reload }, "Reload the latest revision")),
          ),
        );
      } else if (err.status === 422) {
        showProblems(err, keys);
        drawDiagram(definition);
      } else {
        throw err;
      }
    }
  });

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
            editor.value = pretty(definition);
            drawDiagram(definition);
            saved.set(`Revision ${rev.revision} loaded into the editor: save to make it current`);
            editor.focus();
          },
        }, "Load into editor"),
      ),
    );
  }

  drawHead();
  mount(
    root,
    head,
    h(
      "div",
      { class: "flow-layout" },
      h(
        "div",
        {},
        card("Diagram", graphBox),
        card(
          "Definition",
          h(
            "form",
            { onsubmit: onSave, novalidate: true },
            h(
              "div",
              { class: "field" },
              h("label", { for: "flow-json" }, "Flow JSON (name, trigger, nodes, parameters, autoDeploy)"),
              editor,
            ),
            errors,
            conflict,
            h("div", { class: "actions" }, save, h("button", { type: "button", class: "secondary", "data-testid": "flow-revert", onclick: () => { resetEditor(); showError(errors, null); saved.set(""); } }, "Discard changes"), saved),
          ),
        ),
      ),
      card("Revisions", revisionsBox, revisionView),
    ),
  );
  resetEditor();
  loadRevisions();
}
