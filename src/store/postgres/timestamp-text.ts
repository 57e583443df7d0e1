/**
 * A `timestamptz` as the server writes it in text (DateStyle ISO: `2026-11-30 19:56:36.12+00`) to the ISO 8601
 * text records carry (`2026-11-30T19:56:36.120Z`, milliseconds, as `Date.prototype.toISOString` writes it).
 * A session in UTC (the common server setting) takes the string path, with no Date; any other offset is
 * converted through one. Fractions past milliseconds are cut, as a JavaScript Date cuts them. ISO 8601 text
 * (`T`, `Z`), which a provider's driver may return, is read too.
 */
export function isoFromTimestamptz(text: string): string {
  const n = text.length
  // `YYYY-MM-DD HH:MM:SS[.f...]+00`: a four-digit year, UTC.
  if (n >= 22 && text.charCodeAt(10) === 32 && text.endsWith('+00') && text.charCodeAt(4) === 45) {
    const seconds = text.slice(11, 19)
    const fraction = n > 22 ? text.slice(20, Math.min(n - 3, 23)) : ''
    return `${text.slice(0, 10)}T${seconds}.${fraction.padEnd(3, '0')}Z`
  }
  return viaDate(text)
}

// The server's form (a space, `+hh[:mm[:ss]]`), and ISO 8601's (a `T`, `Z` or `+hh[:]mm`) that a provider's
// driver may hand back instead.
const TIMESTAMPTZ =
  /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:Z|([+-])(\d\d)(?::?(\d\d))?(?::(\d\d))?)$/

/**
 * A timestamp column as a driver returned it: a Date (node-postgres, PGlite) or text (a driver that leaves
 * types to the caller), in the server's form or ISO 8601's. Text never goes through `new Date(text)`, which
 * reads year 0099 as 1999.
 */
export function isoOf(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : isoFromTimestamptz(value)
}

function viaDate(text: string): string {
  const m = TIMESTAMPTZ.exec(text)
  if (m === null) {
    // Not DateStyle ISO (or a BC date or infinity, which the engine never writes): say so without the value.
    throw new Error(
      'a timestamptz came back in a form the store does not read; the session needs DateStyle ISO',
    )
  }
  const [, year, month, day, hour, minute, second, fraction = '', sign, oh = '0', om = '0', os = '0'] = m
  const offsetMs = (sign === '-' ? -1 : 1) * ((Number(oh) * 60 + Number(om)) * 60 + Number(os)) * 1000
  const utc = new Date(0)
  utc.setUTCFullYear(Number(year), Number(month) - 1, Number(day))
  utc.setUTCHours(Number(hour), Number(minute), Number(second), Number(fraction.slice(0, 3).padEnd(3, '0')))
  return new Date(utc.getTime() - offsetMs).toISOString()
}
