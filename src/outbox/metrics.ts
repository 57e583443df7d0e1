/**
 * Relay and outbox metrics through OpenTelemetry, an optional peer dependency: with `@opentelemetry/api`
 * installed (and an SDK registered by the application), the relay records through the global meter
 * provider; without it, or with `metrics: false`, nothing is recorded and nothing is loaded.
 *
 * The types below are the part of the OpenTelemetry API the relay calls, written structurally so this package
 * compiles and runs without it; an `@opentelemetry/api` Meter satisfies `MeterLike`.
 */
type Attributes = Readonly<Record<string, string | number | boolean>>

export interface CounterLike {
  add(value: number, attributes?: Attributes): void
}
export interface HistogramLike {
  record(value: number, attributes?: Attributes): void
}
export interface ObservableResultLike {
  observe(value: number, attributes?: Attributes): void
}
export interface ObservableGaugeLike {
  addCallback(callback: (result: ObservableResultLike) => void): void
  removeCallback(callback: (result: ObservableResultLike) => void): void
}
interface InstrumentOptions {
  readonly description?: string
  readonly unit?: string
}
export interface MeterLike {
  createCounter(name: string, options?: InstrumentOptions): CounterLike
  createHistogram(name: string, options?: InstrumentOptions): HistogramLike
  createObservableGauge(name: string, options?: InstrumentOptions): ObservableGaugeLike
}

/** The metric names, as documented in docs/outbox.md. Counts and durations only: no tenant or event ids. */
export const RELAY_METRICS = {
  published: 'user_engine.relay.events.published',
  retried: 'user_engine.relay.events.retried',
  dead: 'user_engine.relay.events.dead',
  lostLeases: 'user_engine.relay.events.lost_leases',
  released: 'user_engine.relay.events.released',
  publishDuration: 'user_engine.relay.publish.duration',
  deliveryLatency: 'user_engine.relay.delivery.latency',
  brokerUp: 'user_engine.relay.broker.up',
  pending: 'user_engine.outbox.pending',
  deadInOutbox: 'user_engine.outbox.dead',
  oldestPendingAge: 'user_engine.outbox.oldest_pending_age',
} as const

/** What the relay records; a no-op when metrics are off. */
export interface RelayInstruments {
  count(kind: 'published' | 'retried' | 'dead' | 'lostLeases' | 'released', n: number): void
  /** One publish, from call to broker acknowledgement. */
  publishDuration(ms: number): void
  /** An event's commit (occurredAt) to its publish acknowledged by the broker. */
  deliveryLatency(ms: number): void
  /** Detaches the gauges' callbacks. */
  close(): void
}

export interface GaugeSource {
  brokerUp(): boolean
  lag(): { pending: number; dead: number; oldestPendingAgeMs: number } | null
}

const NOOP: RelayInstruments = {
  count: () => {},
  publishDuration: () => {},
  deliveryLatency: () => {},
  close: () => {},
}

/**
 * Resolves the relay's `metrics` option: a Meter is used as is; 'auto' loads `@opentelemetry/api` and asks
 * its global provider for the `user-engine` meter (a no-op meter until the application registers an SDK);
 * false, or 'auto' without the package, records nothing.
 */
export async function loadMeter(option: MeterLike | 'auto' | false): Promise<MeterLike | null> {
  if (option === false) return null
  if (option !== 'auto') return option
  try {
    const api = (await import('@opentelemetry/api')) as unknown as {
      metrics: { getMeter(name: string): MeterLike }
    }
    return api.metrics.getMeter('user-engine')
  } catch {
    return null
  }
}

export function relayInstruments(
  meter: MeterLike | null,
  owner: string,
  source: GaugeSource,
): RelayInstruments {
  if (meter === null) return NOOP
  const attributes = { 'relay.owner': owner }
  const counters = {
    published: meter.createCounter(RELAY_METRICS.published, {
      description: 'Events published and acknowledged by this relay',
      unit: '{event}',
    }),
    retried: meter.createCounter(RELAY_METRICS.retried, {
      description: 'Failed publishes that left the event pending for a retry after backoff',
      unit: '{event}',
    }),
    dead: meter.createCounter(RELAY_METRICS.dead, {
      description: 'Failed publishes that made the event dead (maxAttempts reached)',
      unit: '{event}',
    }),
    lostLeases: meter.createCounter(RELAY_METRICS.lostLeases, {
      description: 'Events published or failed after this relay lost their lease',
      unit: '{event}',
    }),
    released: meter.createCounter(RELAY_METRICS.released, {
      description: 'Claimed events given back unpublished (stop, lease deadline, broker unreachable)',
      unit: '{event}',
    }),
  }
  const publish = meter.createHistogram(RELAY_METRICS.publishDuration, {
    description: 'One publish, from the call to the broker acknowledgement',
    unit: 'ms',
  })
  const latency = meter.createHistogram(RELAY_METRICS.deliveryLatency, {
    description: "An event's commit to its publish acknowledged by the broker",
    unit: 'ms',
  })
  const gauges: [ObservableGaugeLike, (r: ObservableResultLike) => void][] = []
  const gauge = (name: string, description: string, unit: string, read: () => number | null) => {
    const g = meter.createObservableGauge(name, { description, unit })
    const callback = (r: ObservableResultLike) => {
      const value = read()
      if (value !== null) r.observe(value, attributes)
    }
    g.addCallback(callback)
    gauges.push([g, callback])
  }
  gauge(RELAY_METRICS.brokerUp, '1 while the broker is reachable, 0 while the relay pauses', '1', () =>
    source.brokerUp() ? 1 : 0,
  )
  gauge(
    RELAY_METRICS.pending,
    'Pending events in the outbox (all tenants)',
    '{event}',
    () => source.lag()?.pending ?? null,
  )
  gauge(
    RELAY_METRICS.deadInOutbox,
    'Dead events waiting for an operator',
    '{event}',
    () => source.lag()?.dead ?? null,
  )
  gauge(RELAY_METRICS.oldestPendingAge, 'Age of the oldest pending event', 'ms', () =>
    source.lag() === null ? null : source.lag()!.oldestPendingAgeMs,
  )
  return {
    count: (kind, n) => {
      if (n > 0) counters[kind].add(n, attributes)
    },
    publishDuration: (ms) => publish.record(ms, attributes),
    deliveryLatency: (ms) => latency.record(Math.max(0, ms), attributes),
    close: () => {
      for (const [g, callback] of gauges) g.removeCallback(callback)
    },
  }
}
