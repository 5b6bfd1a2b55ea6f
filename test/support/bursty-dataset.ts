/**
 * A reproducible pino-style dataset of uneven density, the kind that makes a
 * pager that sizes windows by density waste requests: a steady base rate,
 * two spikes at 100× that rate, two quiet gaps without a line, and groups of
 * lines that share one nanosecond across streams, larger than a small batch
 * (the first in the middle of the span, where `--parallel 2` cuts the range,
 * the second at the very start of a spike).
 *
 * Every line carries `seq`, its index in time order, so an export can be
 * checked for lost and repeated lines by that field alone (the benchmark does).
 */
import { mulberry32, type TruthEntry } from './dataset.ts'

export const BURSTY_APP = 'bursty'

export interface BurstyOptions {
  seed: number
  /** The span is [startNs, startNs + spanNs). */
  startNs: bigint
  spanNs: bigint
  /** Lines at the base rate; the spikes add three times as many. */
  baseLines: number
  /** Sizes of the same-nanosecond groups, placed at GROUP_AT in turn. */
  groups: number[]
}

/** Parts of the span, as fractions of it. */
export const BURSTY_SHAPE = {
  gaps: [
    [0.2, 0.3],
    [0.62, 0.7],
  ],
  /** 100× the base rate: the first holds twice the base lines, the second as many. */
  spikes: [
    [0.4, 0.42],
    [0.85, 0.86],
  ],
  /** In turn: the middle, the start of the first spike, then spread over the rest. */
  groupAt: [0.5, 0.4, 0.1, 0.75, 0.95, 0.45, 0.55, 0.6, 0.72, 0.78, 0.8, 0.82, 0.47, 0.52, 0.57],
} as const

const SPIKE_FACTOR = 100
const SERVICES = ['gateway', 'app', 'worker'] as const
const MESSAGES = ['request received', 'handling request', 'cache miss', 'db query finished', 'job picked up', 'request completed']

export function generateBurstyDataset(options: BurstyOptions): TruthEntry[] {
  const random = mulberry32(options.seed)
  const { startNs, spanNs } = options
  const at = (fraction: number) => startNs + BigInt(Math.floor(Number(spanNs) * fraction))
  const inGap = (ts: bigint) => BURSTY_SHAPE.gaps.some(([from, to]) => ts >= at(from) && ts < at(to))
  const stamps: { ts: bigint; service: string; stream: string }[] = []
  const service = () => SERVICES[Math.floor(random() * SERVICES.length)]
  const stream = () => (random() < 0.1 ? 'stderr' : 'stdout')
  const uniform = (from: number, to: number) => at(from) + BigInt(Math.floor(random() * Number(at(to) - at(from))))

  for (let i = 0; i < options.baseLines; i++) {
    const ts = uniform(0, 1)
    // A line that falls in a quiet gap is not written: the gaps stay silent.
    if (!inGap(ts)) stamps.push({ ts, service: service(), stream: stream() })
  }
  for (const [from, to] of BURSTY_SHAPE.spikes) {
    const lines = Math.round(options.baseLines * SPIKE_FACTOR * (to - from))
    for (let i = 0; i < lines; i++) stamps.push({ ts: uniform(from, to), service: service(), stream: stream() })
  }
  options.groups.forEach((size, i) => {
    const ts = at(BURSTY_SHAPE.groupAt[i % BURSTY_SHAPE.groupAt.length])
    for (let k = 0; k < size; k++) stamps.push({ ts, service: SERVICES[k % SERVICES.length], stream: k % 7 === 6 ? 'stderr' : 'stdout' })
  })
  stamps.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0))

  return stamps.map(({ ts, service, stream }, seq) => ({
    labels: { app: BURSTY_APP, env: 'test', service, stream },
    ts: ts.toString(),
    line: JSON.stringify({
      level: stream === 'stderr' ? 'error' : 'info',
      time: Number(ts / 1_000_000n),
      pid: 1,
      hostname: `${service}-1`,
      reqId: `req-${Math.floor(random() * 1e9).toString(36)}`,
      msg: MESSAGES[Math.floor(random() * MESSAGES.length)],
      seq,
    }),
  }))
}
