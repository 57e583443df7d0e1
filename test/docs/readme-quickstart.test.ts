import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createKeyring, generateKey, UserEngine } from '../../src/index.js'
import { createPgliteStore } from '../../src/stores/postgres/pglite.js'

// The README's quickstart, line for line (in memory instead of ./data), so the docs stay true to the code.
test('the README quickstart runs as written', async () => {
  const store = await createPgliteStore()
  try {
    await store.migrate()
    const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } })
    const engine = new UserEngine({
      store,
      keyring,
      passwordHashing: { memoryCost: 1024, timeCost: 1, parallelism: 1 },
    })
    const tenant = await engine.createTenant('Acme')
    const user = await engine.registerUser(tenant.id, {
      email: 'Ann@Example.com',
      password: 'correct horse battery',
    })
    assert.equal(
      await engine.verifyPassword(tenant.id, { email: 'ann@example.com' }, 'correct horse battery'),
      true,
    )
    const { uri } = await engine.enrollTotp(tenant.id, user.id)
    assert.match(uri, /^otpauth:\/\/totp\//)
  } finally {
    await store.close()
  }
})
