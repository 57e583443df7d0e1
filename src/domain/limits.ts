/** Input limits. Every public entry point checks against these before touching a store. */
export const LIMITS = {
  idLength: 64,
  tenantNameLength: 200,
  emailLength: 254,
  usernameLength: 64,
  passwordMinLength: 8,
  passwordMaxLength: 256,
  profileKeys: 64,
  profileKeyLength: 64,
  profileStringLength: 2048,
  profileBytes: 16 * 1024,
  pageSizeMax: 500,
  auditActionLength: 100,
  eventTypeLength: 100,
  eventPayloadBytes: 16 * 1024,
  /** A request context's user agent is cut to this many characters (a client chooses its header). */
  userAgentLength: 512,
} as const
