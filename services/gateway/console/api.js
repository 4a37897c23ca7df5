// @ts-check
// The console's only way to the server: the public REST API on the same origin.
/** @import { ErrorDetail } from "./api-types.js" */

const TOKEN_KEY = "tether.token";

/** The admin token lives in sessionStorage only (gone when the tab closes). */
export const session = {
  /** @returns {string | null} */
  get() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  /** @param {string} token */
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage unavailable: nothing to clear
    }
  },
};

/**
 * An error's `details` as the API sent them: a list naming fields (or paths), or an object
 * (a revision conflict sends `{currentRevision}`).
 * @typedef {ErrorDetail[] | Record<string, unknown> | null} ErrorDetails
 */

/** An API failure: status (0 = network), code, message and details as the API sent them. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {ErrorDetails} [details]
   */
  constructor(status, code, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    /** @type {ErrorDetails} */
    this.details = details ?? null;
  }
}

/** @type {(error: ApiError) => void} */
let unauthorized = () => {};

/**
 * Register what happens when the API answers 401 to an authenticated call.
 * @param {(error: ApiError) => void} handler
 */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** @typedef {Record<string, string | number | boolean | null | undefined>} Query */

/**
 * "?a=1&b=x" from an object, leaving out empty values.
 * @param {Query} [params]
 */
export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const enc = encodeURIComponent;

/**
 * @typedef {object} CallOptions
 * @property {unknown} [body] sent as JSON
 * @property {Query} [query]
 * @property {Record<string, string>} [headers]
 * @property {boolean} [auth] send the session's token (default true)
 * @property {AbortSignal} [signal]
 */

/**
 * Call the API: JSON in, JSON out. Throws ApiError on failure.
 *
 * The reply's type `T` is what the caller declares for it (an `@type` on the variable it is
 * assigned to): a type from api-types.js, the API's contract, trusted and not checked here.
 * @template [T=unknown]
 * @param {string} method
 * @param {string} path
 * @param {CallOptions} [options]
 * @returns {Promise<T>}
 */
export async function api(method, path, options = {}) {
  const { body, query, headers = {}, auth = true, signal } = options;
  /** @type {Record<string, string>} */
  const sent = { Accept: "application/json", ...headers };
  /** @type {RequestInit} */
  const init = { method, headers: sent, credentials: "same-origin", cache: "no-store", signal };
  if (auth) {
    const token = session.get();
    if (token) sent.Authorization = `Bearer ${token}`;
  }
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path + qs(query), init);
  } catch (err) {
    if (isAbort(err)) throw err;
    const why = err instanceof Error && err.message ? err.message : "network error";
    throw new ApiError(0, "network_error", `Could not reach the gateway (${why})`);
  }
  const text = await response.text();
  /** @type {unknown} */
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const wire = envelopeError(data);
    const error = new ApiError(
      response.status,
      wire?.code || `http_${response.status}`,
      wire?.message || `The gateway answered ${response.status} ${response.statusText}`.trim(),
      wire?.details,
    );
    if (response.status === 401 && auth) {
      session.clear();
      unauthorized(error);
    }
    throw error;
  }
  return /** @type {T} */ (data);
}

/**
 * The `error` of an error envelope `{"error": {"code", "message", "details"}}`, if the
 * body is one.
 * @param {unknown} data
 * @returns {{code?: string, message?: string, details?: ErrorDetails} | null}
 */
function envelopeError(data) {
  if (!data || typeof data !== "object" || !("error" in data)) return null;
  return data.error && typeof data.error === "object" ? data.error : null;
}

/**
 * @template [T=unknown]
 * @param {string} path
 * @param {CallOptions} [options]
 * @returns {Promise<T>}
 */
export const get = (path, options) => api("GET", path, options);

/**
 * @template [T=unknown]
 * @param {string} path
 * @param {unknown} [body] `{}` when left out
 * @param {CallOptions} [options]
 * @returns {Promise<T>}
 */
export const post = (path, body, options = {}) => api("POST", path, { ...options, body: body ?? {} });

/**
 * @template [T=unknown]
 * @param {string} path
 * @param {unknown} body
 * @param {CallOptions} [options]
 * @returns {Promise<T>}
 */
export const patch = (path, body, options = {}) => api("PATCH", path, { ...options, body });

/**
 * @template [T=unknown]
 * @param {string} path
 * @param {unknown} body
 * @param {CallOptions} [options]
 * @returns {Promise<T>}
 */
export const put = (path, body, options = {}) => api("PUT", path, { ...options, body });

/**
 * @template [T=unknown]
 * @param {string} path
 * @param {CallOptions} [options]
 * @returns {Promise<T>}
 */
export const del = (path, options) => api("DELETE", path, options);

/**
 * Whether an error is only the page being left mid-request.
 * @param {unknown} err
 */
export function isAbort(err) {
  return typeof err === "object" && err !== null && "name" in err && err.name === "AbortError";
}
