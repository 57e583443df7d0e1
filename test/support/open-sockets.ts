import { Socket } from 'node:net'

/** This process's open sockets to `port` (the client side of every connection made to it). */
export function socketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles()
  return handles.filter((h) => h instanceof Socket && h.remotePort === port && !h.destroyed).length
}
