// @ts-check
// The API replies the console reads, as JSDoc types: the camelCase wire form of the
// contracts in libs/common/contracts/ (only the fields the pages use are required reading,
// but each type lists what the API sends). Types only: modules take them with
// `/** @import { … } from "./api-types.js" */`, so the browser never loads this file.

/** @typedef {Record<string, unknown>} JsonObject A JSON object whose shape the console does not rely on. */

/**
 * One entry of an error's `details`: a field (or path) and what is wrong with it.
 * @typedef {object} ErrorDetail
 * @property {string} [field]
 * @property {string} [message]
 * @property {string} [path] upgrade conflicts name a `path` and a `reason`
 * @property {string} [reason]
 */

/**
 * A page of a list; `cursor` asks for the next one (null: this is the last).
 * @template T
 * @typedef {object} Page
 * @property {T[]} items
 * @property {string | null} [cursor]
 */

// --- identity --------------------------------------------------------------------------

/**
 * @typedef {object} TestCustomer
 * @property {string} id
 * @property {string | null} name
 * @property {JsonObject} fields
 */

/**
 * @typedef {object} WorkspaceSettings
 * @property {JsonObject | null} customerFieldsSchema
 * @property {TestCustomer | null} testCustomer
 * @property {string[] | null} allowedAlgorithms
 * @property {number} maxTokenLifetime seconds
 * @property {number} clockLeeway seconds
 * @property {number} secretGrace seconds the previous signing secret keeps working
 */

/**
 * @typedef {object} Workspace
 * @property {string} id
 * @property {string} key
 * @property {string} name
 * @property {WorkspaceSettings} settings
 * @property {{kid: string | null, alg: string, pem: string}[]} publicKeys
 * @property {string} createdAt
 * @property {string} updatedAt
 */

/**
 * @typedef {object} SecretRotated
 * @property {string} secret shown once
 * @property {string} previousSecretExpiresAt
 */

/**
 * @typedef {object} ConsoleSession
 * @property {string} token
 * @property {string} expiresAt
 */

/**
 * @typedef {object} FieldError
 * @property {string} field
 * @property {string} message
 */

/**
 * @typedef {object} Customer
 * @property {string} id
 * @property {string | null} name
 * @property {JsonObject} fields
 * @property {boolean} archived
 * @property {string | null} archivedAt
 * @property {string} createdAt
 * @property {string} updatedAt
 * @property {boolean | null} [fieldsValid] against the workspace's current fields schema
 * @property {FieldError[] | null} [fieldsErrors]
 */

/**
 * @typedef {object} TestCustomerToken
 * @property {string} token
 * @property {string} expiresAt
 * @property {Customer} customer
 */

// --- connections -----------------------------------------------------------------------

/**
 * An integration's auth spec: `type` picks the kind (oauth2, client_credentials, api_key,
 * basic); the rest depends on it.
 * @typedef {{type: string, clientId?: string | null, [key: string]: unknown}} AuthSpec
 */

/**
 * @typedef {object} Integration
 * @property {string} key
 * @property {string} name
 * @property {string | null} template
 * @property {AuthSpec} auth
 * @property {boolean} clientSecretSet the secret itself is write-only
 * @property {JsonObject | null} api
 * @property {JsonObject | null} test
 * @property {string} createdAt
 * @property {string} updatedAt
 */

/**
 * An app from the integration catalogue.
 * @typedef {object} Template
 * @property {string} key
 * @property {string} name
 * @property {string} authType
 */

/** @typedef {"connected" | "disconnected" | "error" | "archived"} ConnectionState */

/**
 * @typedef {object} Connection
 * @property {string} id
 * @property {string} customerId
 * @property {string} integrationKey
 * @property {string} name
 * @property {ConnectionState} state
 * @property {JsonObject | null} account
 * @property {string | null} expiresAt
 * @property {string | null} lastRefreshAt
 * @property {number} refreshAttempts
 * @property {string | null} lastError
 * @property {string | null} cooldownUntil
 * @property {string} createdAt
 * @property {string} updatedAt
 */

/**
 * @typedef {object} ConnectionTestResult
 * @property {boolean} ok
 * @property {number | null} status the app's HTTP status, when it answered
 * @property {string | null} error
 * @property {Connection} connection
 */

/**
 * @typedef {object} ConnectSession
 * @property {string} id
 * @property {string} url the Connect page to open for the customer
 * @property {string} expiresAt
 */

// --- deployments -----------------------------------------------------------------------

/** @typedef {"pending" | "running" | "succeeded" | "failed" | "cancelled"} StepStatus */
/** @typedef {StepStatus | "partial"} DeploymentStatus */

/**
 * @typedef {object} DeploymentStep
 * @property {string} id
 * @property {"subscribe" | "unsubscribe" | "data_source" | "flows"} kind
 * @property {string} elementKey
 * @property {StepStatus} status
 * @property {number} attempts
 * @property {string | null} error
 * @property {string} updatedAt
 */

/**
 * @typedef {object} Deployment
 * @property {string} id
 * @property {string} connectionId
 * @property {string} customerId
 * @property {string} integrationKey
 * @property {string} reason
 * @property {DeploymentStatus} status
 * @property {number} stepsTotal
 * @property {number} stepsDone
 * @property {DeploymentStep[]} steps
 * @property {string | null} supersededBy
 * @property {string} createdAt
 * @property {string | null} startedAt
 * @property {string | null} finishedAt
 */

/** @typedef {Page<Deployment> & {stepsTotal: number, stepsDone: number}} DeploymentPage */

// --- flows -----------------------------------------------------------------------------

/** @typedef {"universal" | "app" | "customer"} FlowLevel */

/**
 * What starts a flow: `type` is api, app-event, schedule or data-record-*.
 * @typedef {object} Trigger
 * @property {string} type
 * @property {string} [cron]
 * @property {string} [appEventTypeKey]
 * @property {string} [dataSourceKey]
 */

/**
 * @typedef {object} FlowNode
 * @property {string} type
 * @property {string | null} [name]
 * @property {JsonObject} [config]
 * @property {{to: string}[]} [links]
 */

/**
 * @typedef {object} FlowDefinition
 * @property {string} name
 * @property {Trigger} trigger
 * @property {Record<string, FlowNode>} nodes
 * @property {JsonObject | null} parameters a JSON Schema
 * @property {boolean} autoDeploy
 */

/**
 * @typedef {FlowDefinition & {
 *   id: string, key: string, level: FlowLevel, integrationKey: string | null,
 *   customerId: string | null, revision: number, archived: boolean,
 *   createdAt: string, updatedAt: string,
 * }} Flow
 */

/**
 * @typedef {object} FlowRevision
 * @property {number} revision
 * @property {FlowDefinition} definition
 * @property {string} createdAt
 */

/**
 * A flow deployed to one connection, with that customer's customisation (a JSON Merge Patch).
 * @typedef {object} FlowInstance
 * @property {string} id
 * @property {string} flowId
 * @property {string} connectionId
 * @property {string} customerId
 * @property {string} integrationKey
 * @property {number} baseRevision
 * @property {number} latestRevision
 * @property {boolean} outdated
 * @property {JsonObject} customization
 * @property {FlowDefinition} flow the effective flow: base revision + customisation
 * @property {JsonObject} parameterValues
 * @property {boolean} enabled
 * @property {boolean} archived
 * @property {string} createdAt
 * @property {string} updatedAt
 */

/** @typedef {"queued" | "running" | "completed" | "failed" | "stopped"} RunState */

/**
 * @typedef {object} RunError
 * @property {string} code
 * @property {string} message
 * @property {string | null} [node]
 * @property {unknown} [data]
 */

/**
 * One execution of a flow instance.
 * @typedef {object} FlowRun
 * @property {string} id
 * @property {string} flowInstanceId
 * @property {string} flowId
 * @property {number} revision
 * @property {string} connectionId
 * @property {string} customerId
 * @property {RunState} state
 * @property {{type: string, eventId?: string | null, tick?: string | null, rerunOf?: string | null, fromNode?: string | null}} trigger
 * @property {unknown} input
 * @property {string} createdAt
 * @property {string | null} startedAt
 * @property {string | null} endedAt
 * @property {RunError[]} errors
 * @property {Record<string, {state: string, runs: number, errors: RunError[]}>} nodes
 */

// --- data sources ----------------------------------------------------------------------

/**
 * A data source deployed to one connection.
 * @typedef {object} DataSourceInstance
 * @property {string} id
 * @property {string} connectionId
 * @property {string} customerId
 * @property {string} dataSourceKey
 * @property {"ready" | "failed" | "archived"} status
 * @property {JsonObject | null} fieldsSchema
 * @property {unknown} state
 * @property {string | null} lastError
 * @property {string} updatedAt
 */

export {};
