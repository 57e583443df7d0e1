import assert from 'node:assert/strict'
import { AsyncLocalStorage } from 'node:async_hooks'
import { describe, test } from 'node:test'
import { type Tracer, trace } from '@opentelemetry/api'
import { ENGINE_SPANS, type SpanLike, type TracerLike } from '../../src/engine/tracing.js'
import { rejectsWith, setup } from './support.js'

// An @opentelemetry/api Tracer is accepted where the engine asks for one (checked by the type checker).
const _realTracerFits: TracerLike = trace.getTracer('type-check') satisfies Tracer

interface Recorded {
  name: string
  parent: string | null
  attributes: Record<string, unknown>
  status: { code: number; message?: string } | null
  ended: boolean
}

/** Records spans and which span was active when each started, as an SDK with a context manager would. */
function recordingTracer(): { tracer: TracerLike; spans: Recorded[] } {
  const spans: Recorded[] = []
  const active = new AsyncLocalStorage<Recorded>()
  const tracer = {
    startActiveSpan(name: string, fn: (span: SpanLike) => unknown) {
      const rec: Recorded = {
        name,
        parent: active.getStore()?.name ?? null,
        attributes: {},
        status: null,
        ended: false,
      }
      spans.push(rec)
      const span: SpanLike = {
        setAttribute: (k, v) => {
          rec.attributes[k] = v
        },
        setStatus: (s) => {
          rec.status = s
        },
        end: () => {
          rec.ended = true
        },
      }
      return active.run(rec, () => fn(span))
    },
  } as TracerLike
  return { tracer, spans }
}

describe('engine spans', () => {
  test('a use case runs in a span named after it, its unit of work in a child span, ids as attributes', async () => {
    const { tracer, spans } = recordingTracer()
    const { engine } = setup({ tracer })
    const tenant = await engine.createTenant('Acme Personal Name')
    const user = await engine.registerUser(tenant.id, { email: 'secret.person@example.com' })
    spans.length = 0
    await engine.getUser(tenant.id, user.id)
    await engine.disableUser(tenant.id, user.id)

    const names = spans.map((s) => `${s.parent ?? '-'} > ${s.name}`)
    assert.ok(names.includes('- > user_engine.getUser'), names.join('\n'))
    assert.ok(names.includes('- > user_engine.disableUser'), names.join('\n'))
    assert.ok(names.includes(`user_engine.disableUser > ${ENGINE_SPANS.unitOfWork}`), names.join('\n'))
    const disable = spans.find((s) => s.name === 'user_engine.disableUser')
    assert.deepEqual(disable?.attributes, {
      [ENGINE_SPANS.tenantId]: tenant.id,
      [ENGINE_SPANS.userId]: user.id,
    })
    const unit = spans.find((s) => s.name === ENGINE_SPANS.unitOfWork)
    assert.equal(unit?.attributes[ENGINE_SPANS.attempt], 1)
    assert.ok(
      spans.every((s) => s.ended && s.status === null),
      'every span ended, none failed',
    )
  })

  test('a failure records its code and an error status; values never become attributes', async () => {
    const { tracer, spans } = recordingTracer()
    const { engine } = setup({ tracer })
    const tenant = await engine.createTenant('Acme Personal Name')
    await engine.registerUser(tenant.id, { email: 'secret.person@example.com' })
    await rejectsWith(
      engine.registerUser(tenant.id, { email: 'secret.person@example.com' }),
      'DUPLICATE_IDENTIFIER',
    )
    await engine.findUserByEmail(tenant.id, 'secret.person@example.com')
    await rejectsWith(engine.getUser(tenant.id, 'not-an-id secret'), 'VALIDATION')

    const failed = spans
      .filter((s) => s.status !== null)
      .map((s) => [s.name, s.attributes[ENGINE_SPANS.errorCode]])
    assert.deepEqual(failed, [
      ['user_engine.registerUser', 'DUPLICATE_IDENTIFIER'],
      ['user_engine.unit_of_work', 'DUPLICATE_IDENTIFIER'],
      ['user_engine.getUser', 'VALIDATION'],
    ])
    assert.ok(spans.every((s) => s.status === null || s.status.code === 2))
    const text = JSON.stringify(spans)
    for (const value of ['secret.person', 'Acme', 'not-an-id']) assert.ok(!text.includes(value), value)
  })

  test('without a tracer nothing is wrapped; a tracer without startActiveSpan is refused', async () => {
    const { engine } = setup()
    assert.equal(Object.hasOwn(engine, 'getUser'), false)
    assert.throws(
      () => setup({ tracer: {} as TracerLike }),
      (e: Error & { code?: string }) => e.code === 'VALIDATION' && /startActiveSpan/.test(e.message),
    )
  })

  test('the OpenTelemetry API without an SDK (a no-op tracer) changes no result', async () => {
    const { engine } = setup({ tracer: trace.getTracer('user-engine-test') })
    const tenant = await engine.createTenant('Acme')
    const user = await engine.registerUser(tenant.id, { email: 'a@example.com' })
    assert.equal((await engine.getUser(tenant.id, user.id)).id, user.id)
  })
})
