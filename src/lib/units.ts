/** Sizes as people write them: bytes in decimal units (GB = 10^9 bytes, as Loki's own figures). */

const UNITS: [string, number][] = [
  ['TB', 1e12],
  ['GB', 1e9],
  ['MB', 1e6],
  ['kB', 1e3],
]

/** "2.3 GB", "812 MB", "95 bytes". */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of UNITS) {
    if (bytes >= size) {
      const value = bytes / size
      return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${unit}`
    }
  }
  return `${Math.round(bytes)} bytes`
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|bytes?|kb|mb|gb|tb)?$/i

/** "10GB", "500 MB", "42" (bytes): undefined when it is not a size. */
export function parseBytes(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text : undefined
  const match = SIZE.exec(text.trim())
  if (!match) return undefined
  const unit = (match[2] ?? 'b').toLowerCase()
  const scale = unit.startsWith('b') ? 1 : (UNITS.find(([name]) => name.toLowerCase() === unit)?.[1] ?? 1)
  return Number(match[1]) * scale
}

/** 1234567 as "1,234,567". Not toLocaleString: loading Intl's locale data costs about 8 MB of memory. */
export function groupDigits(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}
