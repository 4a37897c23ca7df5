// @ts-check
/**
 * Tether's browser SDK: one dependency-free ES module (served at `GET /sdk/tether.js`).
 *
 *     import { Tether, TetherError } from "https://tether.example.com/sdk/tether.js";
 *     const tether = new Tether({ token: fetchTokenFromMyBackend, baseUrl: "https://tether.example.com" });
 *     button.onclick = async () => { const connection = await tether.connect({ integrationKey: "hubspot" }); };
 *
 * What it guarantees:
 * - Every failure is a `TetherError` with a stable `code`: the API's own (with its `status`,
 *   `requestId` and `details`), or `network_error`, `aborted`, `invalid_response`,
 *   `token_error`, `popup_blocked`, `popup_closed`, `connect_failed`.
 * - A token given as a function is asked for lazily, once for concurrent calls, again before
 *   a JWT expires, and again (once, then the call is repeated) when the API answers 401.
 * - `connect()` opens its popup before it awaits anything (popup blockers allow it inside a
 *   click), trusts only messages from the Connect UI's origin and popup window, and removes
 *   every listener and timer it added however it ends.
 */
/** @import * as T from "./tether.d.ts" */

export const VERSION = "0.1.0";

const MESSAGE_TYPE = "tether:connection";
/** Seconds before a JWT's `exp` at which a token function is asked for a fresh one. */
const EXPIRY_LEEWAY_SECONDS = 30;
/** How often `connect()` checks whether the customer closed the popup. */
const CLOSED_POLL_MS = 250;
/** Closed-popup checks in a row before `connect()` gives up (the result may still be in flight). */
const CLOSED_CHECKS = 2;

/** @implements {T.TetherError} */
export class TetherError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {T.TetherErrorInit} [init]
   */
  constructor(code, message, init = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    /** @type {"TetherError"} */
    this.name = "TetherError";
    this.code = code;
    this.status = init.status ?? 0;
    this.requestId = init.requestId ?? null;
    /** @type {T.ErrorDetails} */
    this.details = init.details ?? null;
  }
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * @param {MessageEvent} event
 * @param {string} origin
 * @param {MessageEventSource | null} [source]
 * @returns {event is MessageEvent<T.ConnectionMessage>}
 */
export function isConnectionMessage(event, origin, source) {
  if (event.origin !== origin) return false;
  if (source !== undefined && event.source !== source) return false;
  const data = event.data;
  return (
    isObject(data) &&
    data.type === MESSAGE_TYPE &&
    (data.status === "connected" || data.status === "error") &&
    (data.connectionId === null || typeof data.connectionId === "string")
  );
}

/** @param {string} baseUrl */
function normalizeBase(baseUrl) {
  let url;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`Tether: baseUrl must be an absolute URL, not ${JSON.stringify(baseUrl)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TypeError("Tether: baseUrl must be an http(s) URL");
  }
  return (url.origin + url.pathname).replace(/\/+$/, "");
}

/** @param {string} segment */
const enc = (segment) => encodeURIComponent(segment);

/**
 * Join the base URL, a path and the query parameters that have a value.
 * @param {string} base
 * @param {string} path
 * @param {T.RawRequest["query"]} [query]
 */
function buildUrl(base, path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    params.append(name, value instanceof Date ? value.toISOString() : String(value));
  }
  const search = params.toString();
  return base + path + (search ? `?${search}` : "");
}

/**
 * Read a JWT's `exp` (seconds since the epoch) without verifying it; null if there is none.
 * @param {string} token
 * @returns {number | null}
 */
function jwtExpiry(token) {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)));
    return isObject(claims) && typeof claims.exp === "number" ? claims.exp : null;
  } catch {
    return null;
  }
}

/** Hands out the access token: asks a token function lazily, once at a time, again when stale. */
class Tokens {
  /** @type {T.TokenSource} */
  #source;
  /** @type {string | null} */
  #current = null;
  /** @type {Promise<string> | null} */
  #pending = null;

  /** @param {T.TokenSource} source */
  constructor(source) {
    if (typeof source !== "string" && typeof source !== "function") {
      throw new TypeError("Tether: token must be a string or a function returning one");
    }
    this.#source = source;
  }

  /** Whether asking again could give another token. */
  get renewable() {
    return typeof this.#source === "function";
  }

  /** @returns {Promise<string>} */
  async get() {
    const source = this.#source;
    if (typeof source === "string") return source;
    const current = this.#current;
    if (current !== null && !expiresSoon(current)) return current;
    if (this.#pending === null) {
      this.#pending = ask(source).finally(() => {
        this.#pending = null;
      });
    }
    const token = await this.#pending;
    this.#current = token;
    return token;
  }

  /**
   * Forget `token` (the API refused it), unless a newer one already replaced it.
   * @param {string} token
   */
  refuse(token) {
    if (this.#current === token) this.#current = null;
  }
}

/** @param {string} token */
function expiresSoon(token) {
  const exp = jwtExpiry(token);
  return exp !== null && exp - EXPIRY_LEEWAY_SECONDS <= Date.now() / 1000;
}

/**
 * @param {() => string | Promise<string>} source
 * @returns {Promise<string>}
 */
async function ask(source) {
  let token;
  try {
    token = await source();
  } catch (cause) {
    throw new TetherError("token_error", "the token function failed", { cause });
  }
  if (typeof token !== "string" || token === "") {
    throw new TetherError("token_error", "the token function returned no token");
  }
  return token;
}

/**
 * @param {AbortSignal | undefined} signal
 * @returns {TetherError}
 */
function aborted(signal) {
  return new TetherError("aborted", "the call was cancelled", { cause: signal?.reason });
}

/**
 * Turn a failed answer into a `TetherError` (the API's envelope when it has one).
 * @param {Response} response
 * @returns {Promise<TetherError>}
 */
async function errorOf(response) {
  const headerId = response.headers.get("X-Request-Id");
  /** @type {unknown} */
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page, say; the status speaks for it
  }
  const error = isObject(body) && isObject(body.error) ? body.error : null;
  if (error === null) {
    return new TetherError(
      `http_${response.status}`,
      `the API answered ${response.status} ${response.statusText}`.trim(),
      { status: response.status, requestId: headerId },
    );
  }
  const details = /** @type {T.ErrorDetails} */ (
    Array.isArray(error.details) || isObject(error.details) ? error.details : null
  );
  return new TetherError(
    typeof error.code === "string" ? error.code : `http_${response.status}`,
    typeof error.message === "string" ? error.message : `the API answered ${response.status}`,
    {
      status: response.status,
      requestId: typeof error.requestId === "string" ? error.requestId : headerId,
      details,
    },
  );
}

/** @implements {T.Tether} */
export class Tether {
  /** @type {Tokens} */
  #tokens;
  /** @type {typeof fetch} */
  #fetch;

  /** @param {T.TetherOptions} options */
  constructor(options) {
    if (!isObject(options)) throw new TypeError("Tether: options {token, baseUrl} are required");
    this.baseUrl = normalizeBase(options.baseUrl);
    this.#tokens = new Tokens(options.token);
    const given = options.fetch;
    // The global fetch is looked up per call, and called unbound (it throws on another `this`).
    this.#fetch = given ?? ((input, init) => globalThis.fetch(input, init));

    /** @type {T.ConnectionsApi} */
    this.connections = {
      list: (params, options) => this.#page("/connections", params, options),
      iterate: (params, options) => this.#all("/connections", params, options),
      get: (id, options) => this.request("GET", `/connections/${enc(id)}`, options),
      archive: (id, options) => this.request("DELETE", `/connections/${enc(id)}`, options),
    };
    /** @type {T.IntegrationsApi} */
    this.integrations = {
      list: (options) => this.#page("/integrations", {}, options),
    };
    /** @type {T.FlowInstancesApi} */
    this.flowInstances = {
      list: (params, options) => this.#page("/flow-instances", params, options),
      iterate: (params, options) => this.#all("/flow-instances", params, options),
      get: (id, options) => this.request("GET", `/flow-instances/${enc(id)}`, options),
      run: (id, input, options) =>
        this.request("POST", `/flow-instances/${enc(id)}/run`, {
          ...options,
          body: { input: input ?? null },
        }),
    };
    /** @type {T.FlowRunsApi} */
    this.flowRuns = {
      list: (params, options) => this.#page("/flow-runs", params, options),
      iterate: (params, options) => this.#all("/flow-runs", params, options),
      get: (id, options) => this.request("GET", `/flow-runs/${enc(id)}`, options),
    };
    /** @type {T.ActionsApi} */
    this.actions = {
      run: (key, params) => {
        const { connectionId, input, ...options } = params;
        return this.request("POST", `/actions/${enc(key)}/run`, {
          ...options,
          body: { connectionId, input: input ?? {} },
        });
      },
    };
  }

  /**
   * @template [R=unknown]
   * @param {string} method
   * @param {string} path
   * @param {T.RawRequest} [options]
   * @returns {Promise<R>}
   */
  async request(method, path, options = {}) {
    if (!path.startsWith("/")) throw new TypeError("Tether: a path starts with /");
    const { signal, idempotencyKey, query, body } = options;
    const url = buildUrl(this.baseUrl, path, query);
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey !== undefined) headers["Idempotency-Key"] = idempotencyKey;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw aborted(signal);
      const token = await this.#tokens.get();
      /** @type {Response} */
      let response;
      try {
        response = await this.#fetch(url, {
          method,
          headers: { ...headers, Authorization: `Bearer ${token}` },
          body: payload,
          signal,
          credentials: "omit",
        });
      } catch (cause) {
        if (signal?.aborted) throw aborted(signal);
        throw new TetherError("network_error", `could not reach Tether at ${this.baseUrl}`, {
          cause,
        });
      }
      // A refused token was checked before anything ran: asking for a new one and calling
      // again is safe for every method.
      if (response.status === 401 && attempt === 1 && this.#tokens.renewable) {
        this.#tokens.refuse(token);
        continue;
      }
      if (!response.ok) throw await errorOf(response);
      if (response.status === 204) return /** @type {R} */ (undefined);
      try {
        return /** @type {R} */ (await response.json());
      } catch (cause) {
        if (signal?.aborted) throw aborted(signal);
        throw new TetherError("invalid_response", "the API's answer is not JSON", {
          status: response.status,
          requestId: response.headers.get("X-Request-Id"),
          cause,
        });
      }
    }
  }

  /**
   * @template I
   * @param {string} path
   * @param {T.PageParams} [params]
   * @param {T.RequestOptions} [options]
   * @returns {Promise<T.Page<I>>}
   */
  async #page(path, params = {}, options = {}) {
    /** @type {{items: I[], cursor?: string | null}} */
    const body = await this.request("GET", path, {
      signal: options.signal,
      query: /** @type {T.RawRequest["query"]} */ (params),
    });
    return { items: body.items, nextCursor: body.cursor ?? null };
  }

  /**
   * @template I
   * @param {string} path
   * @param {T.PageParams} [params]
   * @param {T.RequestOptions} [options]
   * @returns {AsyncGenerator<I, void, undefined>}
   */
  async *#all(path, params = {}, options = {}) {
    let cursor = params.cursor;
    do {
      /** @type {T.Page<I>} */
      const page = await this.#page(path, { ...params, cursor }, options);
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }

  /**
   * @param {T.ConnectOptions} options
   * @returns {Promise<T.Connection>}
   */
  async connect(options) {
    const { integrationKey, connectionId, customerId, allowMultiple, signal } = options;
    const opener = globalThis.window;
    if (opener === undefined || typeof opener.open !== "function") {
      throw new TetherError("unsupported_environment", "connect() needs a browser window");
    }
    if (signal?.aborted) throw aborted(signal);
    // Open before the first await: a popup opened inside a click handler is allowed.
    const popup = opener.open("", `tether-connect-${randomId()}`, popupFeatures(opener, options));
    if (popup === null) {
      throw new TetherError(
        "popup_blocked",
        "the browser blocked the Connect popup: call connect() from a click handler",
      );
    }
    showWaiting(popup);
    try {
      /** @type {{url: string}} */
      const session = await this.request("POST", "/connect-sessions", {
        signal,
        // The popup posts its result to this page's origin only (never to "*").
        body: { integrationKey, connectionId, customerId, allowMultiple, openerOrigin: pageOrigin(opener) },
      });
      const result = waitForResult(opener, popup, new URL(session.url).origin, signal);
      popup.location.href = session.url;
      const message = await result;
      if (message.status !== "connected" || message.connectionId === null) {
        throw new TetherError("connect_failed", message.message || "the account was not connected", {
          details: { error: message.error ?? null },
        });
      }
      return await this.request("GET", `/connections/${enc(message.connectionId)}`, { signal });
    } finally {
      if (!popup.closed) popup.close();
    }
  }
}

/**
 * The opening page's origin, told to the Connect UI so that its result is posted there only.
 * @param {Window} opener
 * @returns {string | undefined}
 */
function pageOrigin(opener) {
  const origin = opener.location?.origin;
  return typeof origin === "string" && /^https?:\/\//.test(origin) ? origin : undefined;
}

/** @returns {string} */
function randomId() {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Size the popup and center it over the opener.
 * @param {Window} opener
 * @param {T.ConnectOptions} options
 */
function popupFeatures(opener, options) {
  const width = options.popup?.width ?? 500;
  const height = options.popup?.height ?? 700;
  const left = Math.max(0, Math.round(opener.screenX + (opener.outerWidth - width) / 2));
  const top = Math.max(0, Math.round(opener.screenY + (opener.outerHeight - height) / 2));
  return `popup=yes,width=${width},height=${height},left=${left},top=${top}`;
}

/**
 * Say something in the blank popup while the session is created (it is ours until it navigates).
 * @param {Window} popup
 */
function showWaiting(popup) {
  try {
    popup.document.title = "Connecting…";
    const text = popup.document.createElement("p");
    text.textContent = "Connecting…";
    text.style.font = "15px system-ui, sans-serif";
    text.style.textAlign = "center";
    text.style.marginTop = "40vh";
    popup.document.body?.append(text);
  } catch {
    // some browsers hand back a window we may not touch: it still works without the text
  }
}

/**
 * Resolve with the Connect UI's result message from `popup`; reject if the popup closes first or
 * `signal` aborts. Every listener and timer is removed once it settles.
 * @param {Window} opener
 * @param {Window} popup
 * @param {string} origin
 * @param {AbortSignal | undefined} signal
 * @returns {Promise<T.ConnectionMessage>}
 */
function waitForResult(opener, popup, origin, signal) {
  return new Promise((resolve, reject) => {
    let closedChecks = 0;
    /** @param {MessageEvent} event */
    const onMessage = (event) => {
      if (!isConnectionMessage(event, origin, popup)) return;
      cleanup();
      resolve(event.data);
    };
    const onAbort = () => {
      cleanup();
      reject(aborted(signal));
    };
    const timer = setInterval(() => {
      // The result is posted just before the page closes itself: give it one more check.
      closedChecks = popup.closed ? closedChecks + 1 : 0;
      if (closedChecks < CLOSED_CHECKS) return;
      cleanup();
      reject(new TetherError("popup_closed", "the Connect popup was closed before connecting"));
    }, CLOSED_POLL_MS);
    const cleanup = () => {
      clearInterval(timer);
      opener.removeEventListener("message", onMessage);
      signal?.removeEventListener("abort", onAbort);
    };
    opener.addEventListener("message", onMessage);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
