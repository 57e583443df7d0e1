// An in-process store (memory, PGlite) answers within the current turn of the event loop: a loop of engine
// calls on it used to keep every timer and request waiting until the loop ended. Each unit of work now lets
// the event loop turn at least every few ms of continuous work.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { forEachStore, setup } from './support.js'

await forEachStore('event loop turns', ({ store }) => {
  test('a timer fires while a loop of engine calls runs', async () => {
    const h = setup({ store: store() })
    const t = (await h.engine.createTenant('Acme')).id
    const user = await h.engine.registerUser(t, { email: 'ann@example.com' })
    let fired = false
    const timer = setTimeout(() => {
      fired = true
    }, 50)
    const started = Date.now()
    let calls = 0
    // Bounded by the clock: before the change, the timer never fired while this ran.
    while (!fired && Date.now() - started < 5_000) {
      await h.engine.updateProfile(t, user.id, { n: calls++ })
    }
    clearTimeout(timer)
    assert.ok(fired, `the timer did not fire during ${calls} calls in ${Date.now() - started} ms`)
  })
})
