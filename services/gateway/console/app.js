// @ts-check
// The console's shell: sign-in, header and navigation, and the hash router.

import { ApiError, get, isAbort, onUnauthorized, post, session } from "./api.js";
import { h, mount } from "./dom.js";
import { action, errorBox, field, InputError, showError } from "./forms.js";
import { loading } from "./widgets.js";
/** @import { ConsoleSession, Workspace } from "./api-types.js" */

/**
 * What a page gets: an abort signal, timers that stop when the page is left, hooks.
 * @typedef {object} PageContext
 * @property {AbortSignal} signal aborted when the page is left
 * @property {boolean} alive whether the page is still shown
 * @property {(ms: number, fn: () => void) => () => void} after run fn once after ms; returns a cancel
 * @property {(ms: number, fn: () => unknown) => () => void} every run fn every ms (never
 *   overlapping) until stopped or the page is left; returns a stop
 * @property {(fn: () => void) => void} onLeave
 * @property {(hash: string) => void} navigate
 * @property {() => void} leave
 */

/**
 * What the router passes a page: the path segments it takes and the hash's query.
 * @typedef {object} PageParams
 * @property {string} [id] the segment after the page's name
 * @property {string} [tab] the same segment, for pages whose tabs are in the path
 * @property {string} [base] the page's name as written in the path
 * @property {URLSearchParams} query
 */

/**
 * A page module: it fills `root` (and may keep it live until the page is left).
 * @typedef {{render: (root: HTMLElement, params: PageParams, ctx: PageContext) => Promise<void>}} PageModule
 */

/**
 * @typedef {object} PageSpec
 * @property {string} module
 * @property {string} nav the navigation link to mark as current
 * @property {string} title
 * @property {number} max how many path segments the page takes
 */

const NAV = [
  ["settings", "Settings"],
  ["customers", "Customers"],
  ["integrations", "Integrations"],
  ["connections", "Connections"],
  ["deployments", "Deployments"],
  ["flows", "Flows"],
  ["runs", "Runs"],
  ["actions", "Actions"],
  ["data", "Data"],
  ["notifications", "Notifications"],
  ["status", "Status"],
];

// segments[0] → page module; `max` is how many path segments the page takes.
/** @type {Record<string, PageSpec>} */
const PAGES = {
  settings: { module: "./page-settings.js", nav: "settings", title: "Settings", max: 2 },
  customers: { module: "./page-customers.js", nav: "customers", title: "Customers", max: 1 },
  users: { module: "./page-customers.js", nav: "customers", title: "Customers", max: 1 },
  customer: { module: "./page-customer.js", nav: "customers", title: "Customer", max: 2 },
  integrations: { module: "./page-integrations.js", nav: "integrations", title: "Integrations", max: 2 },
  connections: { module: "./page-connections.js", nav: "connections", title: "Connections", max: 1 },
  deployments: { module: "./page-deployments.js", nav: "deployments", title: "Deployments", max: 2 },
  flows: { module: "./page-flows.js", nav: "flows", title: "Flows", max: 1 },
  flow: { module: "./page-flow.js", nav: "flows", title: "Flow", max: 2 },
  runs: { module: "./page-runs.js", nav: "runs", title: "Runs", max: 1 },
  run: { module: "./page-run.js", nav: "runs", title: "Run", max: 2 },
  actions: { module: "./page-actions.js", nav: "actions", title: "Actions", max: 1 },
  action: { module: "./page-action.js", nav: "actions", title: "Action", max: 2 },
  data: { module: "./page-data.js", nav: "data", title: "Data", max: 1 },
  "data-source": { module: "./page-data-source.js", nav: "data", title: "Data source", max: 2 },
  "field-mapping": { module: "./page-field-mapping.js", nav: "data", title: "Field mapping", max: 2 },
  notifications: { module: "./page-notifications.js", nav: "notifications", title: "Notifications", max: 1 },
  endpoint: { module: "./page-endpoint.js", nav: "notifications", title: "Endpoint", max: 2 },
  status: { module: "./page-status.js", nav: "status", title: "Status", max: 1 },
};

const root = /** @type {HTMLElement} */ (document.getElementById("app"));
/**
 * @type {{
 *   main: HTMLElement, workspaceName: HTMLElement, links: Map<string, HTMLAnchorElement>,
 *   menu: HTMLButtonElement, menuLabel: HTMLElement, setMenu: (open: boolean) => void,
 * } | null}
 */
let shell = null;
/** @type {PageContext | null} the page being shown */
let current = null;

/** @returns {PageContext} */
function makeContext() {
  const controller = new AbortController();
  /** @type {Set<ReturnType<typeof setTimeout>>} */
  const timers = new Set();
  /** @type {(() => void)[]} */
  const leaves = [];
  /** @type {PageContext} */
  const ctx = {
    signal: controller.signal,
    get alive() {
      return !controller.signal.aborted;
    },
    after(ms, fn) {
      const id = setTimeout(() => {
        timers.delete(id);
        if (ctx.alive) fn();
      }, ms);
      timers.add(id);
      return () => {
        clearTimeout(id);
        timers.delete(id);
      };
    },
    every(ms, fn) {
      let stopped = false;
      let cancel = () => {};
      const tick = async () => {
        if (stopped || !ctx.alive) return;
        try {
          await fn();
        } catch (err) {
          if (!isAbort(err)) console.warn("refresh failed", err);
        }
        if (!stopped && ctx.alive) cancel = ctx.after(ms, tick);
      };
      cancel = ctx.after(ms, tick);
      return () => {
        stopped = true;
        cancel();
      };
    },
    onLeave(fn) {
      leaves.push(fn);
    },
    navigate(hash) {
      location.hash = hash;
    },
    leave() {
      controller.abort();
      for (const id of timers) clearTimeout(id);
      timers.clear();
      for (const fn of leaves.splice(0)) {
        try {
          fn();
        } catch (err) {
          console.warn(err);
        }
      }
    },
  };
  return ctx;
}

function leavePage() {
  if (current) current.leave();
  current = null;
}

// --- sign-in ------------------------------------------------------------------------------

/**
 * @param {string | null} message
 * @param {boolean} [isError] show the message as an error (else as a notice)
 * @param {boolean} [busy] signing in with a one-time code: no form
 */
function showSignIn(message, isError = true, busy = false) {
  leavePage();
  shell = null;
  document.title = "Sign in — Tether";
  const token = h("textarea", {
    id: "signin-token",
    "data-testid": "signin-token",
    rows: 4,
    class: "code",
    spellcheck: "false",
    autocomplete: "off",
    required: true,
    placeholder: "eyJhbGciOi…",
  });
  const problem = errorBox(null, { "data-testid": "signin-error" });
  const submit = h("button", { type: "submit", id: "signin-submit", "data-testid": "signin-submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin-form",
      novalidate: true,
      onsubmit: action({ button: submit, problem }, () => {
        const value = token.value.trim().replace(/^Bearer\s+/i, "");
        if (!value) throw new InputError("Paste an admin token first.", token);
        session.set(value);
        if (!location.hash || location.hash === "#" || location.hash === "#/") {
          history.replaceState(null, "", `${location.pathname}${location.search}#/settings`);
        }
        startShell();
      }),
    },
    field("Admin token", token),
    h("div", { class: "actions" }, submit),
  );
  if (message && isError) showError(problem, message);
  mount(
    root,
    h(
      "main",
      { class: "signin", id: "main" },
      h(
        "section",
        { class: "card signin-card" },
        h("h1", {}, h("span", { class: "brand-mark", "aria-hidden": "true" }), "Tether console"),
        h(
          "p",
          {},
          "Sign in with the one-time console link that ",
          h("code", {}, "make run"),
          " prints when it starts (it opens this page signed in, once). Or paste an admin token, e.g. from ",
          h("code", {}, ".venv/bin/tether token --workspace ws_… --admin"),
          ".",
        ),
        message && !isError ? h("p", { class: "notice", role: "status" }, message) : null,
        busy ? loading("Signing in…") : null,
        problem,
        busy ? null : form,
      ),
    ),
  );
  if (!busy) token.focus();
}

/**
 * Trade a one-time code from the URL (#code=…) for a session token.
 * @param {string} code
 */
async function exchangeCode(code) {
  // The code must not stay in the URL or the history, whatever happens next.
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  showSignIn(null, false, true);
  try {
    /** @type {ConsoleSession} */
    const reply = await post("/console/session", { code }, { auth: false });
    session.set(reply.token);
    history.replaceState(null, "", `${location.pathname}${location.search}#/settings`);
    startShell();
  } catch (err) {
    showSignIn(`This console link did not work: ${err instanceof Error ? err.message : err}`, true);
  }
}

function codeFromHash() {
  const hash = location.hash.replace(/^#\/?/, "");
  if (!/(^|[&?])code=/.test(hash)) return null;
  const params = new URLSearchParams(hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : hash);
  return params.get("code");
}

// --- shell ----------------------------------------------------------------------------------

function signOut() {
  session.clear();
  showSignIn("You are signed out.", false);
}

function startShell() {
  const workspaceName = h("span", { class: "workspace-name", "data-testid": "workspace-name", title: "Workspace" }, "…");
  /** @type {Map<string, HTMLAnchorElement>} */
  const links = new Map();
  const nav = h(
    "nav",
    { class: "main-nav", id: "main-nav", "aria-label": "Main" },
    h(
      "ul",
      {},
      NAV.map(([key, label]) => {
        const link = h("a", { href: `#/${key}`, "data-testid": `nav-${key}` }, label);
        links.set(key, link);
        return h("li", {}, link);
      }),
    ),
  );
  const main = h("main", { id: "main", class: "content", tabindex: "-1" });
  // On a phone the navigation folds behind a menu button that names the current page.
  const menuLabel = h("span", { class: "menu-current" });
  const menu = h(
    "button",
    { type: "button", class: "secondary menu-toggle", "data-testid": "nav-toggle", "aria-controls": "main-nav", "aria-expanded": "false" },
    h("span", { class: "menu-icon", "aria-hidden": "true" }),
    h("span", { class: "visually-hidden" }, "Menu: "),
    menuLabel,
  );
  /** @param {boolean} open */
  const setMenu = (open) => {
    header.classList.toggle("nav-open", open);
    menu.setAttribute("aria-expanded", open ? "true" : "false");
  };
  menu.addEventListener("click", () => setMenu(menu.getAttribute("aria-expanded") !== "true"));
  const header = h(
    "header",
    {
      class: "topbar",
      onkeydown: (event) => {
        if (event.key === "Escape" && header.classList.contains("nav-open")) {
          setMenu(false);
          menu.focus();
        }
      },
    },
    h(
      "div",
      { class: "brand-block" },
      h("a", { href: "#/settings", class: "brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "Tether"),
      workspaceName,
    ),
    menu,
    nav,
    h("button", { type: "button", id: "signout", "data-testid": "signout", class: "secondary signout", onclick: signOut }, "Sign out"),
  );
  mount(root, header, main);
  shell = { main, workspaceName, links, menu, menuLabel, setMenu };
  loadWorkspaceName();
  route();
}

async function loadWorkspaceName() {
  try {
    /** @type {Workspace} */
    const ws = await get("/workspace");
    if (shell) shell.workspaceName.textContent = ws.name;
  } catch (err) {
    if (shell && err instanceof Error && !(err instanceof ApiError && err.status === 401)) {
      shell.workspaceName.textContent = "workspace unavailable";
      shell.workspaceName.title = err.message;
    }
  }
}

// page-settings announces a renamed workspace.
document.addEventListener("tether:workspace", (event) => {
  const ws = /** @type {CustomEvent<Workspace | null>} */ (event).detail;
  if (shell && ws?.name) shell.workspaceName.textContent = ws.name;
});

// --- router ---------------------------------------------------------------------------------

function parseHash() {
  let path = location.hash.replace(/^#\/?/, "");
  let query = "";
  const q = path.indexOf("?");
  if (q >= 0) {
    query = path.slice(q + 1);
    path = path.slice(0, q);
  }
  const segments = path.split("/").filter((part) => part !== "").map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
  return { segments, query: new URLSearchParams(query) };
}

/**
 * The page a path names, and its params (without the query).
 * @param {string[]} segments
 * @returns {{page: PageSpec, params: Omit<PageParams, "query">} | null}
 */
function resolve(segments) {
  const [first, ...rest] = segments;
  if ((first === "customers" || first === "users") && rest.length) return { page: PAGES.customer, params: { id: rest.join("/") } };
  if (first === "flows" && rest.length) return { page: PAGES.flow, params: { id: rest[0] } };
  const page = PAGES[first];
  if (!page || segments.length > page.max) return null;
  return { page, params: { id: rest[0], tab: rest[0], base: first } };
}

let navigations = 0;

async function route() {
  if (!shell) return;
  const { segments, query } = parseHash();
  if (!segments.length) {
    history.replaceState(null, "", `${location.pathname}${location.search}#/settings`);
    segments.push("settings");
  }
  leavePage();
  const ctx = makeContext();
  current = ctx;
  navigations += 1;
  const target = resolve(segments);
  const container = h("div", { class: "page" });
  mount(shell.main, container);
  for (const [key, link] of shell.links) {
    const on = target && target.page.nav === key;
    link.classList.toggle("active", Boolean(on));
    if (on) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  shell.setMenu(false);
  shell.menuLabel.textContent = NAV.find(([key]) => key === target?.page.nav)?.[1] ?? "Menu";
  if (navigations > 1) shell.main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
  if (!target) {
    document.title = "Not found — Tether";
    mount(container, h("h1", {}, "Page not found"), errorBox(`There is no console page at #/${segments.join("/")}.`), h("p", {}, h("a", { href: "#/settings" }, "Go to settings")));
    return;
  }
  document.title = `${target.page.title} — Tether`;
  mount(container, loading());
  try {
    /** @type {PageModule} */
    const module = await import(target.page.module);
    if (!ctx.alive) return;
    await module.render(container, { ...target.params, query }, ctx);
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
    console.error(err);
    mount(container, h("h1", {}, target.page.title), errorBox(err));
  }
}

window.addEventListener("hashchange", () => {
  const code = codeFromHash();
  if (code) {
    exchangeCode(code);
    return;
  }
  if (!session.get()) {
    showSignIn(null, false);
    return;
  }
  if (!shell) startShell();
  else route();
});

onUnauthorized((err) => {
  showSignIn(`You were signed out: ${err.message}. Sign in again.`, true);
});

function boot() {
  const code = codeFromHash();
  if (code) exchangeCode(code);
  else if (session.get()) startShell();
  else showSignIn(null, false);
}

boot();
