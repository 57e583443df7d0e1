// The NATS client (@nats-io/transport-node 3.4) leaks a socket for every dial it gives up before the server's
// INFO line: a broker that accepts TCP and never answers (frozen, or a proxy in front of a dead one). Its
// transport's close() ignores a connection that never completed, so the socket stays open and holds the
// process after every close; a reconnect loop against such a broker opens one more per attempt. This module
// connects through a transport that releases what it dialled whenever it is closed.
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

/**
 * `transport.connect(options)`, with each dial (the first and every reconnect) made by a transport that
 * releases its socket when the client gives it up. Falls back to the client's own connect when its transport
 * class is not where 3.4 keeps it (a later version may have moved or fixed it).
 */
export async function connectReleasing(
  transport: TransportModule,
  options: NodeConnectionOptions,
): Promise<NatsConnection> {
  const own = await import('@nats-io/transport-node/lib/node_transport.js').catch(() => undefined)
  const NodeTransport = own?.NodeTransport
  if (
    typeof NodeTransport !== 'function' ||
    typeof own?.nodeResolveHost !== 'function' ||
    typeof transport.setTransportFactory !== 'function' ||
    typeof transport.NatsConnectionImpl?.connect !== 'function'
  ) {
    return transport.connect(options)
  }
  const Releasing = releasingTransportClass(NodeTransport)
  // As transport.connect() does, with the releasing transport: the factory is process-wide, and every dial
  // reads it when it starts.
  transport.setTransportFactory({ factory: () => new Releasing(), dnsResolveFn: own.nodeResolveHost })
  return transport.NatsConnectionImpl.connect(options)
}
