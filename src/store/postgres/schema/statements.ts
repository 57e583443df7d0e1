/**
 * Splits a SQL script into statements at top-level semicolons, skipping those inside quotes, quoted
 * identifiers, dollar-quoted bodies and comments. Non-transactional migrations need it: a script sent as
 * one simple query runs as one implicit transaction, where CREATE INDEX CONCURRENTLY is refused.
 */
export function splitSqlStatements(sql: string): string[] {
  const out: string[] = []
  let start = 0
  let hasCode = false
  let i = 0
  const n = sql.length
  const push = (end: number) => {
    if (hasCode) out.push(sql.slice(start, end).trim())
    start = end + 1
    hasCode = false
  }
  while (i < n) {
    const c = sql[i]!
    const next = sql[i + 1]
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i)
      i = eol === -1 ? n : eol + 1
      continue
    }
    if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2)
      i = end === -1 ? n : end + 2
      continue
    }
    if (c === "'" || c === '"') {
      hasCode = true
      // A doubled quote is an escaped quote inside the literal.
      let j = i + 1
      while (j < n) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2
          else break
        } else if (c === "'" && sql[j] === '\\' && /[eE]/.test(sql[i - 1] ?? '')) j += 2
        else j++
      }
      i = j + 1
      continue
    }
    if (c === '$') {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))
      if (tag) {
        hasCode = true
        const end = sql.indexOf(tag[0], i + tag[0].length)
        i = end === -1 ? n : end + tag[0].length
        continue
      }
    }
    if (c === ';') {
      push(i)
      i++
      continue
    }
    if (!/\s/.test(c)) hasCode = true
    i++
  }
  push(n)
  return out
}
