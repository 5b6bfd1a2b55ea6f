/** One sample of Prometheus's text exposition format. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Parses the samples of the named metrics (all when no names are given). */
export function parseMetrics(text: string, names?: string[]): Sample[] {
  const wanted = names ? new Set(names) : undefined
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = SAMPLE.exec(line)
    if (!match || (wanted && !wanted.has(match[1]))) continue
    const labels: Record<string, string> = {}
    for (const [, name, value] of (match[2] ?? '').matchAll(LABEL)) labels[name] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    samples.push({ name: match[1], labels, value: Number(match[3]) })
  }
  return samples
}

/** Sums samples of one metric, grouped by one label. */
export function sumBy(samples: Sample[], name: string, label: string): Map<string, number> {
  const sums = new Map<string, number>()
  for (const sample of samples) {
    if (sample.name !== name) continue
    const key = sample.labels[label] ?? ''
    sums.set(key, (sums.get(key) ?? 0) + sample.value)
  }
  return sums
}
