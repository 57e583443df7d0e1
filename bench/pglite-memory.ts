// npx tsx bench/pglite-memory.ts [--json] [--users N] [--only defaults|driver]
// Resident memory of a process holding the embedded store, once with PGlite's own settings and once through
// createPgliteStore (the driver's settings). Each scenario runs in a child process of its own: RSS is per
// process and a WASM heap never shrinks. A benchmark, not a test: nothing here passes or fails.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { PostgresUserEngineStore } from '../src/store/postgres/postgres-store.js'

const SCENARIOS = {
  bare: 'bare PGlite in memory, no store',
  memory: 'in memory: open + migrate()',
  'new-dir': 'new data dir: open + migrate()',
  reopen: 'existing data dir: open + migrate()',
  register: 'existing data dir: N registerUser, then N reads',
} as const
type Scenario = keyof typeof SCENARIOS
/** `defaults`: `new PGlite(dataDir)` handed to the driver (what the driver did before); `driver`: createPgliteStore. */
type Config = 'defaults' | 'driver'

interface Figures {
  readonly scenario: Scenario
  readonly config: Config
  /** RSS once the scenario is done and garbage has been collected, MiB. */
  readonly rssMiB: number
  /** RSS right after the scenario, before any forced collection, MiB. */
  readonly rssBeforeGcMiB: number
  /** Peak RSS of the process (getrusage maxrss), MiB. */
  readonly peakRssMiB: number
  readonly seconds: number
  readonly registrationsPerSec?: number
  readonly readsPerSec?: number
  readonly databaseMiB?: number
}

const mib = (bytes: number) => Math.round(bytes / 1024 / 1024)

async function openStore(
  config: Config,
  dataDir: string | undefined,
): Promise<{ store: PostgresUserEngineStore; close: () => Promise<void> }> {
  if (config === 'driver') {
    const { createPgliteStore } = await import('../src/store/postgres/pglite.js')
    const store = await createPgliteStore(dataDir === undefined ? {} : { dataDir })
    return { store, close: () => store.close() }
  }
  const { PGlite } = await import('@electric-sql/pglite')
  const { createPgliteDriver, PostgresUserEngineStore } = await import('../src/store/postgres/pglite.js')
  const db = new PGlite(dataDir)
  await db.waitReady
  const store = await PostgresUserEngineStore.open(await createPgliteDriver({ db }))
  return {
    store,
    close: async () => {
      await store.close()
      await db.close()
    },
  }
}

async function runScenario(
  scenario: Scenario,
  config: Config,
  dataDir: string,
  users: number,
): Promise<Figures> {
  const started = performance.now()
  const extra: { registrationsPerSec?: number; readsPerSec?: number; databaseMiB?: number } = {}
  let close: () => Promise<void>
  if (scenario === 'bare') {
    const { PGlite } = await import('@electric-sql/pglite')
    const db = new PGlite()
    await db.waitReady
    await db.query('SELECT 1')
    close = () => db.close()
  } else {
    const opened = await openStore(config, scenario === 'memory' ? undefined : dataDir)
    const store = opened.store
    close = opened.close
    await store.migrate()
    if (scenario === 'register') {
      const { UserEngine } = await import('../src/engine/user-engine.js')
      const { createKeyring, generateKey } = await import('../src/engine/keyring.js')
      const engine = new UserEngine({
        store,
        keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
        // Cheap hashes: the figure is the store's memory, not Argon2's (19 MiB per hash by default).
        passwordHashing: { memoryCost: 1024, timeCost: 1, parallelism: 1 },
      })
      const tenant = await engine.createTenant('Bench')
      let t = performance.now()
      for (let i = 0; i < users; i++) {
        await engine.registerUser(tenant.id, {
          email: `user${i}@example.com`,
          password: 'correct horse battery',
        })
      }
      extra.registrationsPerSec = Math.round(users / ((performance.now() - t) / 1000))
      t = performance.now()
      for (let i = 0; i < users; i++) {
        // Spread over the table, so that reads leave the buffer cache when it is small.
        const j = (i * 7919) % users
        if ((await engine.findUserByEmail(tenant.id, `user${j}@example.com`)) === null)
          throw new Error('lost')
      }
      extra.readsPerSec = Math.round(users / ((performance.now() - t) / 1000))
      const size = await store.driver.query<{ bytes: string }>(
        'SELECT pg_database_size(current_database())::text AS bytes',
      )
      extra.databaseMiB = mib(Number(size.rows[0]!.bytes))
    }
  }
  const seconds = Math.round((performance.now() - started) / 100) / 10
  const rssBeforeGcMiB = mib(process.memoryUsage().rss)
  // WASM memories and PGlite's initdb instance go only after several collections.
  for (let i = 0; i < 6; i++) {
    globalThis.gc?.()
    await new Promise((r) => setTimeout(r, 200))
  }
  const figures: Figures = {
    scenario,
    config,
    rssMiB: mib(process.memoryUsage().rss),
    rssBeforeGcMiB,
    peakRssMiB: mib(process.resourceUsage().maxRSS * 1024),
    seconds,
    ...extra,
  }
  await close()
  return figures
}

function child(scenario: Scenario, config: Config, dataDir: string, users: number): Figures {
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      ...['--child', scenario, '--config', config, '--dir', dataDir, '--users', String(users)],
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  )
  if (r.status !== 0) throw new Error(`${scenario} (${config}) exited with ${r.status ?? r.signal}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures
}

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    users: { type: 'string', default: '10000' },
    only: { type: 'string' },
    child: { type: 'string' },
    config: { type: 'string', default: 'driver' },
    dir: { type: 'string' },
  },
})
const users = Number(values.users)

if (values.child !== undefined) {
  const figures = await runScenario(values.child as Scenario, values.config as Config, values.dir!, users)
  process.stdout.write(`${JSON.stringify(figures)}\n`)
} else {
  const root = mkdtempSync(join(tmpdir(), 'ue-pglite-memory-'))
  try {
    const results: Figures[] = []
    const configs = (['defaults', 'driver'] as const).filter(
      (c) => values.only === undefined || values.only === c,
    )
    for (const config of configs) {
      // new-dir creates the directory that reopen and register then use.
      const dataDir = join(root, config)
      for (const scenario of Object.keys(SCENARIOS) as Scenario[]) {
        if (scenario === 'bare' && config !== 'defaults') continue
        process.stderr.write(`${config}: ${scenario} ...\n`)
        results.push(child(scenario, config, dataDir, users))
      }
    }
    if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
    else {
      process.stdout.write(
        `${'scenario'.padEnd(58)}${'settings'.padEnd(10)}  rss MiB (before GC)  peak MiB  seconds\n`,
      )
      for (const f of results) {
        const label = SCENARIOS[f.scenario].replaceAll('N ', `${users} `)
        const extra =
          f.registrationsPerSec === undefined
            ? ''
            : `  ${f.registrationsPerSec} reg/s, ${f.readsPerSec} reads/s, database ${f.databaseMiB} MiB`
        process.stdout.write(
          `${label.padEnd(58)}${f.config.padEnd(10)}  ${String(f.rssMiB).padStart(7)} (${String(f.rssBeforeGcMiB).padStart(4)})      ${String(f.peakRssMiB).padStart(8)}  ${String(f.seconds).padStart(7)}${extra}\n`,
        )
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}
