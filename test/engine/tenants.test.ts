import assert from 'node:assert/strict'
import { test } from 'node:test'
import { forEachStore, rejectsWith, setup } from './support.js'

await forEachStore('tenant lifecycle', ({ store }) => {
  test('get, rename, suspend, reactivate: each a versioned change with its audit record and event', async () => {
    const h = setup({ store: store() })
    const created = await h.engine.createTenant('Acme')
    const t = created.id
    assert.deepEqual(await h.engine.getTenant(t), created)
    const renamed = await h.engine.renameTenant(t, 'Acme Corp')
    assert.deepEqual([renamed.name, renamed.version, renamed.createdAt], ['Acme Corp', 2, created.createdAt])
    assert.deepEqual(await h.engine.renameTenant(t, 'Acme Corp'), renamed, 'the same name is a no-op')
    const suspended = await h.engine.suspendTenant(t)
    assert.deepEqual([suspended.status, suspended.version], ['suspended', 3])
    assert.deepEqual(await h.engine.suspendTenant(t), suspended)
    await rejectsWith(h.engine.registerUser(t, { email: 'late@example.com' }), 'TENANT_SUSPENDED')
    assert.equal(
      (await h.engine.renameTenant(t, 'Acme Holdings')).status,
      'suspended',
      'rename works while suspended',
    )
    const active = await h.engine.reactivateTenant(t)
    assert.deepEqual([active.status, active.version], ['active', 5])
    await h.engine.registerUser(t, { email: 'late@example.com' })
    const audit = (await h.store.listAudit(t)).items.map((a) => a.action)
    assert.deepEqual(audit.slice(0, 5), [
      'tenant.created',
      'tenant.renamed',
      'tenant.suspended',
      'tenant.renamed',
      'tenant.reactivated',
    ])
    const events = await h.store.outbox.listForAggregate(t, t)
    assert.deepEqual(
      events.map((e) => [e.type, e.sequence, e.aggregateType]),
      [
        ['tenant.created', 1, 'tenant'],
        ['tenant.renamed', 2, 'tenant'],
        ['tenant.suspended', 3, 'tenant'],
        ['tenant.renamed', 4, 'tenant'],
        ['tenant.reactivated', 5, 'tenant'],
      ],
    )
    await rejectsWith(h.engine.getTenant('ten_unknown'), 'NOT_FOUND')
    await rejectsWith(h.engine.suspendTenant('ten_unknown'), 'NOT_FOUND')
    await rejectsWith(h.engine.renameTenant(t, ''), 'VALIDATION')
  })

  test('a tenant name that is blank, or holds control or text-direction characters, is VALIDATION', async () => {
    const h = setup({ store: store() })
    const t = (await h.engine.createTenant('Acme')).id
    for (const name of [
      '',
      '   ',
      'a\u0007b',
      'a\u001b[31mb',
      'a\u0085b',
      'evil\u202Eexe.txt',
      'a\u2066b',
      'a\nb',
    ]) {
      await assert.rejects(h.engine.createTenant(name), { code: 'VALIDATION' }, JSON.stringify(name))
      await assert.rejects(h.engine.renameTenant(t, name), { code: 'VALIDATION' }, JSON.stringify(name))
    }
    assert.equal((await h.engine.getTenant(t)).name, 'Acme')
    assert.equal((await h.engine.renameTenant(t, 'Ünïcode 株式会社 ✓')).name, 'Ünïcode 株式会社 ✓')
  })

  test('listTenants pages through every tenant in id order', async () => {
    const h = setup({ store: store() })
    const ids = new Set<string>()
    for (let i = 0; i < 5; i++) ids.add((await h.engine.createTenant(`T${i}`)).id)
    const seen: string[] = []
    let cursor: string | undefined
    do {
      const page = await h.engine.listTenants({ limit: 2, ...(cursor ? { cursor } : {}) })
      assert.ok(page.items.length <= 2)
      seen.push(...page.items.map((t) => t.id))
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    assert.deepEqual(seen, [...seen].sort())
    assert.ok([...ids].every((id) => seen.includes(id)))
    await rejectsWith(h.engine.listTenants({ limit: 0 }), 'VALIDATION')
  })
})
