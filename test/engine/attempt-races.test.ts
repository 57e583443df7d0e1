// Attempts at one secret in parallel: guesses must not slip past the lock by being in flight together, a
// code check is throttled like a password check, and one user's parallel sign-ins and profile merges all
// get through (no VERSION_CONFLICT from their own concurrency).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { codeFor, forEachStore, setup } from './support.js'

const codes = (results: PromiseSettledResult<unknown>[]) =>
  results.map((r) =>
    r.status === 'fulfilled' ? 'ok' : String((r.reason as { code?: string }).code ?? r.reason),
  )
const count = (xs: string[], x: string) => xs.filter((y) => y === x).length

await forEachStore('attempts in parallel', ({ store }) => {
  test('40 parallel wrong passwords for one email: 5 are checked, the rest THROTTLED unchecked', async () => {
    const h = setup({ store: store() })
    const { id: t } = await h.engine.createTenant('Acme')
    await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse battery' })
    const results = codes(
      await Promise.allSettled(
        Array.from({ length: 40 }, (_, i) =>
          h.engine.authenticate(t, { email: 'ann@example.com', password: `wrong guess ${i}` }),
        ),
      ),
    )
    assert.equal(count(results, 'INVALID_CREDENTIALS'), 5, results.join(' '))
    assert.equal(count(results, 'THROTTLED'), 35)
    const audit = (await h.store.listAudit(t, { limit: 500 })).items
    assert.equal(audit.filter((a) => a.action === 'sign_in.failed').length, 5)
    // The right password is refused too while the lock runs.
    await assert.rejects(
      h.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse battery' }),
      (e: { code?: string }) => e.code === 'THROTTLED',
    )
  })

  test('wrong TOTP and recovery codes count on the user: the sixth attempt is THROTTLED, even with the right code', async () => {
    const h = setup({ store: store() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'bo@example.com' })
    const { uri } = await h.engine.enrollTotp(t, u)
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now)), true)
    const { codes: recovery } = await h.engine.generateRecoveryCodes(t, u)
    h.now += 60_000
    const right = codeFor(uri, h.now)
    const wrong = right === '000000' ? '111111' : '000000'
    const guesses = codes(
      await Promise.allSettled(Array.from({ length: 8 }, () => h.engine.verifyTotp(t, u, wrong))),
    )
    // Checked one at a time: five wrong answers (false), then the lock.
    assert.deepEqual(guesses, [...Array(5).fill('ok'), ...Array(3).fill('THROTTLED')])
    await assert.rejects(h.engine.verifyTotp(t, u, right), (e: { code?: string }) => e.code === 'THROTTLED')
    await assert.rejects(
      h.engine.consumeRecoveryCode(t, u, recovery[0]!),
      (e: { code?: string }) => e.code === 'THROTTLED',
    )
  })

  test('a right code clears the count', async () => {
    const h = setup({ store: store() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'cy@example.com' })
    const { codes: recovery } = await h.engine.generateRecoveryCodes(t, u)
    for (let i = 0; i < 4; i++) assert.equal(await h.engine.consumeRecoveryCode(t, u, 'not-a-code'), false)
    assert.equal(await h.engine.consumeRecoveryCode(t, u, recovery[0]!), true)
    for (let i = 0; i < 4; i++) assert.equal(await h.engine.consumeRecoveryCode(t, u, 'not-a-code'), false)
    assert.equal(await h.engine.consumeRecoveryCode(t, u, recovery[1]!), true)
  })

  test('20 parallel sign-ins of one user and 16 parallel profile merges all succeed', async () => {
    const h = setup({ store: store() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, {
      email: 'di@example.com',
      password: 'correct horse battery',
    })
    const signIns = codes(
      await Promise.allSettled(
        Array.from({ length: 20 }, () =>
          h.engine.authenticate(t, { email: 'di@example.com', password: 'correct horse battery' }),
        ),
      ),
    )
    assert.deepEqual(signIns, Array(20).fill('ok'))
    const merges = codes(
      await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) => h.engine.updateProfile(t, u, { [`k${i}`]: i })),
      ),
    )
    assert.deepEqual(merges, Array(16).fill('ok'))
    assert.equal(Object.keys((await h.engine.getProfile(t, u)).attributes).length, 16)
  })
})
