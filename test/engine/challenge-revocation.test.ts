// A pending sign-in challenge (password accepted, second factor to come) is half a session: whatever ends a
// user's sessions must end it too, or a phisher holding one still signs in after the password reset meant
// to lock them out.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserEngine } from '../../src/engine/index.js'
import { codeFor, forEachStore, setup } from './support.js'

await forEachStore('sign-in challenges end with the sessions', ({ store }) => {
  const changes: Array<[string, (e: UserEngine, t: string, u: string) => Promise<unknown>]> = [
    ['setPassword', (e, t, u) => e.setPassword(t, u, 'a new password 2')],
    [
      'resetPassword',
      async (e, t) => {
        const reset = await e.requestPasswordReset(t, { email: 'ann@example.com' })
        assert.ok(reset)
        return e.resetPassword(reset.token.reveal(), 'a new password 3')
      },
    ],
    ['revokeAllSessions', (e, t, u) => e.revokeAllSessions(t, u)],
    ['changeEmail', (e, t, u) => e.changeEmail(t, u, 'ann.new@example.com')],
  ]
  for (const [name, change] of changes) {
    test(`${name} ends a pending challenge: completeSignIn is INVALID_TOKEN`, async () => {
      const h = setup({ store: store() })
      const { id: t } = await h.engine.createTenant('Acme')
      const { id: u } = await h.engine.registerUser(t, {
        email: 'ann@example.com',
        password: 'correct horse battery',
      })
      const { uri } = await h.engine.enrollTotp(t, u)
      assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now)), true)
      h.now += 60_000
      const first = await h.engine.authenticate(t, {
        email: 'ann@example.com',
        password: 'correct horse battery',
      })
      assert.equal(first.status, 'second_factor_required')
      if (first.status !== 'second_factor_required') return
      await change(h.engine, t, u)
      await assert.rejects(
        h.engine.completeSignIn(first.challenge.token.reveal(), { totp: codeFor(uri, h.now) }),
        (e: { code?: string }) => e.code === 'INVALID_TOKEN',
      )
    })
  }
})
