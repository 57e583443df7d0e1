import { TOTP, URI } from 'otpauth'
import { createKeyring, generateKey } from '../../engine/keyring.js'
import { UserEngine } from '../../engine/user-engine.js'
import type { UserEngineStore } from '../../store/store.js'

/**
 * A guided tour of the engine on any store, for `npm start`: one tenant, three users, the factor flows, and
 * then what was recorded (audit trail, outbox, diagnostics). Prints ids, codes and counts; never a secret.
 */
export async function runWalkthrough(store: UserEngineStore, print: (line: string) => void): Promise<void> {
  const step = (title: string) => print(`\n== ${title}`)
  const names = new Map<string, string>()
  const who = (id: string | null) => (id === null ? '-' : (names.get(id) ?? id))

  step('Schema')
  const migrated = await store.migrate()
  print(
    migrated.applied.length === 0
      ? `already at version ${migrated.toVersion}; nothing to apply`
      : `migrated ${migrated.fromVersion} -> ${migrated.toVersion}: ${migrated.applied.map((m) => `${m.version} ${m.name}`).join(', ')}`,
  )

  // A throwaway key for this run; a service loads its keys with keyringFromEnv().
  const engine = new UserEngine({
    store,
    keyring: createKeyring({ currentKeyId: 'demo-key', keys: { 'demo-key': generateKey() } }),
  })

  step('Tenant and users')
  const tenant = await engine.createTenant('Walkthrough Inc.')
  const t = tenant.id
  print(`created tenant ${t}`)
  const ann = await engine.registerUser(t, {
    email: 'ann@example.com',
    password: 'correct horse battery staple',
    profile: { displayName: 'Ann' },
  })
  const bob = await engine.registerUser(t, { email: 'bob@example.com' })
  const cara = await engine.registerUser(t, { email: 'cara@example.com', profile: { displayName: 'Cara' } })
  for (const [name, user] of [
    ['ann', ann],
    ['bob', bob],
    ['cara', cara],
  ] as const) {
    names.set(user.id, name)
    print(`registered ${name.padEnd(4)} ${user.id}`)
  }
  print(
    `ann's password verifies: ${await engine.verifyPassword(t, { email: 'ANN@example.com' }, 'correct horse battery staple')}`,
  )
  print(
    `a wrong password verifies: ${await engine.verifyPassword(t, { email: 'ann@example.com' }, 'wrong password')}`,
  )
  print(
    `an unknown email verifies: ${await engine.verifyPassword(t, { email: 'nobody@example.com' }, 'whatever')}`,
  )
  try {
    await engine.registerUser(t, { email: 'Ann@Example.COM' })
  } catch (error) {
    print(`registering Ann@Example.COM again is refused: ${(error as { code?: string }).code}`)
  }

  step('Profile and email')
  await engine.changeEmail(t, bob.id, 'robert@example.com')
  print('bob changed his email (the new one starts unverified)')
  const profile = await engine.updateProfile(t, cara.id, { locale: 'fr-FR' }, { expectedVersion: 1 })
  print(
    `cara's profile is at version ${profile.version} with attributes: ${Object.keys(profile.attributes).join(', ')}`,
  )

  step('TOTP')
  const enrollment = await engine.enrollTotp(t, ann.id)
  print(`ann enrolled TOTP factor ${enrollment.factorId} (the otpauth URI went to her authenticator app)`)
  const app = URI.parse(enrollment.uri)
  const code = app instanceof TOTP ? app.generate() : ''
  print(`the app's current code verifies: ${await engine.verifyTotp(t, ann.id, code)}`)
  print(`the same code again (replay) verifies: ${await engine.verifyTotp(t, ann.id, code)}`)

  step('Recovery codes')
  const recovery = await engine.generateRecoveryCodes(t, ann.id)
  print(`ann got ${recovery.codes.length} recovery codes (shown once, stored hashed)`)
  const first = recovery.codes[0]!
  print(`using one: ${await engine.consumeRecoveryCode(t, ann.id, first)}`)
  print(`using it again: ${await engine.consumeRecoveryCode(t, ann.id, first)}`)

  step('Audit trail (ids and reason codes only)')
  let n = 0
  for (let cursor: string | undefined, more = true; more; ) {
    const page = await store.listAudit(t, { limit: 100, ...(cursor ? { cursor } : {}) })
    for (const a of page.items) {
      n++
      const data = Object.entries(a.data)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')
      print(
        `  #${String(n).padStart(3)}  ${a.action.padEnd(24)} ${who(a.userId).padEnd(5)} ${data}`.trimEnd(),
      )
    }
    cursor = page.nextCursor ?? undefined
    more = page.nextCursor !== null
  }

  step('Outbox (per user: sequence.position, gap-free; payloads hold ids only)')
  for (const e of await store.outbox.listForAggregate(t, t)) {
    print(`  tenant  ${e.sequence}.${e.position}  ${e.type.padEnd(30)} ${e.status}`)
  }
  for (const user of [ann, bob, cara]) {
    for (const e of await store.outbox.listForAggregate(t, user.id)) {
      print(`  ${who(user.id).padEnd(6)}  ${e.sequence}.${e.position}  ${e.type.padEnd(30)} ${e.status}`)
    }
  }

  step('Diagnostics (counts only)')
  const d = await store.diagnostics()
  print(`  store ${d.store}, schema ${d.schemaVersion}/${d.latestVersion}`)
  for (const [k, v] of Object.entries(d.counts)) print(`  ${k.padEnd(18)} ${v}`)
}
