/**
 * The label policy, judged in one place for every check that looks at labels
 * (smoke's label-policy, doctor's loki-labels and alloy-config-labels).
 *
 * Loki adds labels of its own: they are explained, never counted against the
 * policy, and their advice never points at the Alloy config, which did not
 * create them.
 */

import type { LabelPolicy } from '../config/settings.ts'
import { analyzeLabels } from '../loki/cardinality.ts'
import type { Labels, LokiClient } from '../loki/client.ts'
import { withinQueryLength } from '../loki/query-length.ts'
import { neutralize } from '../text.ts'
import type { Nanos } from '../time.ts'
import type { CheckOutcome } from './runner.ts'

/** A label and what is known of its use: Loki's APIs give values, series give streams too; a config file neither. */
export interface LabelUse {
  name: string
  values?: number
  streams?: number
}

export interface LokiOwnLabel {
  use: LabelUse
  /** What in Loki added it and what to make of it, for the report. */
  explanation: string
}

export type ViolationKind = 'forbidden' | 'not-allowed' | 'too-many-values'

export interface LabelViolation {
  use: LabelUse
  kind: ViolationKind
  problem: string
}

export interface LabelVerdict {
  /** The policy's labels as found, in the order given. */
  allowed: LabelUse[]
  violations: LabelViolation[]
  lokiOwn: LokiOwnLabel[]
}

const HIGH_CARDINALITY_GUIDE = 'runbooks/TROUBLESHOOTING.md#high-cardinality-labels'

const NOTHING_TO_REMOVE = 'nothing to change in Alloy'

/**
 * Labels Loki 3.6 adds by itself, with what adds them. detected_level is
 * structured metadata, not an index label: the labels and series APIs do not
 * list it (checked on a stock 3.6.2), but answers without the
 * categorize-labels flag merge it into each stream's labels.
 */
const LOKI_LABELS: Record<string, string> = {
  service_name:
    "added on ingest by limits_config.discover_service_name (copied from service, app, … or set to unknown_service); expected on a Loki with stock limits, and the stack's config turns it off with limits_config.discover_service_name: []",
  __stream_shard__: `added by stream sharding (limits_config.shard_streams): Loki split a stream faster than shard_streams.desired_rate so that its load spreads; expected under load and harmless, ${NOTHING_TO_REMOVE}`,
  __time_shard__: `added by time sharding (limits_config.shard_streams.time_sharding_enabled) so that Loki accepts lines far older than the stream's newest; harmless, ${NOTHING_TO_REMOVE}`,
  detected_level:
    "structured metadata Loki guesses from each line (limits_config.discover_log_levels), shown as a label only where an answer merges metadata into labels; not an index label, and the stack's config turns it off with limits_config.discover_log_levels: false",
}

/** Labels starting with __ are reserved: Alloy drops its own before it pushes, so those found in Loki are Loki's doing. */
export const RESERVED_PREFIX = '__'

/** What in Loki added this label, or undefined when the label is the pipeline's. */
export function lokiOwnExplanation(name: string): string | undefined {
  if (Object.hasOwn(LOKI_LABELS, name)) return LOKI_LABELS[name]
  if (name.startsWith(RESERVED_PREFIX)) return `Loki-internal (labels starting with ${RESERVED_PREFIX} are reserved for Loki), ${NOTHING_TO_REMOVE}`
  return undefined
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`

/** "reqId (12 values in 12 streams)", "reqId (23 values)", or just the name when nothing is known. */
function withUse(use: LabelUse): string {
  const known = [use.values === undefined ? '' : count(use.values, 'value'), use.streams === undefined ? '' : `in ${count(use.streams, 'stream')}`]
  const text = known.filter(Boolean).join(' ')
  return text ? `${use.name} (${text})` : use.name
}

/**
 * The labels of the streams `selector` matches, judged against the policy:
 * smoke's label-policy (the app's streams) and doctor's loki-labels (every
 * app's). From the series API, so each label comes with its values and the
 * streams that carry it, and Loki's shards can be told from the pipeline's
 * streams. Undefined when no stream matches; `labels` are the names found.
 */
export async function streamLabelsOutcome(
  loki: LokiClient,
  policy: LabelPolicy,
  selector: string,
  range: { start: Nanos; end: Nanos },
): Promise<{ outcome: CheckOutcome; labels: string[] } | undefined> {
  // A range longer than Loki's max_query_length: its most recent part, said in the detail (checks have no stderr of their own).
  const { value: series, cut } = await withinQueryLength(
    loki,
    range,
    (within) => loki.series([selector], within),
    () => {},
  )
  if (series.length === 0) return undefined
  const uses = analyzeLabels(series)
    .labels.map(({ label, uniqueValues, streams }) => ({ name: label, values: uniqueValues, streams }))
    .sort((a, b) => a.name.localeCompare(b.name))
  const created = pipelineStreams(series)
  const split = created === series.length ? '' : `, ${created} before Loki split them`
  const outcome = labelPolicyOutcome(judgeLabels(uses, policy), `${count(series.length, 'stream')} of ${neutralize(selector)}${split}${cut ? ` (${cut})` : ''}`)
  return { outcome, labels: uses.map((use) => use.name) }
}

/** How many streams the pipeline made: Loki's own labels (its shards) removed, the series that remain counted once. */
export function pipelineStreams(series: Labels[]): number {
  const pipelineLabels = (labels: Labels) =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([name]) => lokiOwnExplanation(name) === undefined)
        .sort(),
    )
  return new Set(series.map(pipelineLabels)).size
}

/** The policy's verdict on one label of the pipeline's own (Loki's own labels are not the policy's business). */
export function policyViolation(use: LabelUse, policy: LabelPolicy): LabelViolation | undefined {
  if (policy.forbiddenLabels.includes(use.name)) return { use, kind: 'forbidden', problem: `${withUse(use)} is a label; it must stay a JSON field` }
  if (!policy.allowedLabels.includes(use.name)) return { use, kind: 'not-allowed', problem: `${withUse(use)} is not an allowed label` }
  if ((use.values ?? 0) > policy.maxValuesPerLabel)
    return { use, kind: 'too-many-values', problem: `${withUse(use)} has more values than the limit of ${policy.maxValuesPerLabel}` }
  return undefined
}

/** Sorts labels found in Loki into the policy's, its violations, and Loki's own. */
export function judgeLabels(uses: LabelUse[], policy: LabelPolicy): LabelVerdict {
  const verdict: LabelVerdict = { allowed: [], violations: [], lokiOwn: [] }
  for (const use of uses) {
    const explanation = lokiOwnExplanation(use.name)
    const violation = explanation === undefined ? policyViolation(use, policy) : undefined
    if (explanation !== undefined) verdict.lokiOwn.push({ use, explanation })
    else if (violation) verdict.violations.push(violation)
    else verdict.allowed.push(use)
  }
  return verdict
}

/**
 * The check outcome both smoke and doctor report (scope says what was
 * looked at): a failure names each violation with its fix; Loki's own labels
 * are information either way.
 */
export function labelPolicyOutcome(verdict: LabelVerdict, scope: string): CheckOutcome {
  const notes = verdict.lokiOwn.map(({ use, explanation }) => `${withUse(use)} is Loki's own, ${explanation}`)
  const detail = (text: string) => [text, ...notes].join('; ')
  if (verdict.violations.length === 0) return { status: 'pass', detail: detail(`${scope}: labels ${verdict.allowed.map(withUse).join(', ')}`) }
  return {
    status: 'fail',
    detail: detail(
      `${verdict.violations.map((v) => v.problem).join('; ')} — every value of a label makes a new stream, which bloats Loki's index and memory and slows every query`,
    ),
    hint: violationHint(verdict.violations),
  }
}

/** The fix for each kind of violation found, once each. */
export function violationHint(violations: LabelViolation[]): string {
  const names = (kind: ViolationKind) => violations.filter((v) => v.kind === kind).map((v) => v.use.name)
  const created = [...names('forbidden'), ...names('not-allowed')]
  const crowded = names('too-many-values')
  const fixes: string[] = []
  if (created.length > 0) fixes.push(`remove the relabel rule or stage.labels entry that creates ${created.join(', ')} in the Alloy config; query such fields with | json instead`)
  if (crowded.length > 0)
    fixes.push(
      `${crowded.join(', ')} takes too many values: map the relabel rule's source to a fixed set of values, or raise policy.maxValuesPerLabel in obs.config.yaml if they are expected`,
    )
  return `${fixes.join('; ')} (${HIGH_CARDINALITY_GUIDE})`
}
