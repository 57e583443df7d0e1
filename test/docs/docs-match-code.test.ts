import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { MIGRATIONS } from '../../src/store/postgres/schema/manifest.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'

const docs = resolve(import.meta.dirname, '../../docs')

interface TableRow {
  readonly line: number
  readonly cells: readonly string[]
}

/** The rows of the first pipe table after `heading` whose header row starts with `firstColumn`. */
function tableAfter(markdown: string, heading: string, firstColumn: string): TableRow[] {
  const lines = markdown.split(/\r?\n/)
  const from = lines.indexOf(heading)
  assert.notEqual(from, -1, `no heading "${heading}"`)
  const cellsOf = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim())
  const header = lines.findIndex((l, i) => i > from && l.startsWith('|') && cellsOf(l)[0] === firstColumn)
  assert.notEqual(header, -1, `no table with a "${firstColumn}" column under "${heading}"`)
  const rows: TableRow[] = []
  for (let i = header + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    rows.push({ line: i + 1, cells: cellsOf(lines[i]!) })
  }
  return rows
}

test('the provider guide lists every migration of the manifest (version, name, transactional)', () => {
  const guide = readFileSync(join(docs, 'provider-guide.md'), 'utf8')
  const rows = tableAfter(guide, '## 2. The SQL', 'version')
  const listed = rows.map(({ line, cells }) => {
    const [version, name, transactional] = cells
    assert.match(
      transactional ?? '',
      /^(yes|no)\b/,
      `provider-guide.md:${line}: transactional is yes or no...`,
    )
    return {
      version: Number(version),
      name: name?.replace(/^`|`$/g, ''),
      transactional: transactional!.startsWith('yes'),
    }
  })
  assert.deepEqual(
    listed,
    MIGRATIONS.map((m) => ({ version: m.version, name: m.name, transactional: m.transactional })),
  )
  assert.equal(listed.at(-1)?.version, LATEST_SCHEMA_VERSION)
  // The guide says where each version's SQL is: migrations/postgres/NNNN_<name>.sql.
  for (const m of MIGRATIONS) assert.equal(m.file, `${String(m.version).padStart(4, '0')}_${m.name}.sql`)
  for (const [, n] of guide.matchAll(/`LATEST_SCHEMA_VERSION` \((\d+)\)/g)) {
    assert.equal(Number(n), LATEST_SCHEMA_VERSION, 'provider-guide.md states a stale LATEST_SCHEMA_VERSION')
  }
})

// docs/ ships in the npm package and src/, test/ do not: a path into them is a dead end for the reader.
const REPOSITORY_PATH = /(?<![\w.@-])(?:\.{1,2}\/)*(?:src|tests?)\/[\w./*-]*/g

test('no file in docs/ links or refers to src/ or test/ paths', () => {
  const found: string[] = []
  for (const name of readdirSync(docs).filter((f) => f.endsWith('.md'))) {
    readFileSync(join(docs, name), 'utf8')
      .split(/\r?\n/)
      .forEach((line, i) => {
        for (const [path] of line.matchAll(REPOSITORY_PATH)) found.push(`docs/${name}:${i + 1}: ${path}`)
      })
  }
  assert.deepEqual(
    found,
    [],
    `docs refer to repository paths the package does not ship:\n${found.join('\n')}`,
  )
})

test('the repository-path check catches links and bare paths, not look-alikes', () => {
  const hits = (text: string) => [...text.matchAll(REPOSITORY_PATH)].map(([p]) => p)
  assert.deepEqual(hits('see [the runner](../src/migrations/runner.ts)'), ['../src/migrations/runner.ts'])
  assert.deepEqual(hits('(`test/support/adapters.ts`, src/store/)'), [
    'test/support/adapters.ts',
    'src/store/',
  ])
  assert.deepEqual(hits('https://github.com/o/r/blob/main/src/index.ts'), ['src/index.ts'])
  assert.deepEqual(hits('user-engine/testing, latest/, provider.test.ts, docs/operations.md'), [])
})
