// @ts-check
// The data pages' API replies as JSDoc types: the camelCase wire form of
// libs/common/contracts/data_records.py, field_mappings.py and the data-source parts of
// instances.py. Types only: the pages take them with `/** @import { … } from "./data-types.js" */`,
// so the browser never loads this file.

/** @typedef {"idle" | "queued" | "running" | "held" | "failed"} SyncState */

/**
 * One pass of a sync over the collection.
 * @typedef {object} SyncPass
 * @property {string} id
 * @property {"incremental" | "full"} mode
 * @property {"running" | "completed" | "failed" | "held" | "discarded"} status
 * @property {string} startedAt
 * @property {string | null} endedAt
 * @property {number} pages
 * @property {number} records
 * @property {number} created
 * @property {number} updated
 * @property {number} deleted
 * @property {number | null} [wouldDelete] a held pass: the records it would delete
 * @property {number | null} [liveRecords] a held pass: the records stored before it
 * @property {string | null} error
 */

/**
 * A data source deployed to one connection.
 * @typedef {object} DataSourceInstance
 * @property {string} id
 * @property {string} connectionId
 * @property {string} customerId
 * @property {string} dataSourceKey
 * @property {"ready" | "failed" | "archived"} status
 * @property {{properties?: Record<string, {type?: string | string[], title?: string}>, required?: string[]} | null} fieldsSchema
 * @property {unknown} state
 * @property {string | null} lastError
 * @property {string} updatedAt
 * @property {SyncState | null} [syncState] with a sync spec
 * @property {SyncPass | null} [lastPass]
 */

/**
 * @typedef {object} SyncStatus
 * @property {string} id
 * @property {SyncState} syncState
 * @property {SyncPass | null} lastPass
 */

/**
 * A data source definition (only what the pages read).
 * @typedef {object} DataSource
 * @property {string} key
 * @property {string} integrationKey
 * @property {string} name
 * @property {{intervalMinutes: number, mode: "incremental" | "full", massDeleteThreshold: number} | null} [sync]
 * @property {number} revision
 */

/**
 * A record as the app gave it.
 * @typedef {object} DataRecord
 * @property {string} id
 * @property {unknown} data
 * @property {string | null} [updatedAt]
 */

/**
 * A record as the last sync stored it.
 * @typedef {object} SyncedRecord
 * @property {string} id
 * @property {unknown} data
 * @property {string | null} updatedAt
 * @property {string | null} deletedAt
 * @property {string} firstSeenAt
 * @property {string} lastModifiedAt
 */

/** @typedef {"universal" | "app" | "customer"} Level */

/**
 * A field mapping at its newest revision.
 * @typedef {object} FieldMapping
 * @property {string} key
 * @property {Level} level
 * @property {string | null} integrationKey
 * @property {string | null} customerId
 * @property {string} dataSourceKey
 * @property {string} name
 * @property {{properties?: Record<string, unknown>, required?: string[]}} appSchema
 * @property {Record<string, unknown>} importValue
 * @property {Record<string, unknown>} exportValue
 * @property {boolean} autoDeploy
 * @property {number} revision
 * @property {string} createdAt
 * @property {string} updatedAt
 */

/**
 * One field of the connection's data source.
 * @typedef {object} ExternalField
 * @property {string} name
 * @property {string | null} type
 * @property {string | null} [title]
 */

/**
 * One app field of an instance: what feeds it now and what may feed it.
 * @typedef {object} AppField
 * @property {string | null} type
 * @property {string | null} source the external field that feeds it (null: an expression, or nothing)
 * @property {unknown} value the effective importValue expression
 * @property {boolean} customized
 * @property {string[]} options external fields of a type that converts to it
 */

/**
 * @typedef {object} FieldMappingProblem
 * @property {string | null} appField
 * @property {string} externalField
 * @property {string} message
 */

/**
 * A field mapping on one connection.
 * @typedef {object} FieldMappingInstance
 * @property {string} id
 * @property {string} fieldMappingKey
 * @property {string} dataSourceKey
 * @property {string} connectionId
 * @property {string} customerId
 * @property {string} integrationKey
 * @property {number} baseRevision
 * @property {number} latestRevision
 * @property {boolean} outdated
 * @property {Record<string, unknown>} customization
 * @property {{properties?: Record<string, unknown>, required?: string[]}} appSchema
 * @property {Record<string, unknown>} importValue
 * @property {Record<string, unknown>} exportValue
 * @property {Record<string, AppField>} fields
 * @property {ExternalField[]} externalFields
 * @property {boolean} broken
 * @property {FieldMappingProblem[]} problems
 * @property {boolean} archived
 * @property {string} createdAt
 * @property {string} updatedAt
 */

export {};
