// The NATS server URLs a publisher is given: read as the NATS client reads them, with their credentials
// (user:pass@ or token@) taken out for the connection, so that no URL handed on carries a password.

import { plainList } from '../../domain/caller-values.js'
import { ValidationError } from '../../domain/errors.js'
import type { JetStreamPublisherOptions } from './jetstream-publisher.js'

/** More seed servers than a cluster has nodes is a mistake, not a topology. */
const MAX_SERVERS = 64

type NatsConnectionOption = JetStreamPublisherOptions['connection']

/** Connection credentials taken from a server URL's user information. */
export type UrlCredentials = { readonly user: string; readonly pass: string } | { readonly token: string }

const invalidServer = (index: number) =>
  new ValidationError(
    `servers[${index}] is not a NATS server URL ([nats://][user:pass@ or token@]host[:port], percent-encoded)`,
    { details: { field: 'servers', index } },
  )

/**
 * Whether the NATS client can read `hostPort`, as its own parser does: a bare IPv6 address is bracketed, then
 * the whole is read as an http URL (a port above 65535 or a stray bracket fails there).
 */
function readableHostPort(hostPort: string): boolean {
  if (hostPort.trim() === '') return false
  const bareIpv6 =
    !hostPort.includes('[') &&
    (hostPort.includes('::') || (!hostPort.includes('.') && hostPort.split(':').length > 2))
  return URL.canParse(`http://${bareIpv6 ? `[${hostPort}]` : hostPort}`)
}

/** `user:pass` or `token`, percent-decoded; undefined when malformed. */
function credentialsOf(userInfo: string): UrlCredentials | undefined {
  try {
    const colon = userInfo.indexOf(':')
    if (colon < 0) return { token: decodeURIComponent(userInfo) }
    const user = decodeURIComponent(userInfo.slice(0, colon))
    return user === '' ? undefined : { user, pass: decodeURIComponent(userInfo.slice(colon + 1)) }
  } catch {
    return undefined
  }
}

/**
 * One server as the NATS client takes it, without its user information (the client ignores it), and the
 * credentials that held. VALIDATION names the index only: the URL may hold a password.
 */
function parseServer(value: unknown, index: number): { server: string; credentials?: UrlCredentials } {
  if (typeof value !== 'string') throw invalidServer(index)
  const trimmed = value.trim()
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(trimmed)?.[0] ?? ''
  const rest = trimmed.slice(scheme.length)
  const authorityEnd = rest.search(/[/?#]/)
  // The last '@' of the authority ends the user information, as URL parsers take it.
  const at = (authorityEnd < 0 ? rest : rest.slice(0, authorityEnd)).lastIndexOf('@')
  const hostPort = rest.slice(at + 1)
  if (!readableHostPort(hostPort)) throw invalidServer(index)
  if (at <= 0) return { server: `${scheme}${hostPort}` }
  const credentials = credentialsOf(rest.slice(0, at))
  if (credentials === undefined) throw invalidServer(index)
  return { server: `${scheme}${hostPort}`, credentials }
}

/**
 * The servers for the NATS client and the credentials their URLs carry (the same for every server that has
 * any). Credentials both in a URL and in `connection` are refused: which would win is not obvious.
 */
export function natsServers(
  servers: unknown,
  connection: NatsConnectionOption,
): { servers: string[]; credentials: UrlCredentials | undefined } {
  const message = `servers must be a NATS server URL or a non-empty array of at most ${MAX_SERVERS}`
  const list = typeof servers === 'string' ? [servers] : plainList(servers, 'servers', MAX_SERVERS, message)
  if (list.length === 0) throw new ValidationError(message, { details: { field: 'servers' } })
  const parsed = list.map(parseServer)
  const given = parsed.flatMap((p) => (p.credentials ? [JSON.stringify(p.credentials)] : []))
  if (new Set(given).size > 1) {
    throw new ValidationError('the server URLs carry different credentials; give one set', {
      details: { field: 'servers' },
    })
  }
  const c = connection as { user?: unknown; pass?: unknown; token?: unknown; authenticator?: unknown }
  if (given.length > 0 && [c?.user, c?.pass, c?.token, c?.authenticator].some((v) => v !== undefined)) {
    throw new ValidationError(
      'credentials are given both in a server URL and in connection; give them once',
      {
        details: { field: 'servers' },
      },
    )
  }
  return { servers: parsed.map((p) => p.server), credentials: parsed.find((p) => p.credentials)?.credentials }
}

/** The passwords and tokens a publisher was given: masked wherever a broker error might quote them. */
export function secretsOf(
  credentials: UrlCredentials | undefined,
  connection: NatsConnectionOption,
): string[] {
  const c = { ...(connection as { pass?: unknown; token?: unknown }), ...credentials }
  return [c.pass, c.token].filter((s): s is string => typeof s === 'string' && s.length > 0)
}
