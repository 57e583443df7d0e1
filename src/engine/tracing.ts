import { isUserEngineError } from '../domain/errors.js'

/**
 * Spans through OpenTelemetry, an optional peer dependency: pass `tracer: trace.getTracer('my-service')` from
 * `@opentelemetry/api` and each use case runs in a span `user_engine.<method>`, with each unit of work
 * (its reads and its store commit) in a child span `user_engine.unit_of_work`. Without a tracer nothing is
 * recorded and nothing is loaded.
 *
 * Attributes are ids and codes only: the tenant and user id when the caller passed ids in the shape the
 * engine issues, the attempt number of a unit of work, and the error code of a failure. Never an identifier,
 * name, payload or secret: an argument that is not an issued id is left out.
 *
 * The types are the part of the OpenTelemetry API the engine calls, written structurally so the package
 * compiles and runs without it; an `@opentelemetry/api` Tracer satisfies `TracerLike`.
 */
export type SpanAttributeValue = string | number | boolean

export interface SpanLike {
  setAttribute(key: string, value: SpanAttributeValue): unknown
  setStatus(status: { code: number; message?: string }): unknown
  end(): void
}

export interface TracerLike {
  startActiveSpan<F extends (span: SpanLike) => unknown>(name: string, fn: F): ReturnType<F>
}

/** The span and attribute names, as documented in docs/operations.md. */
export const ENGINE_SPANS = {
  useCasePrefix: 'user_engine.',
  unitOfWork: 'user_engine.unit_of_work',
  tenantId: 'user_engine.tenant_id',
  userId: 'user_engine.user_id',
  attempt: 'user_engine.attempt',
  errorCode: 'user_engine.error_code',
} as const

// SpanStatusCode.ERROR in @opentelemetry/api.
const STATUS_ERROR = 2
const ISSUED = /^([a-z]{2,8})_[0-9a-f]{32}$/

/** Runs `fn` in a span when there is a tracer; a failure records its code (UNEXPECTED for a non-library error). */
export function inSpan<T>(
  tracer: TracerLike | null,
  name: string,
  attributes: Readonly<Record<string, SpanAttributeValue>>,
  fn: () => Promise<T>,
): Promise<T> {
  if (tracer === null) return fn()
  return tracer.startActiveSpan(name, async (span: SpanLike) => {
    for (const [key, value] of Object.entries(attributes)) span.setAttribute(key, value)
    try {
      return await fn()
    } catch (error) {
      const code = isUserEngineError(error) ? error.code : 'UNEXPECTED'
      span.setAttribute(ENGINE_SPANS.errorCode, code)
      span.setStatus({ code: STATUS_ERROR, message: code })
      throw error
    } finally {
      span.end()
    }
  })
}

/** The id attributes of a use case's arguments: a tenant id first, then a user id, when issued-shaped. */
export function idAttributes(args: readonly unknown[]): Record<string, SpanAttributeValue> {
  const attributes: Record<string, SpanAttributeValue> = {}
  for (const arg of args.slice(0, 2)) {
    const prefix = typeof arg === 'string' ? ISSUED.exec(arg)?.[1] : undefined
    if (prefix === 'ten') attributes[ENGINE_SPANS.tenantId] = arg as string
    if (prefix === 'usr') attributes[ENGINE_SPANS.userId] = arg as string
  }
  return attributes
}

/**
 * Puts each async method of the engine's class behind a span named after it, on this instance only. Done
 * once here rather than in each of the facade's methods, so a new use case cannot be added without its span.
 */
export function traceUseCases(engine: object, tracer: TracerLike): void {
  const prototype = Object.getPrototypeOf(engine) as Record<string, unknown>
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const method = prototype[name]
    if (typeof method !== 'function' || method.constructor.name !== 'AsyncFunction') continue
    const spanName = `${ENGINE_SPANS.useCasePrefix}${name}`
    Object.defineProperty(engine, name, {
      value: (...args: unknown[]) =>
        inSpan(tracer, spanName, idAttributes(args), () => method.apply(engine, args) as Promise<unknown>),
      writable: false,
      enumerable: false,
      configurable: false,
    })
  }
}

/** options.tracer: absent, or an object with a startActiveSpan function. */
export function isTracer(value: unknown): value is TracerLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { startActiveSpan?: unknown }).startActiveSpan === 'function'
  )
}
