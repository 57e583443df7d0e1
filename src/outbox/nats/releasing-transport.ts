// The NATS client (@nats-io/transport-node 3.4) leaks a socket for every dial it gives up before the server's
// INFO line: a broker that accepts TCP and never answers (frozen, or a proxy in front of a dead one). Its
// transport's close() ignores a connection that never completed, so the socket stays open and holds the
// process after every close; a reconnect loop against such a broker opens one more per attempt. This module
// connects through a transport that releases what it dialled whenever it is closed.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node'

type TransportModule = typeof import('@nats-io/transport-node')
type NodeTransportModule = typeof import('@nats-io/transport-node/lib/node_transport.js')
type NodeTransportClass = NodeTransportModule['NodeTransport']
type Socket = Awaited<ReturnType<InstanceType<NodeTransportClass>['dial']>>

/** A dial the transport gave up on while it was under way; the socket is gone. */
const GIVEN_UP = 'the NATS dial was given up'

function releasingTransportClass(NodeTransport: NodeTransportClass) {
  return class ReleasingTransport extends NodeTransport {
    #givenUp = false
    /** Ends a connect still under way (it waits for an INFO line that will not come) once closed. */
    #abandon: ((error: Error) => void) | undefined

    override connect(...args: Parameters<InstanceType<NodeTransportClass>['connect']>): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        this.#abandon = reject
        super.connect(...args).then(resolve, reject)
      })
    }

    /** A socket that connects after close() (a slow SYN, a slow TLS handshake) is destroyed, not kept. */
    #keep<S extends Socket>(socket: S): S {
      if (!this.#givenUp) return socket
      socket.destroy()
      throw new Error(GIVEN_UP)
    }

    override async dial(hp: Parameters<InstanceType<NodeTransportClass>['dial']>[0]) {
      return this.#keep(await super.dial(hp))
    }

    override async tlsFirst(hp: Parameters<InstanceType<NodeTransportClass>['tlsFirst']>[0]) {
      return this.#keep(await super.tlsFirst(hp))
    }

    override close(err?: Error): Promise<void> {
      if (!this.connected) {
        this.#givenUp = true
        this.socket?.destroy()
        this.#abandon?.(new Error(GIVEN_UP))
      }
      return super.close(err)
    }
  }
}

/** The client's transport class, extended; undefined where 3.4 kept it no longer. */
async function extendTransport() {
  const own = await import('@nats-io/transport-node/lib/node_transport.js').catch(() => undefined)
  if (typeof own?.NodeTransport !== 'function' || typeof own.nodeResolveHost !== 'function') return undefined
  return { Releasing: releasingTransportClass(own.NodeTransport), nodeResolveHost: own.nodeResolveHost }
}
let extended: ReturnType<typeof extendTransport> | undefined
/** Extended once per process: every connect and reconnect shares the class. */
const releasingTransport = () => {
  extended ??= extendTransport()
  return extended
}

/** The dials of one connect() call: the factory is process-wide, so each dial finds its call through this. */
interface Dials {
  readonly open: Set<{ readonly connected: boolean; close(): Promise<void> }>
  abandoned: boolean
  /** The call returned: later dials (reconnects, which run in its context too) are the connection's own. */
  settled: boolean
}
const dialsOfCall = new AsyncLocalStorage<Dials>()

/**
 * `transport.connect(options)`, with each dial (the first and every reconnect) made by a transport that
 * releases its socket when the client gives it up. `signal` abandons the connect while it is under way: its
 * dial is closed (and any later one at once), so it fails now instead of after its timeout. Falls back to the
 * client's own connect when its transport class is not where 3.4 keeps it (a later version may have moved or
 * fixed it).
 */
export async function connectReleasing(
  transport: TransportModule,
  options: NodeConnectionOptions,
  signal?: AbortSignal,
): Promise<NatsConnection> {
  const own = await releasingTransport()
  if (
    own === undefined ||
    typeof transport.setTransportFactory !== 'function' ||
    typeof transport.NatsConnectionImpl?.connect !== 'function'
  ) {
    return transport.connect(options)
  }
  const { Releasing, nodeResolveHost } = own
  // As transport.connect() does, with the releasing transport: the factory is process-wide, and every dial
  // reads it when it starts.
  transport.setTransportFactory({
    factory: () => {
      const dial = new Releasing()
      const dials = dialsOfCall.getStore()
      if (dials?.abandoned) void dial.close()
      else if (dials?.settled === false) dials.open.add(dial)
      return dial
    },
    dnsResolveFn: nodeResolveHost,
  })
  const dials: Dials = { open: new Set(), abandoned: false, settled: false }
  const abandon = () => {
    dials.abandoned = true
    for (const dial of dials.open) if (!dial.connected) void dial.close()
  }
  if (signal?.aborted) abandon()
  signal?.addEventListener('abort', abandon, { once: true })
  try {
    return await dialsOfCall.run(dials, () => transport.NatsConnectionImpl.connect(options))
  } finally {
    signal?.removeEventListener('abort', abandon)
    dials.settled = true
    dials.open.clear()
  }
}
