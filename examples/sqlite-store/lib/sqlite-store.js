// @ts-check
// A user-engine store on SQLite (sql.js), written from docs/provider-guide.md and docs/store-contract.md.
// Units of work reuse the package's kit (runUnitOfWork + BufferedUnitOfWork): this file supplies the committed
// reads (a RowSource) and applies a CommitPlan in one SQLite transaction.
import {
  assertId,
  ConflictError,
  countSealedByKeyId,
  DIAGNOSTIC_COUNT_KEYS,
  decodeIdCursor,
  decodeValueCursor,
  ErrorCode,
  encodeCursor,
  encodeValueCursor,
  LATEST_SCHEMA_VERSION,
  NotFoundError,
  prefixUpperBound,
  recordCodec,
  runUnitOfWork,
  SchemaError,
  UserEngineError,
  ValidationError,
} from 'user-engine'
import {
  assertIdentifierLookup,
  countUsersQuery,
  listAuditQuery,
  listSealedFactorsQuery,
  listTenantsQuery,
  listUsersQuery,
  purgeExpiredQuery,
} from './checks.js'
import { SanitizedSqliteError, SqliteDatabase, storeError, uniqueViolation } from './database.js'
import { SqliteOutbox } from './outbox.js'
import { HISTORY_TABLE, MIGRATIONS } from './schema.js'
import { SqliteThrottle } from './throttle.js'

/**
 * @typedef {import('./database.js').Row} Row
 * @typedef {import('./database.js').SqlValue} SqlValue
 * @typedef {import('user-engine').StoredRow} StoredRow
 * @typedef {import('user-engine').CommitPlan} CommitPlan
 * @typedef {import('user-engine').WriteOp} WriteOp
 */

/** @param {Row} r @returns {StoredRow} */
function toStoredRow(r) {
  return {
    type: /** @type {import('user-engine').RecordType} */ (r.type),
    id: String(r.id),
    userId: r.user_id === null ? null : String(r.user_id),
    version: Number(r.version),
    payload: JSON.parse(String(r.payload)),
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
  }
}

/** The identifiers a listed user carries: `[{ id, kind, value, verified }]` from the JSON the page query built. */
function listedIdentifiers(/** @type {SqlValue} */ json) {
  /** @type {Array<{ id: string, kind: import('user-engine').IdentifierKind, value: string, verified: unknown }>} */
  const items = JSON.parse(String(json ?? '[]'))
  return items.map((i) => ({
    id: i.id,
    kind: i.kind,
    value: i.value,
    verified: i.verified === true || i.verified === 1,
  }))
}

// One query per page reads the page's identifiers too: a correlated subquery per listed user, by the user index.
const IDENTIFIERS_OF_U = `(SELECT json_group_array(json_object('id', i.id, 'kind', i.ident_kind, 'value', i.ident_value,
    'verified', json_extract(i.payload, '$.verified')) ORDER BY i.id)
  FROM ue_records i WHERE i.tenant_id = u.tenant_id AND i.user_id = u.id AND i.type = 'identifier') AS identifiers`

const RECORD_PLURAL = /** @type {const} */ ({
  tenant: 'tenants',
  user: 'users',
  identifier: 'identifiers',
  profile: 'profiles',
  factor: 'factors',
  session: 'sessions',
  token: 'tokens',
})

/**
 * @typedef {object} SqliteStoreOptions
 * @property {SqliteDatabase} [database] open over this database (another store's, a restarted process's);
 *   default a new, empty database in memory
 */

/** @typedef {import('user-engine').UserEngineStore} UserEngineStore */

/** @implements {UserEngineStore} */
export class SqliteUserEngineStore {
  kind = 'sqlite'
  /**
   * Neither guarantee: both are about several store instances over one database in separate processes, and a
   * sql.js database is in the memory of one process, which no other process can open. concurrentInstances:
   * no second process can migrate, commit or count throttle failures in it. isolatedClaims: no relay in a
   * second process can claim from it. (Stores over one database inside this process do keep every rule: each
   * method's SQL runs synchronously, in one transaction, on SQLite's single writer.)
   */
  capabilities = Object.freeze({ concurrentInstances: false, isolatedClaims: false })

  #schemaVersion = 0
  #closed = false

  /** @param {SqliteDatabase} database */
  constructor(database) {
    this.database = database
    database.users++
    this.outbox = new SqliteOutbox(database, () => this.#assertUsable(), database.wakes)
    this.throttle = new SqliteThrottle(database, () => this.#assertUsable())
  }

  /**
   * Opens a store, refusing a database whose schema history this code cannot work with: a version newer than
   * it knows (SCHEMA_NEWER_THAN_CODE) or an applied version recorded differently (SCHEMA_DRIFT).
   * @param {SqliteStoreOptions} [options]
   */
  static async open(options = {}) {
    const database = options.database ?? (await SqliteDatabase.create())
    if (database.closed) throw new UserEngineError(ErrorCode.STORE_CLOSED, 'the SQLite database is closed')
    const store = new SqliteUserEngineStore(database)
    try {
      store.#checkHistory()
    } catch (error) {
      await store.close()
      throw error
    }
    return store
  }

  /** The applied versions, or none when the history table does not exist yet. */
  #history() {
    const exists = this.database.get(
      "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'ue_schema_versions'",
    )
    if (!exists) return []
    return this.database.all('SELECT version, name, checksum FROM ue_schema_versions ORDER BY version')
  }

  #checkHistory() {
    const history = this.#history()
    for (const row of history) {
      const version = Number(row.version)
      const known = MIGRATIONS[version - 1]
      if (!known) {
        throw new SchemaError(
          ErrorCode.SCHEMA_NEWER_THAN_CODE,
          `the database has schema version ${version}; this code knows up to ${LATEST_SCHEMA_VERSION}`,
          { details: { schemaVersion: version, latestVersion: LATEST_SCHEMA_VERSION } },
        )
      }
      if (row.name !== known.name || row.checksum !== known.checksum) {
        throw new SchemaError(
          ErrorCode.SCHEMA_DRIFT,
          `schema version ${version} was recorded differently from this code's migration`,
          { details: { schemaVersion: version } },
        )
      }
    }
    this.#schemaVersion = history.length === 0 ? 0 : Number(history[history.length - 1]?.version)
  }

  async readiness() {
    this.#assertOpen()
    this.#checkHistory()
    const ready = this.#schemaVersion === LATEST_SCHEMA_VERSION
    return {
      ready,
      schemaVersion: this.#schemaVersion,
      latestVersion: LATEST_SCHEMA_VERSION,
      reason: ready ? null : ErrorCode.SCHEMA_NOT_READY,
    }
  }

  /** Applies the missing versions in order, each with its history row in one transaction. */
  async migrate() {
    this.#assertOpen()
    const db = this.database
    db.exec(HISTORY_TABLE)
    this.#checkHistory()
    const fromVersion = this.#schemaVersion
    /** @type {import('user-engine').AppliedMigration[]} */
    const applied = []
    for (const m of MIGRATIONS.filter((x) => x.version > fromVersion)) {
      const started = performance.now()
      try {
        db.atomically(() => {
          db.exec(m.sql)
          db.run(
            'INSERT INTO ue_schema_versions (version, name, checksum, applied_at, execution_ms) VALUES (?, ?, ?, ?, ?)',
            [
              m.version,
              m.name,
              m.checksum,
              new Date().toISOString(),
              Math.round(performance.now() - started),
            ],
          )
        })
      } catch (error) {
        throw new UserEngineError(ErrorCode.MIGRATION_FAILED, `schema version ${m.version} failed to apply`, {
          details: { schemaVersion: m.version },
          cause: new SanitizedSqliteError(
            String(/** @type {Error} */ (error)?.message).split(':')[0] ?? '',
            null,
          ),
        })
      }
      this.#schemaVersion = m.version
      applied.push({ version: m.version, name: m.name, executionMs: performance.now() - started })
    }
    return { fromVersion, toVersion: this.#schemaVersion, applied, lockWaitMs: 0 }
  }

  /**
   * @template T
   * @param {string} tenantId
   * @param {(tx: import('user-engine').UnitOfWork) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async transaction(tenantId, fn) {
    assertId(tenantId, 'tenantId')
    if (typeof fn !== 'function')
      throw new ValidationError('fn must be a function', { details: { field: 'fn' } })
    this.#assertUsable()
    return runUnitOfWork({
      tenantId,
      reads: this.#rowSource(tenantId),
      work: fn,
      commit: (plan) => this.#commit(plan),
    })
  }

  /** @param {string} tenantId @returns {import('user-engine').RowSource} */
  #rowSource(tenantId) {
    const db = this.database
    return {
      readRow: async (type, id) => {
        this.#assertUsable()
        const r = db.get('SELECT * FROM ue_records WHERE tenant_id = ? AND type = ? AND id = ?', [
          tenantId,
          type,
          id,
        ])
        return r ? toStoredRow(r) : null
      },
      readIdentifierRow: async (kind, value) => {
        this.#assertUsable()
        const r = db.get(
          "SELECT * FROM ue_records WHERE tenant_id = ? AND type = 'identifier' AND ident_kind = ? AND ident_value = ?",
          [tenantId, kind, value],
        )
        return r ? toStoredRow(r) : null
      },
      readUserRows: async (userId, type) => {
        this.#assertUsable()
        return db
          .all('SELECT * FROM ue_records WHERE tenant_id = ? AND user_id = ? AND type = ? ORDER BY id', [
            tenantId,
            userId,
            type,
          ])
          .map(toStoredRow)
      },
    }
  }

  /**
   * Applies a plan in one SQLite transaction: every write with its precondition, then the tenant check (rule 7),
   * the audit records and the outbox events. Any failure rolls all of it back.
   * @param {CommitPlan} plan
   */
  #commit(plan) {
    this.#assertUsable()
    const db = this.database
    try {
      db.atomically(() => {
        for (const w of plan.writes) this.#write(plan, w)
        const tenant = db.get(
          "SELECT 1 AS found FROM ue_records WHERE tenant_id = ? AND type = 'tenant' AND id = ?",
          [plan.tenantId, plan.tenantId],
        )
        if (!tenant) {
          throw new NotFoundError(`tenant ${plan.tenantId} not found`, {
            details: { tenantId: plan.tenantId },
          })
        }
        for (const a of plan.audit) {
          db.run(
            `INSERT INTO ue_audit (tenant_id, id, occurred_at, action, user_id, actor_id, request_id, client_ip,
               user_agent, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [
              plan.tenantId,
              a.id,
              plan.now,
              a.action,
              a.userId,
              a.actorId,
              a.requestId,
              a.ip,
              a.userAgent,
              JSON.stringify(a.data),
            ],
          )
        }
        const due = Date.parse(plan.now)
        for (const e of plan.events) {
          db.run(
            `INSERT INTO ue_outbox (tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload,
               occurred_at, status, attempts, available_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)`,
            [
              plan.tenantId,
              e.id,
              e.aggregateType,
              e.aggregateId,
              e.sequence,
              e.position,
              e.type,
              JSON.stringify(e.payload),
              plan.now,
              due,
            ],
          )
        }
      })
    } catch (error) {
      throw storeError(error, 'commit')
    }
    if (plan.events.length > 0) {
      const wakes = [...this.database.wakes]
      setImmediate(() => {
        for (const wake of wakes) wake()
      })
    }
  }

  /**
   * One write with its precondition: insert (must not exist), update or delete (at the expected version).
   * The primary key and the unique identifier index make the database refuse what the plan may not do.
   * @param {CommitPlan} plan @param {WriteOp} w
   */
  #write(plan, w) {
    const db = this.database
    const details = { recordType: w.type, recordId: w.id }
    const versionConflict = () =>
      new ConflictError(ErrorCode.VERSION_CONFLICT, `${w.type} ${w.id} is not at the expected version`, {
        details: { ...details, expectedVersion: w.op === 'insert' ? 0 : w.expectedVersion },
      })
    if (w.op === 'delete') {
      const n = db.run('DELETE FROM ue_records WHERE tenant_id = ? AND type = ? AND id = ? AND version = ?', [
        plan.tenantId,
        w.type,
        w.id,
        w.expectedVersion,
      ])
      if (n !== 1) throw versionConflict()
      return
    }
    const p = w.payload
    const identifier = w.type === 'identifier'
    const columns = {
      payload: JSON.stringify(p),
      ident_kind: identifier ? String(p.kind) : null,
      ident_value: identifier ? String(p.value) : null,
      expires_at: w.type === 'session' || w.type === 'token' ? String(p.expiresAt) : null,
      key_id: w.type === 'factor' && typeof p.keyId === 'string' ? p.keyId : null,
    }
    try {
      if (w.op === 'insert') {
        db.run(
          `INSERT INTO ue_records (tenant_id, type, id, user_id, version, payload, created_at, updated_at,
             ident_kind, ident_value, expires_at, key_id) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)`,
          [
            plan.tenantId,
            w.type,
            w.id,
            w.userId,
            columns.payload,
            plan.now,
            plan.now,
            columns.ident_kind,
            columns.ident_value,
            columns.expires_at,
            columns.key_id,
          ],
        )
      } else {
        const n = db.run(
          `UPDATE ue_records SET version = version + 1, user_id = ?, payload = ?, updated_at = ?, ident_kind = ?,
             ident_value = ?, expires_at = ?, key_id = ?
           WHERE tenant_id = ? AND type = ? AND id = ? AND version = ?`,
          [
            w.userId,
            columns.payload,
            plan.now,
            columns.ident_kind,
            columns.ident_value,
            columns.expires_at,
            columns.key_id,
            plan.tenantId,
            w.type,
            w.id,
            w.expectedVersion,
          ],
        )
        if (n !== 1) throw versionConflict()
      }
    } catch (error) {
      const unique = uniqueViolation(error)
      if (unique === null) throw error
      if (unique.includes('ident_value')) {
        // The value is not named: it is personal data. The kind is.
        throw new ConflictError(
          ErrorCode.DUPLICATE_IDENTIFIER,
          `identifier ${String(p.kind)} is already taken in tenant ${plan.tenantId}`,
          {
            details: { kind: String(p.kind) },
            cause: new SanitizedSqliteError('UNIQUE', 'ue_identifier_value_key'),
          },
        )
      }
      throw new ConflictError(ErrorCode.ALREADY_EXISTS, `${w.type} ${w.id} already exists`, {
        details,
        cause: new SanitizedSqliteError('UNIQUE', 'ue_records primary key'),
      })
    }
  }

  /** @param {string} tenantId */
  async getTenant(tenantId) {
    assertId(tenantId, 'tenantId')
    this.#assertUsable()
    const r = this.database.get(
      "SELECT * FROM ue_records WHERE tenant_id = ? AND type = 'tenant' AND id = ?",
      [tenantId, tenantId],
    )
    return r ? recordCodec.tenant.fromRow(tenantId, toStoredRow(r)) : null
  }

  /** @param {import('user-engine').ListTenantsQuery} [query] */
  async listTenants(query) {
    const { limit, cursor } = listTenantsQuery(query)
    const after = cursor === undefined ? '' : decodeIdCursor(cursor)
    this.#assertUsable()
    const rows = this.database.all(
      "SELECT * FROM ue_records WHERE type = 'tenant' AND id > ? ORDER BY id LIMIT ?",
      [after, limit + 1],
    )
    const items = rows.slice(0, limit).map((r) => recordCodec.tenant.fromRow(String(r.id), toStoredRow(r)))
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null }
  }

  /** @param {string} tenantId @param {string} userId */
  async getUser(tenantId, userId) {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    this.#assertUsable()
    const r = this.database.get("SELECT * FROM ue_records WHERE tenant_id = ? AND type = 'user' AND id = ?", [
      tenantId,
      userId,
    ])
    return r ? recordCodec.user.fromRow(tenantId, toStoredRow(r)) : null
  }

  /** @param {string} tenantId @param {import('user-engine').IdentifierKind} kind @param {string} value */
  async getIdentifier(tenantId, kind, value) {
    assertId(tenantId, 'tenantId')
    assertIdentifierLookup(kind, value)
    this.#assertUsable()
    const r = this.database.get(
      "SELECT * FROM ue_records WHERE tenant_id = ? AND type = 'identifier' AND ident_kind = ? AND ident_value = ?",
      [tenantId, kind, value],
    )
    return r ? recordCodec.identifier.fromRow(tenantId, toStoredRow(r)) : null
  }

  /** @param {string} tenantId @param {import('user-engine').IdentifierKind} kind @param {string} value */
  async findUserByIdentifier(tenantId, kind, value) {
    assertId(tenantId, 'tenantId')
    assertIdentifierLookup(kind, value)
    this.#assertUsable()
    const r = this.database.get(
      `SELECT u.* FROM ue_records i
         JOIN ue_records u ON u.tenant_id = i.tenant_id AND u.type = 'user' AND u.id = i.user_id
        WHERE i.tenant_id = ? AND i.type = 'identifier' AND i.ident_kind = ? AND i.ident_value = ?`,
      [tenantId, kind, value],
    )
    return r ? recordCodec.user.fromRow(tenantId, toStoredRow(r)) : null
  }

  /** @param {string} tenantId @param {import('user-engine').ListUsersQuery} [query] */
  async listUsers(tenantId, query) {
    assertId(tenantId, 'tenantId')
    const { limit, cursor, status, identifierPrefix, includeIdentifiers } = listUsersQuery(query)
    const include = includeIdentifiers ? `, ${IDENTIFIERS_OF_U}` : ''
    /** @param {Row} r @returns {import('user-engine').ListedUser} */
    const listed = (r) => {
      const user = recordCodec.user.fromRow(tenantId, toStoredRow(r))
      return includeIdentifiers ? { ...user, identifiers: listedIdentifiers(r.identifiers) } : user
    }
    if (identifierPrefix) {
      const after = cursor === undefined ? null : decodeValueCursor(cursor)
      this.#assertUsable()
      const range = this.#prefixRange(identifierPrefix.prefix)
      // Walks the identifier index from the cursor in code-point order and stops after a page: each user is
      // listed at its least matching value (no lesser matching value of the same user exists).
      const rows = this.database.all(
        `SELECT u.*, m.ident_value AS matched${include}
           FROM ue_records m
           JOIN ue_records u ON u.tenant_id = m.tenant_id AND u.type = 'user' AND u.id = m.user_id
          WHERE m.tenant_id = ? AND m.type = 'identifier' AND m.ident_kind = ?
            AND m.ident_value >= ? ${range.upper} AND m.ident_value > ?
            ${status === undefined ? '' : "AND json_extract(u.payload, '$.status') = ?"}
            AND NOT EXISTS (
              SELECT 1 FROM ue_records l
               WHERE l.tenant_id = m.tenant_id AND l.user_id = m.user_id AND l.type = 'identifier'
                 AND l.ident_kind = m.ident_kind AND l.ident_value >= ? AND l.ident_value < m.ident_value)
          ORDER BY m.ident_value
          LIMIT ?`,
        [
          tenantId,
          identifierPrefix.kind,
          identifierPrefix.prefix,
          ...range.params,
          after ?? '',
          ...(status === undefined ? [] : [status]),
          identifierPrefix.prefix,
          limit + 1,
        ],
      )
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return {
        items: page.map(listed),
        nextCursor: rows.length > limit && last ? encodeValueCursor(String(last.matched)) : null,
      }
    }
    const after = cursor === undefined ? '' : decodeIdCursor(cursor)
    this.#assertUsable()
    const rows = this.database.all(
      `SELECT u.*${include} FROM ue_records u
        WHERE u.tenant_id = ? AND u.type = 'user' AND u.id > ?
          ${status === undefined ? '' : "AND json_extract(u.payload, '$.status') = ?"}
        ORDER BY u.id LIMIT ?`,
      [tenantId, after, ...(status === undefined ? [] : [status]), limit + 1],
    )
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return {
      items: page.map(listed),
      nextCursor: rows.length > limit && last ? encodeCursor(String(last.id)) : null,
    }
  }

  /** `[prefix, upper)`: the upper bound clause and its parameter (none when no string bounds the prefix). */
  #prefixRange(/** @type {string} */ prefix) {
    const upper = prefixUpperBound(prefix)
    return upper === null
      ? { upper: '', params: [] }
      : { upper: 'AND m.ident_value < ?', params: /** @type {SqlValue[]} */ ([upper]) }
  }

  /** @param {string} tenantId @param {import('user-engine').CountUsersQuery} [query] */
  async countUsers(tenantId, query) {
    assertId(tenantId, 'tenantId')
    const { status, identifierPrefix } = countUsersQuery(query)
    this.#assertUsable()
    const statusClause = status === undefined ? '' : "AND json_extract(u.payload, '$.status') = ?"
    const statusParams = status === undefined ? [] : [status]
    if (identifierPrefix) {
      const range = this.#prefixRange(identifierPrefix.prefix)
      const r = this.database.get(
        `SELECT COUNT(DISTINCT m.user_id) AS n FROM ue_records m
           JOIN ue_records u ON u.tenant_id = m.tenant_id AND u.type = 'user' AND u.id = m.user_id
          WHERE m.tenant_id = ? AND m.type = 'identifier' AND m.ident_kind = ? AND m.ident_value >= ? ${range.upper}
            ${statusClause}`,
        [tenantId, identifierPrefix.kind, identifierPrefix.prefix, ...range.params, ...statusParams],
      )
      return Number(r?.n ?? 0)
    }
    const r = this.database.get(
      `SELECT COUNT(*) AS n FROM ue_records u WHERE u.tenant_id = ? AND u.type = 'user' ${statusClause}`,
      [tenantId, ...statusParams],
    )
    return Number(r?.n ?? 0)
  }

  /** @param {string} tenantId @param {import('user-engine').ListAuditQuery} [query] */
  async listAudit(tenantId, query) {
    assertId(tenantId, 'tenantId')
    const { limit, cursor, userId } = listAuditQuery(query)
    const after = cursor === undefined ? null : decodeIdCursor(cursor)
    this.#assertUsable()
    let from = 0
    if (after !== null) {
      // The cursor names an audit record of this tenant; its position is the hidden insertion order.
      const at = this.database.get('SELECT seq FROM ue_audit WHERE tenant_id = ? AND id = ?', [
        tenantId,
        after,
      ])
      if (!at) throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
      from = Number(at.seq)
    }
    const rows = this.database.all(
      `SELECT * FROM ue_audit WHERE tenant_id = ? AND seq > ? ${userId === undefined ? '' : 'AND user_id = ?'}
        ORDER BY seq LIMIT ?`,
      [tenantId, from, ...(userId === undefined ? [] : [userId]), limit + 1],
    )
    /** @type {import('user-engine').AuditRecord[]} */
    const items = rows.slice(0, limit).map((r) => ({
      id: String(r.id),
      tenantId,
      occurredAt: String(r.occurred_at),
      action: String(r.action),
      userId: r.user_id === null ? null : String(r.user_id),
      actorId: r.actor_id === null ? null : String(r.actor_id),
      requestId: r.request_id === null ? null : String(r.request_id),
      ip: r.client_ip === null ? null : String(r.client_ip),
      userAgent: r.user_agent === null ? null : String(r.user_agent),
      data: JSON.parse(String(r.data)),
    }))
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null }
  }

  /** The session and its tenant's status, joined by primary key in one statement. @param {string} tenantId @param {string} sessionId */
  async findSession(tenantId, sessionId) {
    assertId(tenantId, 'tenantId')
    assertId(sessionId, 'sessionId')
    this.#assertUsable()
    const r = this.database.get(
      `SELECT s.*, json_extract(t.payload, '$.status') AS tenant_status FROM ue_records s
         JOIN ue_records t ON t.tenant_id = s.tenant_id AND t.type = 'tenant' AND t.id = s.tenant_id
        WHERE s.tenant_id = ? AND s.type = 'session' AND s.id = ?`,
      [tenantId, sessionId],
    )
    if (!r) return null
    return {
      session: recordCodec.session.fromRow(tenantId, toStoredRow(r)),
      tenantStatus: /** @type {import('user-engine').TenantStatus} */ (r.tenant_status),
    }
  }

  /**
   * One statement: the oldest expired sessions and tokens (expiresAt, type, id), at most `limit`, deleted with
   * the expiry re-checked on the row deleted. Text comparison of toISOString() instants is time order.
   * @param {string} tenantId @param {import('user-engine').PurgeExpiredQuery} query
   */
  async purgeExpired(tenantId, query) {
    assertId(tenantId, 'tenantId')
    const { before, limit } = purgeExpiredQuery(query)
    this.#assertUsable()
    const deleted = this.database.all(
      `DELETE FROM ue_records WHERE tenant_id = ? AND type IN ('session', 'token') AND expires_at < ?
          AND rowid IN (SELECT rowid FROM ue_records WHERE tenant_id = ? AND type IN ('session', 'token')
                          AND expires_at < ? ORDER BY expires_at, type, id LIMIT ?)
        RETURNING type`,
      [tenantId, before, tenantId, before, limit],
    )
    return {
      sessions: deleted.filter((r) => r.type === 'session').length,
      tokens: deleted.filter((r) => r.type === 'token').length,
    }
  }

  /** @param {string} tenantId @param {import('user-engine').ListSealedFactorsQuery} query */
  async listSealedFactors(tenantId, query) {
    assertId(tenantId, 'tenantId')
    const { excludeKeyId, after, limit } = listSealedFactorsQuery(query)
    this.#assertUsable()
    return this.database
      .all(
        `SELECT * FROM ue_records WHERE tenant_id = ? AND type = 'factor' AND key_id IS NOT NULL AND key_id <> ?
            AND id > ? ORDER BY id LIMIT ?`,
        [tenantId, excludeKeyId, after, limit],
      )
      .map((r) => recordCodec.factor.fromRow(tenantId, toStoredRow(r)))
  }

  /** Counts only, by name: no value, no user id. */
  async diagnostics() {
    this.#assertOpen()
    /** @type {Record<string, number>} */
    const counts = Object.fromEntries(DIAGNOSTIC_COUNT_KEYS.map((k) => [k, 0]))
    /** @type {Array<{ keyId: unknown, n: number }>} */
    let sealed = []
    if (this.#schemaVersion === LATEST_SCHEMA_VERSION) {
      for (const r of this.database.all('SELECT type, COUNT(*) AS n FROM ue_records GROUP BY type')) {
        const name = RECORD_PLURAL[/** @type {keyof typeof RECORD_PLURAL} */ (r.type)]
        if (name) counts[name] = Number(r.n)
      }
      counts.audit_records = Number(this.database.get('SELECT COUNT(*) AS n FROM ue_audit')?.n ?? 0)
      for (const r of this.database.all('SELECT status, COUNT(*) AS n FROM ue_outbox GROUP BY status')) {
        counts[`outbox_${r.status}`] = Number(r.n)
      }
      sealed = this.database
        .all(
          "SELECT key_id, COUNT(*) AS n FROM ue_records WHERE type = 'factor' AND key_id IS NOT NULL GROUP BY key_id",
        )
        .map((r) => ({ keyId: r.key_id, n: Number(r.n) }))
    }
    return {
      store: this.kind,
      schemaVersion: this.#schemaVersion,
      latestVersion: LATEST_SCHEMA_VERSION,
      counts,
      sealedByKeyId: countSealedByKeyId(sealed),
    }
  }

  /** Closes this store; the database closes with the last store open over it. A second close is a no-op. */
  async close() {
    if (this.#closed) return
    this.#closed = true
    this.database.users--
    if (this.database.users === 0) this.database.close()
  }

  #assertOpen() {
    if (this.#closed || this.database.closed)
      throw new UserEngineError(ErrorCode.STORE_CLOSED, 'the store is closed')
  }

  #assertUsable() {
    this.#assertOpen()
    // Another store over this database may have migrated it since: look again before refusing.
    if (this.#schemaVersion !== LATEST_SCHEMA_VERSION) this.#checkHistory()
    if (this.#schemaVersion !== LATEST_SCHEMA_VERSION) {
      throw new SchemaError(ErrorCode.SCHEMA_NOT_READY, 'the store schema is not migrated; run migrate()', {
        details: { schemaVersion: this.#schemaVersion, latestVersion: LATEST_SCHEMA_VERSION },
      })
    }
  }
}
