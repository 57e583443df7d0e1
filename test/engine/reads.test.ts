import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ListUsersOptions, UserEngine } from '../../src/engine/index.js'
import { codeFor, forEachStore, rejectsWith, setup } from './support.js'

async function populated(engine: UserEngine) {
  const t = (await engine.createTenant('Acme')).id
  const ann = await engine.registerUser(t, {
    email: 'Ann@Example.com',
    password: 'correct horse',
    profile: { displayName: 'Ann' },
  })
  await engine.setUsername(t, ann.id, 'Annie')
  const bob = await engine.registerUser(t, { email: 'bob@example.com' })
  const anna = await engine.registerUser(t, { email: 'anna@example.org' })
  await engine.disableUser(t, anna.id)
  return { t, ann, bob, anna }
}

await forEachStore('reads', ({ store }) => {
  test('getUserDetails returns the user, identifiers, profile and factor summaries in one call', async () => {
    const h = setup({ store: store() })
    const { t, ann, anna } = await populated(h.engine)
    const { uri, factorId: totpId } = await h.engine.enrollTotp(t, ann.id)
    await h.engine.verifyTotp(t, ann.id, codeFor(uri, h.now))
    await h.engine.generateRecoveryCodes(t, ann.id)
    const details = await h.engine.getUserDetails(t, ann.id)
    assert.deepEqual(details.user, await h.engine.getUser(t, ann.id))
    assert.deepEqual(
      details.identifiers.map((i) => [i.kind, i.value, i.verified]),
      [
        ['email', 'ann@example.com', false],
        ['username', 'annie', false],
      ],
    )
    assert.deepEqual(Object.keys(details.identifiers[0]!).sort(), [
      'createdAt',
      'id',
      'kind',
      'updatedAt',
      'value',
      'verified',
      'version',
    ])
    assert.deepEqual(details.profile, await h.engine.getProfile(t, ann.id))
    assert.deepEqual(details.factors, await h.engine.listFactors(t, ann.id))
    assert.deepEqual(details.factors.map((f) => f.kind).sort(), ['password', 'recovery_codes', 'totp'])
    assert.ok(details.factors.some((f) => f.id === totpId && f.confirmed === true))
    const printed = JSON.stringify(details)
    for (const secret of ['argon2', 'phc', 'hashes', 'correct horse', 'ciphertext']) {
      assert.ok(!printed.includes(secret), `getUserDetails prints ${secret}`)
    }
    // A disabled user is shown as it is; a deleted one as its tombstone with nothing else.
    assert.equal((await h.engine.getUserDetails(t, anna.id)).user.status, 'disabled')
    await h.engine.deleteUser(t, anna.id)
    const gone = await h.engine.getUserDetails(t, anna.id)
    assert.deepEqual(
      [gone.user.status, gone.identifiers, gone.profile, gone.factors],
      ['deleted', [], null, []],
    )
    await rejectsWith(h.engine.getUserDetails(t, 'usr_missing'), 'NOT_FOUND')
    await rejectsWith(h.engine.getUserDetails('ten_missing', ann.id), 'NOT_FOUND')
    const bad = await rejectsWith(h.engine.getUserDetails(t, 'Hunter2 Secret'), 'VALIDATION')
    assert.ok(!bad.message.includes('Hunter2'))
  })

  test('listUsers includes identifiers, searches by email or username prefix in any case, and counts', async () => {
    const h = setup({ store: store() })
    const { t, ann, bob, anna } = await populated(h.engine)
    const plain = await h.engine.listUsers(t)
    assert.ok(
      plain.items.every((u) => !('identifiers' in u)),
      'identifiers without include',
    )
    const withIds = await h.engine.listUsers(t, { include: ['identifiers'] })
    assert.deepEqual(
      withIds.items.map((u) => [u.id, u.identifiers?.map((i) => i.value)]),
      [
        [ann.id, ['ann@example.com', 'annie']],
        [bob.id, ['bob@example.com']],
        [anna.id, ['anna@example.org']],
      ],
    )
    const byEmail = await h.engine.listUsers(t, { emailPrefix: ' ANN', include: ['identifiers'] })
    assert.deepEqual(
      byEmail.items.map((u) => u.id),
      [ann.id, anna.id],
    )
    assert.deepEqual(
      (await h.engine.listUsers(t, { emailPrefix: 'ann', status: 'active' })).items.map((u) => u.id),
      [ann.id],
    )
    assert.deepEqual(
      (await h.engine.listUsers(t, { usernamePrefix: 'ANNI' })).items.map((u) => u.id),
      [ann.id],
    )
    const first = await h.engine.listUsers(t, { emailPrefix: 'a', limit: 1 })
    const second = await h.engine.listUsers(t, { emailPrefix: 'a', limit: 1, cursor: first.nextCursor! })
    assert.deepEqual(
      [...first.items, ...second.items].map((u) => u.id),
      [ann.id, anna.id],
    )
    assert.equal(second.nextCursor, null)
    // A cursor continues the search it came from only: not a username search, not a plain listing, not
    // another prefix or status filter, not another tenant (each would skip users silently).
    const other = (await h.engine.createTenant('Other')).id
    await h.engine.registerUser(other, { email: 'aa@example.com' })
    await rejectsWith(
      h.engine.listUsers(other, { emailPrefix: 'a', cursor: first.nextCursor! }),
      'VALIDATION',
    )
    const others: ListUsersOptions[] = [
      { usernamePrefix: 'a' },
      {},
      { emailPrefix: 'an' },
      { emailPrefix: 'a', status: 'active' },
    ]
    for (const other of others) {
      await rejectsWith(
        h.engine.listUsers(t, { ...other, limit: 1, cursor: first.nextCursor! }),
        'VALIDATION',
      )
    }
    const byId = await h.engine.listUsers(t, { limit: 1 })
    await rejectsWith(h.engine.listUsers(t, { emailPrefix: 'a', cursor: byId.nextCursor! }), 'VALIDATION')
    assert.equal(await h.engine.countUsers(t), 3)
    assert.equal(await h.engine.countUsers(t, { status: 'disabled' }), 1)
    assert.equal(await h.engine.countUsers(t, { emailPrefix: 'AN' }), 2)
    assert.equal(await h.engine.countUsers(t, { emailPrefix: 'an', status: 'active' }), 1)
    assert.equal(await h.engine.countUsers(t, { usernamePrefix: 'b' }), 0)
  })

  test('bad read options are VALIDATION without the value; an unknown tenant is NOT_FOUND', async () => {
    const h = setup({ store: store() })
    const { t } = await populated(h.engine)
    const secret = 'Hunter2Secret'
    const bad: unknown[] = [
      { emailPrefix: 'a', usernamePrefix: 'b' },
      { emailPrefix: '' },
      { emailPrefix: '   ' },
      { emailPrefix: `${secret}\u200B` },
      { emailPrefix: 42 },
      { usernamePrefix: `${secret}${'x'.repeat(80)}` },
      { include: ['profile'] },
      { include: 'identifiers' },
      { status: secret },
      { limit: 0 },
      { cursor: secret },
      { search: secret },
      null,
    ]
    for (const options of bad) {
      const error = await rejectsWith(h.engine.listUsers(t, options as never), 'VALIDATION')
      assert.ok(!error.message.includes(secret), `listUsers echoed ${JSON.stringify(options)}`)
    }
    for (const options of [{ emailPrefix: '' }, { limit: 5 }, { status: 'gone' }]) {
      await rejectsWith(h.engine.countUsers(t, options as never), 'VALIDATION')
    }
    // A cursor of one search does not continue another kind of listing.
    const byId = (await h.engine.listUsers(t, { limit: 1 })).nextCursor!
    await rejectsWith(h.engine.listUsers(t, { emailPrefix: 'a', cursor: byId }), 'VALIDATION')
    await rejectsWith(h.engine.listUsers('ten_missing', { include: ['identifiers'] }), 'NOT_FOUND')
    await rejectsWith(h.engine.countUsers('ten_missing', { emailPrefix: 'a' }), 'NOT_FOUND')
  })

  test("listAudit pages a tenant's trail (or one user's) oldest first; bad options are VALIDATION", async () => {
    const h = setup({ store: store() })
    const { t, ann, anna } = await populated(h.engine)
    const all: string[] = []
    let cursor: string | undefined
    do {
      const page = await h.engine.listAudit(t, { limit: 2, ...(cursor ? { cursor } : {}) })
      assert.ok(page.items.length <= 2)
      all.push(...page.items.map((a) => `${a.action}:${a.userId}`))
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    assert.deepEqual(
      all,
      (await h.store.listAudit(t, { limit: 500 })).items.map((a) => `${a.action}:${a.userId}`),
    )
    assert.ok(all.includes(`user.disabled:${anna.id}`))
    const annOnly = await h.engine.listAudit(t, { userId: ann.id })
    assert.ok(annOnly.items.length > 0 && annOnly.items.every((a) => a.userId === ann.id))
    const secret = 'Hunter2Secret'
    for (const options of [
      { limit: 0 },
      { cursor: secret },
      { userId: secret.repeat(20) },
      { other: 1 },
      null,
    ]) {
      const error = await rejectsWith(h.engine.listAudit(t, options as never), 'VALIDATION')
      assert.ok(!error.message.includes(secret), `listAudit echoed ${JSON.stringify(options)}`)
    }
    await rejectsWith(h.engine.listAudit('ten_missing'), 'NOT_FOUND')
  })
})
