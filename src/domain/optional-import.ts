import { ErrorCode, UserEngineError } from './errors.js'

/** Node's codes for a specifier that does not resolve: ESM `import()`, and `require` (CJS builds, bundles). */
const NOT_FOUND_CODES: ReadonlySet<unknown> = new Set(['ERR_MODULE_NOT_FOUND', 'MODULE_NOT_FOUND'])

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Whether `error` says that `packageName` itself cannot be found, as opposed to a module inside it, or a
 * package it depends on (those stay the original error: installing `packageName` would not fix them).
 */
export function isPackageNotFound(error: unknown, packageName: string): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, message } = error as { code?: unknown; message?: unknown }
  if (!NOT_FOUND_CODES.has(code) || typeof message !== 'string') return false
  // Node quotes the bare specifier ('pkg' or 'pkg/sub'); importer paths after it are never quoted that way.
  return new RegExp(`['"]${escapeRegExp(packageName)}(?:/[^'"]*)?['"]`).test(message)
}

/**
 * Loads an optional peer package, or raises DEPENDENCY_MISSING naming what to install.
 *
 * `load` is the `import()` itself, written at the call site with a literal specifier so bundlers and type
 * inference see it: `await importOptional(() => import('pg'), 'pg', 'the node-postgres store')`. Only "this
 * package is not installed" becomes DEPENDENCY_MISSING (message: `npm i <packageName>`, details
 * `{ package }`, the original error as `cause`); any other failure, including a dependency of the package
 * that is missing, is rethrown unchanged.
 *
 * @param load the dynamic import of the package (or of one of its entry points)
 * @param packageName the name to install, e.g. `@electric-sql/pglite`
 * @param purpose what needs it, for the message, e.g. `the embedded PGlite store`
 */
export async function importOptional<M>(
  load: () => Promise<M>,
  packageName: string,
  purpose: string,
): Promise<M> {
  try {
    return await load()
  } catch (error) {
    if (!isPackageNotFound(error, packageName)) throw error
    throw new UserEngineError(
      ErrorCode.DEPENDENCY_MISSING,
      `${purpose} needs the package ${packageName}, which is not installed: npm i ${packageName}`,
      { details: { package: packageName }, cause: error },
    )
  }
}
