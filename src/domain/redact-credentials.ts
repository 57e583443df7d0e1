// Credentials in free text (an error message from a driver or a broker client, which may quote the URL it was
// given): the one masking the relay's errors and the CLI's error output share.

// 'nats://user:pass@host' or 'tls://token@host': everything between the scheme and the last '@' of the
// authority. Then 'user:pass@host' without a scheme, which the NATS client accepts, and secret query values.
const SCHEME_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#'"`]*@/gi
const BARE_USERINFO = /[^\s:@/'"`]+:[^\s@/'"`]*@(?=[^\s'"`])/g
const SECRET_PARAM = /([?&][^=&\s]*(?:pass|token|secret|key)[^=&\s]*=)[^&#\s'"`]*/gi

/**
 * `text` with URL credentials masked (user information, secret query parameters) and every one of `secrets`
 * (passwords and tokens the caller knows it was given) replaced, wherever it appears.
 */
export function redactCredentials(text: string, secrets: readonly string[] = []): string {
  let out = text
    .replace(SCHEME_USERINFO, '$1***@')
    .replace(BARE_USERINFO, '***@')
    .replace(SECRET_PARAM, '$1***')
  // Longest first, so a secret holding another is masked whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) out = out.split(secret).join('***')
  }
  return out
}
