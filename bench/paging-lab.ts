/**
 * A lab for paging by hand: runs fetchLogPages from src/ (no build) against
 * LOKI_ADDR over [FROM, TO) and prints one line per request (sent and
 * answered relative to the start, window, limit, entries, in flight) and a
 * summary. Output is printed as obs -o raw would, to /dev/null.
 *
 *   LOKI_ADDR=… FROM=… TO=… QUERY='{app="bursty"}' PARALLEL=2 node_modules/.bin/node bench/paging-lab.ts
 */
import { createWriteStream } from 'node:fs'
import { LokiClient } from '../src/lib/loki/client.ts'

const { fetchLogPages } = (await import(process.env.LQ ?? '../src/lib/loki/paging.ts')) as typeof import('../src/lib/loki/paging.ts')

import { Chalk } from 'chalk'
import { EntryPrinter } from '../src/lib/render/output.ts'

const client = new LokiClient({ baseUrl: process.env.LOKI_ADDR!, headers: {}, timeoutMs: 60_000, retries: 2, peer: 'Loki' })
const t0 = performance.now()
let inFlight = 0
const rows: string[] = []
let requests = 0
let full = 0
let fetched = 0
const wrapped = {
  queryLimits: () => client.queryLimits(),
  queryRange: async (p: Parameters<LokiClient['queryRange']>[0]) => {
    const sent = performance.now() - t0
    inFlight++
    const mine = inFlight
    try {
      const data = await client.queryRange(p)
      const n = (data.result as { values: unknown[] }[]).reduce((s, r) => s + r.values.length, 0)
      requests++
      fetched += n
      if (n >= (p.limit ?? 0)) full++
      rows.push(
        `${sent.toFixed(0).padStart(6)} ${(performance.now() - t0).toFixed(0).padStart(6)} inflight=${mine} span=${(Number(p.end - p.start) / 1e9).toFixed(3).padStart(9)}s lim=${p.limit} n=${n}`,
      )
      return data
    } finally {
      inFlight--
    }
  },
}
const ns = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n
const printer = new EntryPrinter('raw', createWriteStream('/dev/null'), { chalk: new Chalk({ level: 0 }), pinnedLabels: [] } as never)
let lines = 0
let consumeMs = 0
for await (const page of fetchLogPages(wrapped, {
  query: process.env.QUERY ?? '{app="bursty"}',
  start: ns(process.env.FROM!),
  end: ns(process.env.TO!),
  direction: 'backward',
  limit: 0,
  batch: 5000,
  parallel: Number(process.env.PARALLEL ?? 2),
})) {
  const c = performance.now()
  await printer.page(page)
  consumeMs += performance.now() - c
  lines += page.length
}
await printer.end()
if (process.env.ROWS) process.stdout.write(`${rows.join('\n')}\n`)
process.stdout.write(`lines ${lines} requests ${requests} full ${full} fetched ${fetched} wall ${(performance.now() - t0).toFixed(0)}ms printer ${consumeMs.toFixed(0)}ms\n`)
process.exit(0)
