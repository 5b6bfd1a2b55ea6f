import type { Labels } from './client.ts'

export interface LabelStats {
  label: string
  /** Distinct values of the label across the streams. */
  uniqueValues: number
  /** Streams that carry the label. */
  streams: number
  /** A few of the values, most frequent first, for reports. */
  sampleValues: string[]
}

export interface CardinalityReport {
  totalStreams: number
  labels: LabelStats[]
}

/** Counts, per label, its distinct values and the streams carrying it; the highest cardinality first. */
export function analyzeLabels(series: Labels[]): CardinalityReport {
  const byLabel = new Map<string, Map<string, number>>()
  for (const labels of series) {
    for (const [name, value] of Object.entries(labels)) {
      const values = byLabel.get(name) ?? new Map<string, number>()
      byLabel.set(name, values)
      values.set(value, (values.get(value) ?? 0) + 1)
    }
  }
  const labels = [...byLabel].map(([label, values]) => ({
    label,
    uniqueValues: values.size,
    streams: [...values.values()].reduce((sum, n) => sum + n, 0),
    sampleValues: [...values]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 5)
      .map(([value]) => value),
  }))
  labels.sort((a, b) => b.uniqueValues - a.uniqueValues || b.streams - a.streams || a.label.localeCompare(b.label))
  return { totalStreams: series.length, labels }
}
