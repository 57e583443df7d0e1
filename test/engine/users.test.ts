import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConflictError, NotFoundError, UserEngineError, ValidationError } from '../../src/domain/errors.js'
import { EVENT_TYPES } from '../../src/engine/index.js'
import { assertGapFreeOutbox, forEachFreshStore, rejectsWith, setup, snapshot } from './support.js'

await forEachFreshStore('engine use cases: tenants, users, profiles', (fresh) => {
  test('createTenant writes the tenant, an audit record and a tenant event', async () => {
    const h = setup({ store: await fresh() })
    const tenant = await h.engine.createTenant('Acme')
    assert.equal(tenant.name, 'Acme')
    assert.equal(tenant.status, 'active')
    assert.equal(tenant.version, 1)
    assert.deepEqual(await h.store.getTenant(tenant.id), tenant)
    const audit = (await h.store.listAudit(tenant.id)).items
    assert.deepEqual(
      audit.map((a) => a.action),
      ['tenant.created'],
    )
    const events = await h.store.outbox.listForAggregate(tenant.id, tenant.id)
    assert.deepEqual(
      events.map((e) => [e.type, e.aggregateType, e.sequence, e.position]),
      [['tenant.created', 'tenant', 1, 0]],
    )
    await rejectsWith(h.engine.createTenant(''), 'VALIDATION')
    await rejectsWith(h.engine.createTenant('x'.repeat(201)), 'VALIDATION')
  })

  test('registerUser creates user, email identifier, profile and password factor in one commit', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const user = await h.engine.registerUser(t, {
      email: '  Ann@Example.COM ',
      password: 'a long password',
      profile: { displayName: 'Ann', age: 40 },
    })
    assert.equal(user.status, 'active')
    assert.equal(user.version, 1)
    assert.equal(user.tenantId, t)
    assert.deepEqual(await h.engine.getUser(t, user.id), user)
    assert.deepEqual((await h.engine.findUserByEmail(t, 'ann@example.com'))?.id, user.id)
    assert.deepEqual((await h.engine.findUserByEmail(t, 'ANN@EXAMPLE.com'))?.id, user.id)
    assert.equal(await h.engine.findUserByEmail(t, 'bob@example.com'), null)
    assert.equal((await h.store.getIdentifier(t, 'email', 'ann@example.com'))?.userId, user.id)
    const profile = await h.engine.getProfile(t, user.id)
    assert.deepEqual(profile.attributes, { displayName: 'Ann', age: 40 })
    assert.equal(profile.version, 1)
    const factors = await h.engine.listFactors(t, user.id)
    assert.deepEqual(
      factors.map((f) => f.kind),
      ['password'],
    )
    assert.deepEqual(await assertGapFreeOutbox(h, t, user.id), [EVENT_TYPES.userRegistered])
    const audit = (await h.store.listAudit(t, { userId: user.id })).items
    assert.deepEqual(
      audit.map((a) => [a.action, a.data]),
      [['user.registered', { hasPassword: true }]],
    )

    const noPassword = await h.engine.registerUser(t, { email: 'bob@example.com' })
    assert.deepEqual(await h.engine.listFactors(t, noPassword.id), [])
    assert.deepEqual((await h.engine.getProfile(t, noPassword.id)).attributes, {})
  })

  test('duplicate email, in any letter case, is refused with DUPLICATE_IDENTIFIER and writes nothing', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    await h.engine.registerUser(t, { email: 'ann@example.com' })
    const before = await snapshot(h.store, t)
    for (const email of ['ann@example.com', 'Ann@Example.COM', ' ANN@EXAMPLE.COM ']) {
      const error = await rejectsWith(
        h.engine.registerUser(t, { email, password: 'password123' }),
        'DUPLICATE_IDENTIFIER',
      )
      assert.ok(error instanceof ConflictError)
      assert.doesNotMatch(error.message, /ann/i)
      // The same answer on every store: the kind only, never the record id of the rolled-back draft.
      assert.equal(error.message, 'this email is already taken in the tenant')
      assert.deepEqual(error.details, { kind: 'email' })
      assert.doesNotMatch(JSON.stringify(error), /idn_/)
    }
    assert.deepEqual(await snapshot(h.store, t), before)
  })

  test('two racing registrations of one email: exactly one succeeds', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const results = await Promise.allSettled([
      h.engine.registerUser(t, { email: 'race@example.com' }),
      h.engine.registerUser(t, { email: 'RACE@example.com' }),
    ])
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    const failed = results.find((r) => r.status === 'rejected')
    assert.equal((failed as PromiseRejectedResult).reason.code, 'DUPLICATE_IDENTIFIER')
    assert.equal(
      (failed as PromiseRejectedResult).reason.message,
      'this email is already taken in the tenant',
    )
    assert.equal((await h.store.diagnostics()).counts.users, 1)
  })

  test('tenants are isolated: same email in two tenants, users invisible across them', async () => {
    const h = setup({ store: await fresh() })
    const { id: a } = await h.engine.createTenant('A')
    const { id: b } = await h.engine.createTenant('B')
    const inA = await h.engine.registerUser(a, { email: 'ann@example.com', password: 'password-a' })
    const inB = await h.engine.registerUser(b, { email: 'ann@example.com', password: 'password-b' })
    assert.notEqual(inA.id, inB.id)
    assert.equal((await h.engine.findUserByEmail(a, 'ann@example.com'))?.id, inA.id)
    assert.equal((await h.engine.findUserByEmail(b, 'ann@example.com'))?.id, inB.id)
    await rejectsWith(h.engine.getUser(b, inA.id), 'NOT_FOUND')
    await rejectsWith(h.engine.getProfile(b, inA.id), 'NOT_FOUND')
    await rejectsWith(h.engine.updateProfile(b, inA.id, { x: 1 }), 'NOT_FOUND')
    await rejectsWith(h.engine.deleteUser(b, inA.id), 'NOT_FOUND')
    assert.equal(await h.engine.verifyPassword(b, { userId: inA.id }, 'password-a'), false)
    assert.equal(await h.engine.verifyPassword(b, { email: 'ann@example.com' }, 'password-a'), false)
    assert.equal(await h.engine.verifyPassword(a, { email: 'ann@example.com' }, 'password-a'), true)
    assert.deepEqual(
      (await h.engine.listUsers(a)).items.map((u) => u.id),
      [inA.id],
    )
    await h.engine.changeEmail(b, inB.id, 'other@example.com')
    assert.equal((await h.engine.findUserByEmail(a, 'ann@example.com'))?.id, inA.id)
  })

  test('unknown tenant is NOT_FOUND for every use case, and nothing is written', async () => {
    const h = setup({ store: await fresh() })
    const before = await snapshot(h.store)
    const t = 'ten_missing'
    const u = 'usr_missing'
    const calls: Array<() => Promise<unknown>> = [
      () => h.engine.registerUser(t, { email: 'a@example.com' }),
      () => h.engine.getUser(t, u),
      () => h.engine.findUserByEmail(t, 'a@example.com'),
      () => h.engine.listUsers(t),
      () => h.engine.getProfile(t, u),
      () => h.engine.updateProfile(t, u, {}),
      () => h.engine.changeEmail(t, u, 'a@example.com'),
      () => h.engine.setPassword(t, u, 'password123'),
      () => h.engine.verifyPassword(t, { email: 'a@example.com' }, 'password123'),
      () => h.engine.enrollTotp(t, u),
      () => h.engine.verifyTotp(t, u, '123456'),
      () => h.engine.generateRecoveryCodes(t, u),
      () => h.engine.consumeRecoveryCode(t, u, 'abcde-fghjk'),
      () => h.engine.listFactors(t, u),
      () => h.engine.removeFactor(t, u, 'fac_x'),
      () => h.engine.disableUser(t, u),
      () => h.engine.enableUser(t, u),
      () => h.engine.deleteUser(t, u),
    ]
    for (const call of calls) {
      const error = await rejectsWith(call(), 'NOT_FOUND')
      assert.ok(error instanceof NotFoundError)
    }
    assert.deepEqual(await snapshot(h.store), before)
  })

  test('invalid input fails with typed VALIDATION errors before anything is written', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const user = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'password123' })
    const u = user.id
    const before = await snapshot(h.store, t)
    const bad: Array<[string, () => Promise<unknown>]> = [
      ['tenant id', () => h.engine.getUser('bad id!', u)],
      ['user id', () => h.engine.getUser(t, '../etc')],
      ['email shape', () => h.engine.registerUser(t, { email: 'not-an-email' })],
      ['email type', () => h.engine.registerUser(t, { email: 42 as unknown as string })],
      ['input type', () => h.engine.registerUser(t, null as unknown as { email: string })],
      ['short password', () => h.engine.registerUser(t, { email: 'new@example.com', password: 'short' })],
      [
        'long password',
        () => h.engine.registerUser(t, { email: 'new@example.com', password: 'x'.repeat(257) }),
      ],
      [
        'profile key',
        () => h.engine.registerUser(t, { email: 'new@example.com', profile: { 'bad key': 1 } }),
      ],
      [
        'profile value',
        () => h.engine.registerUser(t, { email: 'new@example.com', profile: { a: {} as unknown as string } }),
      ],
      ['profile size', () => h.engine.updateProfile(t, u, { a: 'x'.repeat(2049) })],
      ['profile merged too large', () => h.engine.updateProfile(t, u, { a: 'x'.repeat(2048) })],
      ['expectedVersion', () => h.engine.updateProfile(t, u, {}, { expectedVersion: 0 })],
      ['mode', () => h.engine.updateProfile(t, u, {}, { mode: 'patch' as 'merge' })],
      ['new email', () => h.engine.changeEmail(t, u, 'a@@b')],
      ['set password', () => h.engine.setPassword(t, u, '1234567')],
      ['verify password type', () => h.engine.verifyPassword(t, { userId: u }, 7 as unknown as string)],
      ['verify subject', () => h.engine.verifyPassword(t, {} as { userId: string }, 'password123')],
      ['totp code type', () => h.engine.verifyTotp(t, u, 123456 as unknown as string)],
      ['totp code length', () => h.engine.verifyTotp(t, u, '1'.repeat(33))],
      ['recovery code', () => h.engine.consumeRecoveryCode(t, u, '')],
      ['factor id', () => h.engine.removeFactor(t, u, 'bad id')],
      ['list limit', () => h.engine.listUsers(t, { limit: 0 })],
      ['list status', () => h.engine.listUsers(t, { status: 'gone' as 'active' })],
      ['list cursor', () => h.engine.listUsers(t, { cursor: '!!' })],
      ['totp label', () => h.engine.enrollTotp(t, u, { label: '' })],
    ]
    // Fill the profile close to its byte limit so a merge can overflow it.
    for (let i = 0; i < 7; i++) await h.engine.updateProfile(t, u, { [`k${i}`]: 'x'.repeat(2048) })
    const filled = await snapshot(h.store, t)
    assert.notDeepEqual(filled, before)
    for (const [name, call] of bad) {
      const error = await rejectsWith(call(), 'VALIDATION').catch((e) => {
        throw new Error(`${name}: ${e.message}`)
      })
      assert.ok(error instanceof ValidationError, name)
      assert.ok(error instanceof UserEngineError, name)
    }
    assert.deepEqual(await snapshot(h.store, t), filled)
  })

  test('getProfile and updateProfile: merge, replace, expectedVersion', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com', profile: { a: 1 } })
    const p1 = await h.engine.getProfile(t, u)
    const p2 = await h.engine.updateProfile(t, u, { b: 'two' }, { expectedVersion: p1.version })
    assert.deepEqual(p2.attributes, { a: 1, b: 'two' })
    assert.equal(p2.version, 2)
    assert.equal(p2.createdAt, p1.createdAt)
    assert.deepEqual(await h.engine.getProfile(t, u), p2)
    const before = await snapshot(h.store, t)
    const stale = await rejectsWith(
      h.engine.updateProfile(t, u, { c: true }, { expectedVersion: 1 }),
      'VERSION_CONFLICT',
    )
    assert.ok(stale instanceof ConflictError)
    assert.deepEqual(await snapshot(h.store, t), before)
    const p3 = await h.engine.updateProfile(t, u, { c: null }, { mode: 'replace' })
    assert.deepEqual(p3.attributes, { c: null })
    assert.deepEqual(await assertGapFreeOutbox(h, t, u), [
      'user.registered',
      'user.profile_updated',
      'user.profile_updated',
    ])
  })

  test('concurrent profile updates without expectedVersion both land (retried on conflict)', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    await Promise.all([
      h.engine.updateProfile(t, u, { a: 1 }),
      h.engine.updateProfile(t, u, { b: 2 }),
      h.engine.updateProfile(t, u, { c: 3 }),
    ])
    assert.deepEqual((await h.engine.getProfile(t, u)).attributes, { a: 1, b: 2, c: 3 })
    await assertGapFreeOutbox(h, t, u)
  })

  test('changeEmail moves the identifier; the old email is free, a taken one is refused', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com' })
    const bob = await h.engine.registerUser(t, { email: 'bob@example.com' })
    const after = await h.engine.changeEmail(t, ann.id, 'Ann.New@Example.com')
    assert.equal(after.version, 2)
    assert.deepEqual(await h.engine.getUser(t, ann.id), after)
    assert.equal(await h.engine.findUserByEmail(t, 'ann@example.com'), null)
    assert.equal((await h.engine.findUserByEmail(t, 'ann.new@example.com'))?.id, ann.id)
    const identifier = await h.store.getIdentifier(t, 'email', 'ann.new@example.com')
    assert.equal(identifier?.verified, false)
    // The same email again, in another case, is a no-op: no write, no event.
    assert.deepEqual(await h.engine.changeEmail(t, ann.id, 'ANN.NEW@example.com'), after)
    const before = await snapshot(h.store, t)
    await rejectsWith(h.engine.changeEmail(t, ann.id, 'BOB@example.com'), 'DUPLICATE_IDENTIFIER')
    assert.deepEqual(await snapshot(h.store, t), before)
    await h.engine.registerUser(t, { email: 'ann@example.com' })
    assert.deepEqual(await assertGapFreeOutbox(h, t, ann.id), ['user.registered', 'user.email_changed'])
    await assertGapFreeOutbox(h, t, bob.id)
  })

  test('listUsers pages by keyset and filters by status', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await h.engine.registerUser(t, { email: `u${i}@example.com` })).id)
    await h.engine.disableUser(t, ids[1]!)
    await h.engine.deleteUser(t, ids[3]!)
    const page1 = await h.engine.listUsers(t, { limit: 2 })
    assert.deepEqual(
      page1.items.map((u) => u.id),
      ids.slice(0, 2),
    )
    assert.ok(page1.nextCursor)
    const page2 = await h.engine.listUsers(t, { limit: 2, cursor: page1.nextCursor })
    assert.deepEqual(
      page2.items.map((u) => u.id),
      ids.slice(2, 4),
    )
    const active = await h.engine.listUsers(t, { status: 'active' })
    assert.deepEqual(
      active.items.map((u) => u.id),
      [ids[0], ids[2], ids[4]],
    )
    assert.deepEqual(
      (await h.engine.listUsers(t, { status: 'deleted' })).items.map((u) => u.id),
      [ids[3]],
    )
  })

  test('disableUser and enableUser change status once; repeats are no-ops', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'password123' })
    const disabled = await h.engine.disableUser(t, u)
    assert.equal(disabled.status, 'disabled')
    assert.deepEqual(await h.engine.disableUser(t, u), disabled)
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'password123'), false)
    await rejectsWith(h.engine.enrollTotp(t, u), 'USER_DISABLED')
    await rejectsWith(h.engine.generateRecoveryCodes(t, u), 'USER_DISABLED')
    const enabled = await h.engine.enableUser(t, u)
    assert.equal(enabled.status, 'active')
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'password123'), true)
    assert.deepEqual(await assertGapFreeOutbox(h, t, u), ['user.registered', 'user.disabled', 'user.enabled'])
    const actions = (await h.store.listAudit(t, { userId: u })).items.map((a) => a.action)
    assert.deepEqual(actions, [
      'user.registered',
      'user.disabled',
      'password.rejected',
      'user.enabled',
      'password.verified',
    ])
  })

  test('deleteUser erases profile, identifiers and factors; keeps an ids-only tombstone', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, {
      email: 'erase.me@example.com',
      password: 'password123',
      profile: { displayName: 'Erase Me' },
    })
    await h.engine.enrollTotp(t, u)
    await h.engine.generateRecoveryCodes(t, u)
    const other = await h.engine.registerUser(t, { email: 'keep@example.com', profile: { x: 1 } })
    const deleted = await h.engine.deleteUser(t, u)
    assert.equal(deleted.status, 'deleted')
    assert.deepEqual(await h.engine.getUser(t, u), deleted)
    assert.deepEqual(Object.keys(deleted).sort(), [
      'createdAt',
      'id',
      'status',
      'tenantId',
      'updatedAt',
      'version',
    ])
    assert.deepEqual(await h.engine.deleteUser(t, u), deleted)
    assert.equal(await h.engine.findUserByEmail(t, 'erase.me@example.com'), null)
    // Reads of a deleted user's data are USER_DELETED, like every change (docs/status-rules.md).
    await rejectsWith(h.engine.getProfile(t, u), 'USER_DELETED')
    await rejectsWith(h.engine.listFactors(t, u), 'USER_DELETED')
    const counts = (await h.store.diagnostics()).counts
    assert.equal(counts.users, 2)
    assert.equal(counts.identifiers, 1)
    assert.equal(counts.profiles, 1)
    assert.equal(counts.factors, 0)
    // The email is free again; a deleted user cannot be changed or verified.
    await h.engine.registerUser(t, { email: 'erase.me@example.com' })
    await rejectsWith(h.engine.updateProfile(t, u, { a: 1 }), 'USER_DELETED')
    await rejectsWith(h.engine.enableUser(t, u), 'USER_DELETED')
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'password123'), false)
    // Audit and outbox never held the personal values.
    const trail = JSON.stringify([
      (await h.store.listAudit(t)).items,
      await h.store.outbox.listForAggregate(t, u),
    ])
    assert.doesNotMatch(trail, /erase|Erase/)
    assert.deepEqual(await assertGapFreeOutbox(h, t, u), [
      'user.registered',
      'user.totp_enrolled',
      'user.recovery_codes_generated',
      'user.deleted',
    ])
    assert.deepEqual((await h.engine.getProfile(t, other.id)).attributes, { x: 1 })
  })

  test('getUser of an unknown user is NOT_FOUND; findUserByEmail returns null', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    await rejectsWith(h.engine.getUser(t, 'usr_nobody'), 'NOT_FOUND')
    assert.equal(await h.engine.findUserByEmail(t, 'nobody@example.com'), null)
  })
})
