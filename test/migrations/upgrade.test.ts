import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import * as OTPAuth from 'otpauth'
import { createKeyring, generateKey, UserEngine } from '../../src/index.js'
import { MIGRATIONS } from '../../src/store/postgres/schema/manifest.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { SQL_ADAPTERS, type TestDb } from '../support/adapters.js'

const K1 = generateKey()
const K2 = generateKey()
const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: K1 } })
const hashing = { memoryCost: 1024, timeCost: 1, parallelism: 1 }
const older = MIGRATIONS.map((m) => m.version).filter((v) => v < LATEST_SCHEMA_VERSION)

// Data written through the engine at every older schema version survives the upgrade to the latest and
// works there: reads, password and TOTP checks, recovery codes, audit and outbox sequences.
for (const adapter of SQL_ADAPTERS) {
  describe(`upgrade through the engine on ${adapter.name}`, { skip: await adapter.skip() }, () => {
    const dbs: TestDb[] = []
    after(async () => {
      await Promise.all(dbs.map((db) => db.drop()))
    })

    for (const version of older) {
      test(`written at version ${version}, used at ${LATEST_SCHEMA_VERSION}`, async () => {
        const db = await adapter.database(version)
        dbs.push(db)

        const old = await db.store({ requireLatestSchema: false })
        const oldEngine = new UserEngine({ store: old, keyring, passwordHashing: hashing })
        const tenant = await oldEngine.createTenant('Upgrade')
        const ann = await oldEngine.registerUser(tenant.id, {
          email: 'Ann@Example.com',
          password: 'correct horse battery',
          profile: { displayName: 'Ann', age: 41 },
        })
        const { uri } = await oldEngine.enrollTotp(tenant.id, ann.id)
        const { codes } = await oldEngine.generateRecoveryCodes(tenant.id, ann.id)
        const bob = await oldEngine.registerUser(tenant.id, { email: 'bob@example.com' })
        await oldEngine.disableUser(tenant.id, bob.id, { actorId: 'adm_1', requestId: 'req-old' })
        // This code on the older schema: audit without request context columns, searches without indexes.
        const oldAudit = (await old.listAudit(tenant.id)).items
        assert.ok(oldAudit.every((a) => a.userAgent === null && a.ip === null))
        assert.deepEqual(
          (await oldEngine.listUsers(tenant.id, { emailPrefix: 'an' })).items.map((u) => u.id),
          [ann.id],
        )
        // As code before 0009 wrote factors: the key id only inside the sealed secret.
        await old.driver.query(
          `UPDATE user_engine_records SET payload = payload - 'keyId' WHERE record_type = 'factor'`,
          [],
        )
        const migrated = await old.migrate()
        assert.equal(migrated.fromVersion, version)
        assert.equal(migrated.toVersion, LATEST_SCHEMA_VERSION)
        await old.close()

        const store = await db.store()
        try {
          assert.equal((await store.readiness()).ready, true)
          const engine = new UserEngine({ store, keyring, passwordHashing: hashing })
          assert.equal((await engine.findUserByEmail(tenant.id, 'ann@example.com'))?.id, ann.id)
          assert.deepEqual((await engine.getProfile(tenant.id, ann.id)).attributes, {
            displayName: 'Ann',
            age: 41,
          })
          assert.equal((await engine.getUser(tenant.id, bob.id)).status, 'disabled')
          assert.equal(
            await engine.verifyPassword(tenant.id, { email: 'ann@example.com' }, 'correct horse battery'),
            true,
          )
          const totp = OTPAuth.URI.parse(uri) as OTPAuth.TOTP
          assert.equal(await engine.verifyTotp(tenant.id, ann.id, totp.generate()), true)
          assert.equal(await engine.consumeRecoveryCode(tenant.id, ann.id, codes[0]!), true)
          assert.equal(await engine.consumeRecoveryCode(tenant.id, ann.id, codes[0]!), false)
          // The email stays unique after the upgrade (0002's index was built over the old rows).
          await assert.rejects(engine.registerUser(tenant.id, { email: 'ANN@example.com' }), {
            code: 'DUPLICATE_IDENTIFIER',
          })
          // Each user's events stay one gap-free sequence across the upgrade.
          const events = await store.outbox.listForAggregate(tenant.id, ann.id)
          assert.deepEqual(
            events.map((e) => e.sequence),
            events.map((_, i) => i + 1),
          )
          const audit = await store.listAudit(tenant.id, { userId: ann.id, limit: 500 })
          assert.ok(audit.items.length >= 5)
          // Reads and the audit trail over rows written before 0008 (its indexes were built over them).
          const found = await engine.listUsers(tenant.id, { emailPrefix: 'A', include: ['identifiers'] })
          assert.deepEqual(
            found.items.map((u) => [u.id, u.identifiers?.map((i) => i.value)]),
            [[ann.id, ['ann@example.com']]],
          )
          assert.equal(await engine.countUsers(tenant.id, { emailPrefix: 'bob' }), 1)
          assert.equal(
            (await engine.getUserDetails(tenant.id, ann.id)).identifiers[0]?.value,
            'ann@example.com',
          )
          const whole = (await store.listAudit(tenant.id, { limit: 500 })).items
          const paged: string[] = []
          for (let cursor: string | undefined, i = 0; i < 100; i++) {
            const page = await store.listAudit(tenant.id, { limit: 2, cursor })
            paged.push(...page.items.map((a) => a.id))
            if (page.nextCursor === null) break
            cursor = page.nextCursor
          }
          assert.deepEqual(
            paged,
            whole.map((a) => a.id),
          )
          await engine.enableUser(tenant.id, bob.id, { actorId: 'adm_1', requestId: 'req-new' })
          const enabled = (await store.listAudit(tenant.id, { userId: bob.id, limit: 500 })).items.at(-1)
          assert.deepEqual([enabled?.actorId, enabled?.requestId], ['adm_1', 'req-new'])

          // 0009 set every sealed factor's keyId from its secret; hashed ones name no key.
          assert.deepEqual((await store.diagnostics()).sealedByKeyId, { k1: 1 })
          // Sessions and tokens work on the upgraded database, and the old seed rotates to a new key.
          const carol = await engine.registerUser(tenant.id, {
            email: 'carol@example.com',
            password: 'correct horse battery',
          })
          const signIn = await engine.authenticate(tenant.id, {
            email: 'carol@example.com',
            password: 'correct horse battery',
          })
          assert.equal(signIn.status, 'signed_in')
          const token = signIn.status === 'signed_in' ? signIn.session.token.reveal() : ''
          assert.equal((await engine.validateSession(token)).userId, carol.id)
          const reset = await engine.requestPasswordReset(tenant.id, { email: 'carol@example.com' })
          await engine.resetPassword(reset!.token.reveal(), 'a brand new passphrase')
          await assert.rejects(engine.validateSession(token), { code: 'INVALID_TOKEN' })
          const rotated = new UserEngine({
            store,
            keyring: createKeyring({ currentKeyId: 'k2', keys: { k2: K2, k1: K1 } }),
          })
          assert.equal((await rotated.resealSeeds()).resealed, 1)
          assert.deepEqual((await store.diagnostics()).sealedByKeyId, { k2: 1 })
          const onlyK2 = new UserEngine({
            store,
            keyring: createKeyring({ currentKeyId: 'k2', keys: { k2: K2 } }),
          })
          assert.equal(
            await onlyK2.verifyTotp(tenant.id, ann.id, totp.generate({ timestamp: Date.now() + 30_000 })),
            true,
          )
        } finally {
          await store.close()
        }
      })
    }
  })
}
