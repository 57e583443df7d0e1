import { createHash } from 'node:crypto'

// Statement names by SQL text. The store's statements are a fixed set of constants, so the map stays small;
// a name is a digest of the text, the same on every connection, in every process and for every driver (two
// drivers sharing one PGlite instance agree on it).
const statementNames = new Map<string, string>()

/** The name a statement is prepared under. */
export function statementName(sql: string): string {
  let name = statementNames.get(sql)
  if (name === undefined) {
    name = `ue_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`
    statementNames.set(sql, name)
  }
  return name
}
