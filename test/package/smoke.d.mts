// Types for smoke.mjs (plain JavaScript so scripts/node-versions-smoke.mjs can run it without tsx).

export declare const SUBPATHS: readonly string[]

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

export interface RunOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  readonly timeoutMs?: number
}

export declare function cleanEnv(binDir?: string, base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv
export declare function run(
  command: string,
  args: readonly string[],
  options?: RunOptions,
): Promise<RunResult>
export declare function describeRun(label: string, r: RunResult): string
export declare function packTarball(
  repoRoot: string,
  destDir: string,
  env: NodeJS.ProcessEnv,
): Promise<string>
export declare function makeTempDir(prefix: string): string
export declare function removeDir(dir: string): void
export declare function createProject(
  tarball: string,
  options: { prefix?: string; npmArgs?: readonly string[]; env: NodeJS.ProcessEnv },
): Promise<{ dir: string; installMs: number }>
export declare function installedPackages(dir: string): string[]

export interface TapResult {
  readonly ok: boolean
  readonly name: string
  readonly directive: 'SKIP' | 'TODO' | undefined
  readonly reason: string | undefined
}

export interface TapSummary {
  readonly tests: number | undefined
  readonly pass: number | undefined
  readonly fail: number | undefined
  readonly skipped: number | undefined
  readonly cancelled: number | undefined
  readonly todo: number | undefined
  readonly results: TapResult[]
}

export declare function parseTap(text: string): TapSummary

export interface SmokeContext {
  /** The installed project. */
  readonly dir: string
  /** Its environment; PATH names the Node under test first. */
  readonly env: NodeJS.ProcessEnv
  /** When set, the steps check that this Node major is the one running. */
  readonly nodeMajor?: number
  /** When set, the harness step requires exactly this many cases (the repository's CONFORMANCE_SUITES). */
  readonly conformanceCases?: number
}

export interface SmokeStep {
  readonly id: 'node' | 'isolation' | 'imports' | 'help' | 'status' | 'demo' | 'harness'
  readonly name: string
  run(ctx: SmokeContext): Promise<string>
}

export declare const SMOKE_STEPS: readonly SmokeStep[]
export declare function isInside(child: string, parent: string): boolean
