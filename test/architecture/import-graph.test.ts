import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { test } from 'node:test'

// Imports point down: cli -> engine -> store <- store/*, domain under all of them (see the README's layout).
const SRC = join(import.meta.dirname, '..', '..', 'src')

interface Edge {
  readonly from: string
  readonly to: string
  readonly file: string
}

function importEdges(): Edge[] {
  const files = readdirSync(SRC, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts'))
  const edges: Edge[] = []
  const specifier = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g
  for (const file of files) {
    const text = readFileSync(join(SRC, file), 'utf8')
    for (const match of text.matchAll(specifier)) {
      const target = normalize(join(dirname(file), match[1]!))
      edges.push({ from: dirname(file), to: dirname(target), file })
    }
  }
  return edges
}

const folderEdges = importEdges().filter((e) => e.from !== e.to && e.from !== '.')
const importsFrom = (from: (f: string) => boolean, to: (f: string) => boolean) =>
  folderEdges.filter((e) => from(e.from) && to(e.to)).map((e) => `${e.file} -> ${e.to}`)
const under = (folder: string) => (f: string) => f === folder || f.startsWith(`${folder}/`)
const not =
  (...tests: Array<(f: string) => boolean>) =>
  (f: string) =>
    !tests.some((t) => t(f))

test('no two folders import each other', () => {
  const pairs = new Set(folderEdges.map((e) => `${e.from} -> ${e.to}`))
  const mutual = [...pairs].filter((p) => {
    const [a, b] = p.split(' -> ')
    return a! < b! && pairs.has(`${b} -> ${a}`)
  })
  assert.deepEqual(mutual, [])
})

test('domain imports nothing of the library outside domain', () => {
  assert.deepEqual(importsFrom(under('domain'), not(under('domain'))), [])
})

test('the store contract imports only domain', () => {
  assert.deepEqual(
    importsFrom(
      (f) => f === 'store',
      not(under('domain'), (f) => f === 'store'),
    ),
    [],
  )
})

test('the engine never imports a concrete store, the outbox relay, the harness or the CLI', () => {
  assert.deepEqual(
    importsFrom(
      under('engine'),
      not(under('domain'), (f) => f === 'store', under('engine')),
    ),
    [],
  )
})

test('the harness imports the contract and the memory store, never Postgres code', () => {
  assert.deepEqual(importsFrom(under('testing'), under('store/postgres')), [])
})

test('only the Postgres store and the CLI import the Postgres migration code', () => {
  assert.deepEqual(
    importsFrom(not(under('store/postgres'), under('cli')), under('store/postgres/schema')),
    [],
  )
})

test('stores do not import each other, the engine, the outbox relay, the harness or the CLI', () => {
  const stores = (f: string) => under('store/memory')(f) || under('store/postgres')(f)
  assert.deepEqual(importsFrom(under('store/memory'), under('store/postgres')), [])
  assert.deepEqual(importsFrom(under('store/postgres'), under('store/memory')), [])
  assert.deepEqual(
    importsFrom(stores, (f) => ['engine', 'outbox', 'testing', 'cli'].some((x) => under(x)(f))),
    [],
  )
})

test('the edge list is not empty (the walker found the imports)', () => {
  assert.ok(folderEdges.length > 20, `only ${folderEdges.length} folder edges: the import pattern broke`)
  assert.ok(relative(SRC, SRC) === '')
})
