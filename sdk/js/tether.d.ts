// Types of Tether's browser SDK (`tether.js`). `tsc -p sdk/js` checks the module against them.

/** The SDK's version. */
export declare const VERSION: string;

/** An access token, or a function that returns one (called again when it expires or is refused). */
export type TokenSource = string | (() => string | Promise<string>);

/** How to reach Tether. */
export interface TetherOptions {
  /** Your customer's access token (a JWT your backend signs), or a function returning one. */
  token: TokenSource;
  /** The gateway's URL, such as `https://tether.example.com`. */
  baseUrl: string;
  /** The `fetch` to use (the global one by default). */
  fetch?: typeof fetch;
}

/** Per-call options. */
export interface RequestOptions {
  /** Cancels the call; it then rejects with a `TetherError` whose code is `aborted`. */
  signal?: AbortSignal;
}

/** Options of a call that may start work in an app or a run. */
export interface MutationOptions extends RequestOptions {
  /** The same key within 24 h returns the first result instead of doing the work again. */
  idempotencyKey?: string;
}

/** One page of a list; `nextCursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Paging parameters every list takes. */
export interface PageParams {
  /** Items per page (1–1000, 100 by default). */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

/** An error's details as the API sent them: a list naming fields, or an object. */
export type ErrorDetails =
  | Array<{ field?: string; message?: string; [key: string]: unknown }>
  | Record<string, unknown>
  | null;

/**
 * Codes the SDK itself gives (the API's own codes, such as `not_found`, `invalid_input` or
 * `token_expired`, come as the API sent them).
 */
export type ClientErrorCode =
  | "network_error"
  | "aborted"
  | "invalid_response"
  | "token_error"
  | "popup_blocked"
  | "popup_closed"
  | "connect_failed"
  | "unsupported_environment";

/** Every failure of the SDK: an API error (its envelope's fields) or one of `ClientErrorCode`. */
export declare class TetherError extends Error {
  constructor(code: string, message: string, init?: TetherErrorInit);
  readonly name: "TetherError";
  /** A stable code to branch on (`ClientErrorCode` or the API's `error.code`). */
  readonly code: ClientErrorCode | (string & {});
  /** The HTTP status; 0 when no answer came (network, abort, popup). */
  readonly status: number;
  /** The API's request id (quote it to support), when an answer came. */
  readonly requestId: string | null;
  /** The API's `error.details` (which fields were wrong, …), or the SDK's own. */
  readonly details: ErrorDetails;
}

/** The optional parts of a `TetherError`. */
export interface TetherErrorInit {
  status?: number;
  requestId?: string | null;
  details?: ErrorDetails;
  cause?: unknown;
}

/** The message the Connect UI's last page posts to the window that opened it. */
export interface ConnectionMessage {
  type: "tether:connection";
  status: "connected" | "error";
  connectionId: string | null;
  /** The failure's code (`access_denied`, `token_exchange_failed`, …) when `status` is `error`. */
  error?: string;
  /** A sentence saying what happened. */
  message?: string;
}

/**
 * Tell whether a `message` event is the Connect UI's result, posted from `origin` (and from
 * `source`, when given). Anything else — another origin, another window, another shape — is not.
 */
export declare function isConnectionMessage(
  event: MessageEvent,
  origin: string,
  source?: MessageEventSource | null,
): event is MessageEvent<ConnectionMessage>;

export type ConnectionState = "connected" | "disconnected" | "error" | "archived";

/** One customer's authorised account in one app (never its credentials). */
export interface Connection {
  id: string;
  customerId: string;
  integrationKey: string;
  name: string;
  state: ConnectionState;
  account: Record<string, unknown> | null;
  expiresAt: string | null;
  lastRefreshAt: string | null;
  refreshAttempts: number;
  lastError: string | null;
  cooldownUntil: string | null;
  createdAt: string;
  updatedAt: string;
}

/** An app configured in the workspace (never its client secret). */
export interface Integration {
  key: string;
  name: string;
  template: string | null;
  auth: { type: string; [key: string]: unknown };
  [key: string]: unknown;
}

export type RunState = "queued" | "running" | "completed" | "failed" | "stopped";

/** One execution of a flow instance. */
export interface FlowRun {
  id: string;
  flowInstanceId: string;
  flowId: string;
  revision: number;
  connectionId: string;
  customerId: string;
  state: RunState;
  trigger: { type: string; [key: string]: unknown };
  input: unknown;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  errors: Array<{ code: string; message: string; [key: string]: unknown }>;
  nodes: Record<string, { state: string; [key: string]: unknown }>;
  [key: string]: unknown;
}

/** A flow deployed to one connection. */
export interface FlowInstance {
  id: string;
  flowId: string;
  connectionId: string;
  customerId: string;
  integrationKey: string;
  enabled: boolean;
  outdated: boolean;
  parameterValues: Record<string, unknown>;
  [key: string]: unknown;
}

/** What an action run gave back. */
export interface ActionRunResult {
  output: unknown;
  actionRunId: string;
  /** True when an earlier run with the same idempotency key answered. */
  replayed: boolean;
}

/** What `connect()` needs. */
export interface ConnectOptions {
  /** The integration to connect an account of. */
  integrationKey: string;
  /** Reconnect this connection instead of creating or matching one. */
  connectionId?: string;
  /** Admin tokens only: the customer the connection is for. */
  customerId?: string;
  /** Create a new connection even when the customer has one to this integration. */
  allowMultiple?: boolean;
  /** Cancels: the popup closes and the promise rejects with code `aborted`. */
  signal?: AbortSignal;
  /** The popup's size in CSS pixels (500 x 700 by default). */
  popup?: { width?: number; height?: number };
}

export interface ConnectionListParams extends PageParams {
  integrationKey?: string;
  state?: ConnectionState;
  /** Admin tokens only. */
  customerId?: string;
}

export interface FlowInstanceListParams extends PageParams {
  connectionId?: string;
  flowId?: string;
  customerId?: string;
}

export interface FlowRunListParams extends PageParams {
  flowInstanceId?: string;
  flowId?: string;
  connectionId?: string;
  customerId?: string;
  state?: RunState;
  from?: string | Date;
  to?: string | Date;
}

export interface ActionRunParams extends MutationOptions {
  connectionId: string;
  input?: unknown;
}

export interface ConnectionsApi {
  list(params?: ConnectionListParams, options?: RequestOptions): Promise<Page<Connection>>;
  /** Every connection, page after page. */
  iterate(params?: ConnectionListParams, options?: RequestOptions): AsyncGenerator<Connection, void, undefined>;
  get(id: string, options?: RequestOptions): Promise<Connection>;
  /** Archive (disconnect) a connection. */
  archive(id: string, options?: RequestOptions): Promise<Connection>;
}

export interface IntegrationsApi {
  list(options?: RequestOptions): Promise<Page<Integration>>;
}

export interface FlowInstancesApi {
  list(params?: FlowInstanceListParams, options?: RequestOptions): Promise<Page<FlowInstance>>;
  iterate(params?: FlowInstanceListParams, options?: RequestOptions): AsyncGenerator<FlowInstance, void, undefined>;
  get(id: string, options?: RequestOptions): Promise<FlowInstance>;
  /** Queue a run with this input; resolves with the queued run. */
  run(id: string, input?: unknown, options?: MutationOptions): Promise<FlowRun>;
}

export interface FlowRunsApi {
  list(params?: FlowRunListParams, options?: RequestOptions): Promise<Page<FlowRun>>;
  iterate(params?: FlowRunListParams, options?: RequestOptions): AsyncGenerator<FlowRun, void, undefined>;
  get(id: string, options?: RequestOptions): Promise<FlowRun>;
}

export interface ActionsApi {
  /** Run an action through one of the customer's connections. */
  run(key: string, params: ActionRunParams): Promise<ActionRunResult>;
}

/** What `request()` takes. */
export interface RawRequest extends MutationOptions {
  /** Query parameters; `undefined` and `null` values are left out. */
  query?: Record<string, string | number | boolean | Date | null | undefined>;
  /** A JSON body. */
  body?: unknown;
}

/** A client of Tether's API for one customer (or an admin), from a browser. */
export declare class Tether {
  constructor(options: TetherOptions);
  /** The gateway's URL, without a trailing slash. */
  readonly baseUrl: string;
  readonly connections: ConnectionsApi;
  readonly integrations: IntegrationsApi;
  readonly flowInstances: FlowInstancesApi;
  readonly flowRuns: FlowRunsApi;
  readonly actions: ActionsApi;
  /**
   * Open the Connect UI in a popup and resolve with the connection once the customer is done.
   * Call it from a click handler: the popup opens before anything is awaited.
   */
  connect(options: ConnectOptions): Promise<Connection>;
  /** Call any API route (`path` starts with `/`); resolves with the parsed JSON answer. */
  request<T = unknown>(method: string, path: string, options?: RawRequest): Promise<T>;
}
