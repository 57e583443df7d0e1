import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

// Runs a code block of README.md as a service team would paste it, against this checkout's sources: every
// `user-engine` import is rewritten to the source file behind that subpath of package.json's `exports`
// (`./dist/src/x.js` -> `src/x.ts`). So a README import of a subpath the package does not export fails, and
// a subpath added to `exports` (`user-engine/nats`, say) works here without touching this file.

const root = resolve(import.meta.dirname, '../..')

export interface ReadmeBlockRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** The block as it ran, imports rewritten. */
  readonly source: string
}

/** `user-engine` and `user-engine/<subpath>` to absolute file URLs of the sources, from package.json's exports. */
export function packageSourceMap(): ReadonlyMap<string, string> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string
    exports: Record<string, string | { default?: string; import?: string }>
  }
  const map = new Map<string, string>()
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const file = typeof target === 'string' ? target : (target.import ?? target.default)
    const match = file === undefined ? null : /^\.\/dist\/(src\/.+)\.js$/.exec(file)
    if (match === null) continue // ./package.json and other non-code exports
    const source = join(root, `${match[1]}.ts`)
    if (!existsSync(source)) continue
    map.set(subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`, pathToFileURL(source).href)
  }
  return map
}

/**
 * The first fenced block of `lang` in the README section whose heading is `heading` or starts with it plus a
 * space (`## Quickstart` finds `## Quickstart for service teams`). Throws when there is none.
 */
export function readmeBlock(heading: string, lang = 'ts'): string {
  const lines = readFileSync(join(root, 'README.md'), 'utf8').split(/\r?\n/)
  const level = /^#+/.exec(heading)?.[0].length
  if (level === undefined) throw new Error(`heading must start with #: ${heading}`)
  let inSection = false
  let fence: { lang: string; body: string[] } | undefined
  for (const line of lines) {
    if (fence !== undefined) {
      if (/^```\s*$/.test(line)) {
        if (inSection && fence.lang === lang) return `${fence.body.join('\n')}\n`
        fence = undefined
      } else {
        fence.body.push(line)
      }
      continue
    }
    const open = /^```(\S*)/.exec(line)
    if (open !== null) {
      fence = { lang: open[1]!, body: [] }
      continue
    }
    const h = /^(#+)\s/.exec(line)
    if (h !== null) {
      if (inSection && h[1]!.length <= level) break
      if (line === heading || line.startsWith(`${heading} `)) inSection = true
    }
  }
  throw new Error(`README.md has no \`\`\`${lang} block under "${heading}"`)
}

/** The block with its `user-engine` imports pointing at the sources; an unknown subpath throws. */
export function rewriteImports(block: string, map: ReadonlyMap<string, string> = packageSourceMap()): string {
  return block.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(user-engine(?:\/[^'"]*)?)\2/g,
    (_, before: string, quote: string, specifier: string) => {
      const url = map.get(specifier)
      if (url === undefined) {
        throw new Error(`README imports ${specifier}, which package.json does not export (or has no source)`)
      }
      return `${before}${quote}${url}${quote}`
    },
  )
}

/**
 * Extracts the block, writes it to a temporary directory inside the repository (so it is an ES module and
 * resolves this checkout's dependencies), runs it with `node --import tsx` from that directory (relative
 * paths the block writes land there) and deletes the directory. `env` is added to this process's
 * environment.
 */
export async function runReadmeBlock(
  heading: string,
  options: { readonly env?: Readonly<Record<string, string>>; readonly timeoutMs?: number } = {},
): Promise<ReadmeBlockRun> {
  const source = rewriteImports(readmeBlock(heading))
  const dir = mkdtempSync(join(root, 'test', 'docs', '.readme-block-'))
  try {
    const file = join(dir, 'block.ts')
    writeFileSync(file, source)
    // Without NODE_TEST_CONTEXT the child is a plain process, not a subtest of this run.
    const { NODE_TEST_CONTEXT: _, ...inherited } = process.env
    const timeoutMs = options.timeoutMs ?? 120_000
    return await new Promise<ReadmeBlockRun>((resolvePromise, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', file], {
        cwd: dir,
        env: { ...inherited, TSX_TSCONFIG_PATH: join(root, 'tsconfig.json'), ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => {
        stdout += d
      })
      child.stderr.on('data', (d) => {
        stderr += d
      })
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(
          new Error(`the README block under "${heading}" did not exit within ${timeoutMs} ms\n${stderr}`),
        )
      }, timeoutMs)
      child.on('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
      child.on('close', (code) => {
        clearTimeout(timer)
        resolvePromise({ code, stdout, stderr, source })
      })
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
