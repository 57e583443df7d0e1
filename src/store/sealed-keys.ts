/** What `diagnostics().sealedByKeyId` names a stored key id that is not shaped like an id. */
export const INVALID_KEY_ID = '(invalid)'

const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

/**
 * Sums per-key counts into `sealedByKeyId`, in key id order. Only a value shaped like an id becomes a key:
 * diagnostics hold names and counts, never a stored value that could be anything.
 */
export function countSealedByKeyId(
  rows: Iterable<{ readonly keyId: unknown; readonly n: number | string }>,
): Readonly<Record<string, number>> {
  const out = new Map<string, number>()
  for (const { keyId, n } of rows) {
    const name = typeof keyId === 'string' && KEY_ID.test(keyId) ? keyId : INVALID_KEY_ID
    out.set(name, (out.get(name) ?? 0) + Number(n))
  }
  return Object.freeze(Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))
}
