import { randomBytes } from 'node:crypto'

/**
 * Time-ordered ids (UUIDv7 layout, hex without dashes) behind a short type prefix. Ordered ids keep
 * B-tree inserts local and give listings a stable order without a second sort key.
 */
let lastMs = 0
let counter = 0

export function newId(prefix: string): string {
  let ms = Date.now()
  if (ms <= lastMs) {
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      ms = ++lastMs
      counter = 0
    }
  } else {
    counter = 0
  }
  lastMs = ms
  const rand = randomBytes(8).toString('hex')
  const time = ms.toString(16).padStart(12, '0')
  const seq = (0x7000 | counter).toString(16)
  return `${prefix}_${time}${seq}${rand}`
}
