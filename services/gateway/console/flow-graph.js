// @ts-check
// Draw a flow's nodes as an SVG diagram: columns by depth from the nodes nothing links
// to, links as arrows. Built with DOM APIs; geometry is set as SVG attributes. The diagram
// sits in a scrolling viewport with zoom in / zoom out / fit / 100% buttons (Ctrl+wheel
// zooms, dragging the background pans), so a wide flow is never clipped by its card.

import { h, s, uid } from "./dom.js";
import { isObject } from "./schema-tools.js";

const W = 172;
const H = 54;
const GAP_X = 72;
const GAP_Y = 22;
const PAD = 16;

/**
 * What drawGraph reads of a definition. It may be JSON being typed, so each part is
 * checked before it is drawn.
 * @typedef {{trigger?: unknown, nodes?: unknown}} GraphInput
 */


/**
 * The keys a node links to.
 * @param {unknown} node
 * @returns {string[]}
 */
function linksOf(node) {
  if (!isObject(node) || !Array.isArray(node.links)) return [];
  return node.links.map((l) => (isObject(l) ? l.to : undefined)).filter((to) => typeof to === "string");
}

/**
 * Depth of each node: longest path from a node without incoming links (cycles tolerated).
 * @param {Record<string, unknown>} nodes
 * @returns {Map<string, number>}
 */
export function depths(nodes) {
  const keys = Object.keys(nodes || {});
  const indegree = new Map(keys.map((k) => [k, 0]));
  for (const k of keys) {
    for (const to of linksOf(nodes[k])) if (indegree.has(to)) indegree.set(to, (indegree.get(to) ?? 0) + 1);
  }
  /** @type {Map<string, number>} */
  const depth = new Map();
  const queue = keys.filter((k) => indegree.get(k) === 0);
  for (const k of queue) depth.set(k, 0);
  const left = new Map(indegree);
  for (let i = 0; i < queue.length; i += 1) {
    const k = queue[i];
    const below = (depth.get(k) ?? 0) + 1;
    for (const to of linksOf(nodes[k])) {
      const remaining = left.get(to);
      if (remaining === undefined) continue;
      depth.set(to, Math.max(depth.get(to) ?? 0, below));
      left.set(to, remaining - 1);
      if (remaining === 1) queue.push(to);
    }
  }
  // Nodes on a cycle never reach indegree 0: put them after everything placed so far.
  let next = depth.size ? Math.max(...depth.values()) + 1 : 0;
  for (const k of keys) if (!depth.has(k)) depth.set(k, next++);
  return depth;
}

/**
 * @param {unknown} text
 * @param {number} max
 */
function clip(text, max) {
  const str = String(text ?? "");
  return str.length > max ? `${str.slice(0, max - 1)}…` : str;
}

/** @param {unknown} trigger */
function triggerLabel(trigger) {
  if (!isObject(trigger)) return "no trigger";
  const extra = trigger.cron || trigger.appEventTypeKey || trigger.dataSourceKey || "";
  return extra ? `${trigger.type}: ${extra}` : String(trigger.type || "trigger");
}

/**
 * How a diagram is zoomed, kept by the page across redraws: `null` fits a wide diagram to
 * its card but not below half size (it scrolls past that), `"fit"` fits it whole, a number
 * is a zoom chosen with the buttons (1 = 100 %).
 * @typedef {object} GraphView
 * @property {number | "fit" | null} zoom
 * @property {number} [left] where the viewport was scrolled to
 * @property {number} [top]
 */

/**
 * How a diagram shows a run or a selection.
 * @typedef {object} GraphOptions
 * @property {Map<string, string>} [states] node key → node state (running, waiting, completed,
 *   failed, skipped): the box gets the class `state-<state>` and `data-state`
 * @property {string | null} [selected] the node shown as selected (class `selected`)
 * @property {(key: string) => void} [onSelect] called when a node is clicked (or Enter)
 * @property {boolean} [triggerSelected] show the trigger as selected
 * @property {() => void} [onSelectTrigger] called when the trigger is clicked (or Enter)
 * @property {GraphView} [view] the zoom to keep across redraws (default: a fresh `{zoom: null}`)
 */

const ZOOM_MIN = 0.1;
const ZOOM_MAX = 2.5;
const ZOOM_STEP = 1.25;
/** The least zoom the automatic fit goes to before it lets the diagram scroll instead. */
const AUTO_MIN = 0.5;

/**
 * Keyboard and click handlers that make an SVG group act as a button.
 * @param {() => void} select
 */
function selectable(select) {
  return {
    tabindex: 0,
    role: "button",
    onclick: select,
    onkeydown: (/** @type {KeyboardEvent} */ e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        select();
      }
    },
  };
}

/**
 * The diagram of a definition ({trigger, nodes}); `invalid` maps node keys to messages
 * (those boxes get the class `invalid`).
 * @param {GraphInput | null | undefined} definition
 * @param {Map<string, string[]>} [invalid]
 * @param {GraphOptions} [options]
 */
export function drawGraph(definition, invalid = new Map(), options = {}) {
  const { states, selected, onSelect, triggerSelected, onSelectTrigger, view = { zoom: null } } = options;
  const nodes = isObject(definition?.nodes) ? definition.nodes : {};
  const keys = Object.keys(nodes);
  const depth = depths(nodes);
  /** @type {string[][]} node keys by column */
  const columns = [];
  for (const k of keys) {
    const col = depth.get(k) ?? 0;
    if (!columns[col]) columns[col] = [];
    columns[col].push(k);
  }
  /** @type {Map<string, {x: number, y: number}>} */
  const pos = new Map();
  columns.forEach((column, col) => {
    (column || []).forEach((k, row) => {
      pos.set(k, { x: PAD + (col + 1) * (W + GAP_X), y: PAD + row * (H + GAP_Y) });
    });
  });
  const rowsMax = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  const width = PAD * 2 + (columns.length + 1) * W + columns.length * GAP_X + 40;
  const height = PAD * 2 + rowsMax * H + (rowsMax - 1) * GAP_Y + 30;
  const markerId = uid("arrow");

  const svg = s("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `Flow diagram: ${keys.length} node(s)${invalid.size ? `, ${invalid.size} with problems` : ""}`,
    "data-testid": "flow-graph",
  });
  svg.appendChild(
    s("defs", {}, s("marker", {
      id: markerId,
      viewBox: "0 0 10 10",
      refX: 10,
      refY: 5,
      markerWidth: 8,
      markerHeight: 8,
      orient: "auto-start-reverse",
    }, s("path", { d: "M0 0 L10 5 L0 10 z", class: "graph-arrow" }))),
  );

  const linksLayer = s("g", { class: "graph-links" });
  const nodesLayer = s("g", { class: "graph-nodes" });
  svg.append(linksLayer, nodesLayer);

  /**
   * @param {number} x1
   * @param {number} y1
   * @param {number} x2
   * @param {number} y2
   * @param {string} [cls]
   * @param {boolean} [forward] false: loop back under the boxes
   */
  const arrow = (x1, y1, x2, y2, cls = "graph-link", forward = true) => {
    const dx = Math.max(30, Math.abs(x2 - x1) / 2);
    const d = forward
      ? `M${x1} ${y1} C${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`
      : `M${x1} ${y1} C${x1 + 60} ${y1 + H + 20}, ${x2 - 60} ${y2 + H + 20}, ${x2} ${y2}`;
    linksLayer.appendChild(s("path", { d, class: cls, "marker-end": `url(#${markerId})` }));
  };

  // The trigger, linked to every root.
  const ty = PAD;
  nodesLayer.appendChild(
    s("g", {
      class: ["graph-trigger", "graph-node", triggerSelected ? "selected" : ""].filter(Boolean).join(" "),
      "data-testid": "flow-trigger",
      ...(onSelectTrigger ? selectable(onSelectTrigger) : {}),
    },
      s("title", {}, `Trigger: ${triggerLabel(definition?.trigger)}`),
      s("rect", { x: PAD, y: ty, width: W, height: H, rx: 27, ry: 27 }),
      s("text", { x: PAD + 14, y: ty + 22, class: "node-key" }, "trigger"),
      s("text", { x: PAD + 14, y: ty + 40, class: "node-type" }, clip(triggerLabel(definition?.trigger), 24))),
  );
  for (const k of keys) {
    const p = pos.get(k);
    if (p && depth.get(k) === 0) arrow(PAD + W, ty + H / 2, p.x, p.y + H / 2);
  }

  for (const k of keys) {
    const p = pos.get(k);
    if (!p) continue;
    for (const to of linksOf(nodes[k])) {
      const q = pos.get(to);
      if (!q) {
        arrow(p.x + W, p.y + H / 2, p.x + W + GAP_X - 8, p.y + H / 2, "graph-link dangling");
        continue;
      }
      arrow(p.x + W, p.y + H / 2, q.x, q.y + H / 2, "graph-link", q.x > p.x);
    }
  }

  for (const k of keys) {
    const p = pos.get(k);
    if (!p) continue;
    const node = isObject(nodes[k]) ? nodes[k] : {};
    const problems = invalid.get(k);
    const state = states?.get(k);
    const title = [node.name ? `${k} — ${node.name}` : k, `type: ${node.type ?? "?"}`, ...(state ? [`state: ${state}`] : []), ...(problems || [])].join("\n");
    const cls = ["graph-node", problems ? "invalid" : "", state ? `state-${state}` : "", selected === k ? "selected" : ""].filter(Boolean).join(" ");
    nodesLayer.appendChild(
      s("g", {
        class: cls,
        "data-testid": "flow-node",
        "data-node": k,
        "data-invalid": problems ? "true" : null,
        "data-state": state ?? null,
        ...(onSelect ? selectable(() => onSelect(k)) : {}),
      },
      s("title", {}, title),
      s("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6, ry: 6 }),
      s("text", { x: p.x + 12, y: p.y + 22, class: "node-key" }, clip(problems ? `⚠ ${k}` : k, 20)),
      s("text", { x: p.x + 12, y: p.y + 40, class: "node-type" }, clip(node.name ? `${node.type ?? "?"} · ${node.name}` : node.type ?? "?", 24))),
    );
  }

  const wrap = h("div", { class: "graph-wrap zoomable" }, zoomable(svg, width, height, view));
  if (!keys.length) wrap.appendChild(h("p", { class: "muted small" }, "No nodes yet."));
  return wrap;
}

/**
 * The diagram's viewport (it scrolls) under a toolbar: zoom out, zoom in, fit, 100 %.
 * Test ids: `graph-zoom-out`, `graph-zoom-in`, `graph-fit`, `graph-zoom-reset`,
 * `graph-zoom` (the percentage), `graph-viewport`.
 * @param {SVGSVGElement} svg drawn at zoom 1
 * @param {number} width its natural width
 * @param {number} height its natural height
 * @param {GraphView} view read and written as the zoom changes
 */
function zoomable(svg, width, height, view) {
  const viewport = h("div", { class: "graph-viewport", "data-testid": "graph-viewport" }, svg);
  const level = h("span", { class: "graph-zoom small muted", "data-testid": "graph-zoom", "aria-live": "polite" });

  /** The zoom at which the whole diagram fits the viewport (never above 100 %). */
  const fitZoom = () => {
    const style = getComputedStyle(viewport);
    const maxHeight = Number.parseFloat(style.maxHeight);
    const across = viewport.clientWidth - Number.parseFloat(style.paddingLeft || "0") - Number.parseFloat(style.paddingRight || "0");
    const down = Number.isFinite(maxHeight) ? maxHeight : Number.POSITIVE_INFINITY;
    return Math.max(ZOOM_MIN, Math.min(1, across / width, down / height));
  };

  /** Size the SVG for the view's zoom (its viewBox stays: the browser scales the drawing). */
  const apply = () => {
    if (!viewport.clientWidth) return; // not laid out yet: the observer calls again
    const zoom = view.zoom === "fit" ? fitZoom() : view.zoom === null ? Math.max(AUTO_MIN, fitZoom()) : view.zoom;
    const first = !svg.dataset.zoom;
    const centre = {
      x: (viewport.scrollLeft + viewport.clientWidth / 2) / Math.max(1, viewport.scrollWidth),
      y: (viewport.scrollTop + viewport.clientHeight / 2) / Math.max(1, viewport.scrollHeight),
    };
    svg.setAttribute("width", String(Math.floor(width * zoom)));
    svg.setAttribute("height", String(Math.floor(height * zoom)));
    if (first) {
      // A redraw (the editor redraws on each change) stays where the last drawing was.
      viewport.scrollLeft = view.left ?? 0;
      viewport.scrollTop = view.top ?? 0;
    } else {
      viewport.scrollLeft = centre.x * viewport.scrollWidth - viewport.clientWidth / 2;
      viewport.scrollTop = centre.y * viewport.scrollHeight - viewport.clientHeight / 2;
    }
    svg.dataset.zoom = zoom.toFixed(3);
    level.textContent = `${Math.round(zoom * 100)} %`;
  };

  /** @param {number} factor */
  const zoomBy = (factor) => {
    const now = Number(svg.dataset.zoom || "1");
    view.zoom = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, now * factor));
    apply();
  };

  /**
   * @param {string} label
   * @param {string} text
   * @param {string} testid
   * @param {() => void} run
   */
  const tool = (label, text, testid, run) =>
    h("button", { type: "button", class: "secondary small", title: label, "aria-label": label, "data-testid": testid, onclick: run }, text);

  // Ctrl+wheel (and a trackpad's pinch) zooms; a plain wheel scrolls as usual.
  viewport.addEventListener("wheel", (event) => {
    if (!event.ctrlKey) return;
    event.preventDefault();
    zoomBy(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP);
  }, { passive: false });

  // Dragging the background with a mouse pans (touch screens scroll natively).
  /** @type {{x: number, y: number, left: number, top: number} | null} */
  let drag = null;
  viewport.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "mouse" || event.button !== 0) return;
    if (event.target instanceof Element && event.target.closest("[role=button]")) return;
    drag = { x: event.clientX, y: event.clientY, left: viewport.scrollLeft, top: viewport.scrollTop };
    viewport.setPointerCapture(event.pointerId);
    viewport.classList.add("dragging");
  });
  viewport.addEventListener("pointermove", (event) => {
    if (!drag) return;
    viewport.scrollLeft = drag.left - (event.clientX - drag.x);
    viewport.scrollTop = drag.top - (event.clientY - drag.y);
  });
  const endDrag = () => {
    drag = null;
    viewport.classList.remove("dragging");
  };
  viewport.addEventListener("pointerup", endDrag);
  viewport.addEventListener("scroll", () => {
    if (!svg.dataset.zoom) return;
    view.left = viewport.scrollLeft;
    view.top = viewport.scrollTop;
  }, { passive: true });
  viewport.addEventListener("pointercancel", endDrag);

  // Fitting follows the card's width (a window resized, a phone turned).
  new ResizeObserver(() => {
    if (view.zoom === null || view.zoom === "fit" || !svg.dataset.zoom) apply();
  }).observe(viewport);

  const tools = h(
    "div",
    { class: "graph-tools", role: "toolbar", "aria-label": "Diagram zoom" },
    tool("Zoom out", "−", "graph-zoom-out", () => zoomBy(1 / ZOOM_STEP)),
    tool("Zoom in", "+", "graph-zoom-in", () => zoomBy(ZOOM_STEP)),
    tool("Fit the diagram to the card", "Fit", "graph-fit", () => {
      view.zoom = "fit";
      apply();
    }),
    tool("Actual size", "1:1", "graph-zoom-reset", () => {
      view.zoom = 1;
      apply();
    }),
    level,
  );
  return [tools, viewport];
}

/**
 * The node a validation field names (nodes.<key>…), among the given keys.
 * @param {unknown} fieldPath
 * @param {string[]} keys
 * @returns {string | null}
 */
export function nodeOfField(fieldPath, keys) {
  if (typeof fieldPath !== "string" || !fieldPath.startsWith("nodes.")) return null;
  const rest = fieldPath.slice("nodes.".length);
  /** @type {string | null} */
  let best = null;
  for (const k of keys) {
    if ((rest === k || rest.startsWith(`${k}.`)) && (!best || k.length > best.length)) best = k;
  }
  return best ?? rest.split(".")[0];
}
