import { formatDistanceStrict } from 'date-fns/formatDistanceStrict'
import { type AlloyClient, discoveredTargets, dockerTargets } from '../alloy/client.ts'
import type { AppIdentity, LabelPolicy } from '../config/settings.ts'
import { findTrace } from '../incident/trace.ts'
import type { LokiClient } from '../loki/client.ts'
import { streamSelector } from '../loki/logql.ts'
import { fetchLogPages, type LogEntry } from '../loki/paging.ts'
import { neutralize } from '../text.ts'
import type { Nanos } from '../time.ts'
import { streamLabelsOutcome } from './label-policy.ts'
import { PROBE_MARKER_PREFIX } from './probe.ts'
import { type Check, type CheckOutcome, lokiReadyCheck } from './runner.ts'

export interface SmokeContext {
  loki: LokiClient
  /** Absent when the user opted out of the Alloy check. */
  alloy?: AlloyClient
  identity: AppIdentity
  policy: LabelPolicy
  since: string
  sinceNs: Nanos
  now: () => Nanos
}

const REQUIRED_FIELDS = ['level', 'msg', 'reqId', 'time'] as const
const SAMPLE_SIZE = 10

/** The design doc's validation checklist, one check per item, with the contract's ids. */
export function smokeChecks(context: SmokeContext): Check[] {
  const { loki, identity } = context
  const appSelector = streamSelector({ app: identity.app, env: identity.env })
  const serviceSelector = streamSelector({ app: identity.app, env: identity.env, service: identity.service })
  // The selectors carry --app, --service and --env as typed: quoting keeps C1 controls and bidi overrides, so messages show them neutralised.
  const [appShown, serviceShown] = [neutralize(appSelector), neutralize(serviceSelector)]
  const range = () => ({ start: context.now() - context.sinceNs, end: context.now() })
  const recent = async (query: string, limit: number): Promise<LogEntry[]> => {
    const entries: LogEntry[] = []
    for await (const page of fetchLogPages(loki, { query, ...range(), direction: 'backward', limit, batch: 5000 })) entries.push(...page)
    return entries
  }

  return [
    lokiReadyCheck(loki),
    {
      id: 'logs-ingested',
      title: `Query 1: logs arrive for ${appShown}`,
      async run(): Promise<CheckOutcome> {
        const query = `sum(count_over_time(${appSelector}[${context.since}]))`
        const data = await loki.queryInstant({ query, time: context.now() })
        const count = data.resultType === 'vector' ? Number(data.result[0]?.value?.[1] ?? 0) : 0
        if (count > 0) return { status: 'pass', detail: `${count} lines in the last ${context.since}` }
        return {
          status: 'fail',
          detail: `no lines from ${appShown} in the last ${context.since}`,
          hint: 'check that the app is logging (docker logs app), that Alloy discovered it (obs doctor), and that APP_ENV is set; right after a deploy, retry with --wait 60s',
        }
      },
    },
    {
      id: 'service-logs-json',
      title: `Query 2: recent lines of ${serviceShown} are JSON with ${REQUIRED_FIELDS.join(', ')}`,
      async run(): Promise<CheckOutcome> {
        const entries = await recent(serviceSelector, SAMPLE_SIZE)
        if (entries.length === 0) {
          return { status: 'fail', detail: `no lines from ${serviceShown} in the last ${context.since}`, hint: `check the service name (--service) and that it is running` }
        }
        const problems: string[] = []
        // A Node app under Docker prints the odd plain line (a stack trace an uncaught error wrote, a library's warning); a few are life, most are a logger set up wrong.
        const plain: string[] = []
        let reqId: string | undefined
        for (const entry of entries) {
          let fields: Record<string, unknown>
          try {
            fields = JSON.parse(entry.line) as Record<string, unknown>
          } catch {
            plain.push(entry.line.slice(0, 80))
            continue
          }
          const missing = REQUIRED_FIELDS.filter((name) => name !== 'reqId' && fields[name] === undefined)
          if (missing.length > 0) problems.push(`missing ${missing.join(', ')}: ${entry.line.slice(0, 80)}`)
          // The oldest request of the sample (lines come newest first) has had the longest to reach Loki from every service.
          // The probe's marker (smoke --probe, running alongside) is obs's line, not a request of the app.
          if (typeof fields.reqId === 'string' && fields.reqId !== '' && !fields.reqId.startsWith(PROBE_MARKER_PREFIX)) reqId = fields.reqId
        }
        if (plain.length * 2 > entries.length) problems.unshift(...plain.map((line) => `not JSON: ${line}`))
        const newest = new Date(Number(BigInt(entries[0].ts) / 1_000_000n))
        const age = formatDistanceStrict(newest, new Date(Number(context.now() / 1_000_000n)), { addSuffix: true })
        if (problems.length > 0) {
          return {
            status: 'fail',
            detail: `${problems.length} of ${entries.length} recent lines are not pino JSON with level, msg, time; first: ${problems[0]}`,
            hint: 'log with pino to stdout as JSON (no pino-pretty in containers)',
          }
        }
        if (!reqId) {
          return {
            status: 'fail',
            detail: `none of the ${entries.length} newest lines carries a reqId`,
            hint: "bind reqId to each request's child logger (pino-http genReqId, or logger.child({ reqId }))",
          }
        }
        const plainNote = plain.length > 0 ? `; ${plain.length} plain-text lines among them (first: ${plain[0]})` : ''
        return { status: 'pass', detail: `${entries.length - plain.length} of ${entries.length} newest lines parse as pino JSON, newest ${age}${plainNote}`, data: { reqId } }
      },
    },
    {
      id: 'error-filter',
      title: 'Query 3: level="error" returns only error lines',
      async run(): Promise<CheckOutcome> {
        const numeric = await recent(`${serviceSelector} | json | level=~"[0-9]+"`, 1)
        if (numeric.length > 0) {
          return {
            status: 'fail',
            detail: `levels are pino numbers (e.g. ${JSON.stringify(numeric[0].line.match(/"level":\s*(\d+)/)?.[1] ?? '?')}), so level="error" finds nothing`,
            hint: 'log level names: pino({ formatters: { level: (label) => ({ level: label }) } })',
          }
        }
        const errors = await recent(`${serviceSelector} | json | level="error"`, 50)
        const wrong = errors.filter((entry) => {
          try {
            return (JSON.parse(entry.line) as { level?: unknown }).level !== 'error'
          } catch {
            return true
          }
        })
        if (wrong.length > 0) {
          return {
            status: 'fail',
            detail: `${wrong.length} of ${errors.length} lines returned for level="error" do not have "level":"error"`,
            hint: 'a label named level overrides the JSON field: drop it from the Alloy relabel rules',
          }
        }
        return {
          status: 'pass',
          detail: errors.length > 0 ? `${errors.length} error lines, all with "level":"error"` : `no error lines in the last ${context.since}; the filter works`,
        }
      },
    },
    {
      id: 'reqid-trace',
      title: 'Query 4: a request id finds its lines',
      dependsOn: ['service-logs-json'],
      async run(inputs): Promise<CheckOutcome> {
        const { reqId } = inputs['service-logs-json'] as { reqId: string }
        const trace = await findTrace(loki, { reqId, app: identity.app, since: context.since, end: context.now() })
        if (trace.entries.length === 0) {
          return { status: 'fail', detail: `reqId ${reqId} from Query 2 was not found by the trace query`, hint: 'check that reqId is a JSON field of the line, not a label' }
        }
        const services = new Set(trace.entries.map(({ entry }) => entry.stream.labels.service))
        return { status: 'pass', detail: `reqId ${reqId}: ${trace.entries.length} lines in ${[...services].join(', ')}` }
      },
    },
    {
      id: 'label-policy',
      title: `labels follow the policy (${context.policy.allowedLabels.join(', ')})`,
      run: () => checkLabelPolicy(loki, context.policy, appSelector, range()),
    },
    {
      id: 'alloy-targets',
      title: 'Alloy discovered Docker targets',
      async run(): Promise<CheckOutcome> {
        if (!context.alloy) return { status: 'skip', detail: 'skipped (--no-alloy)' }
        return checkAlloyTargets(context.alloy)
      },
    },
  ]
}

/** The labels of the app's streams against the policy; their env label too, which smoke has no other check for. */
async function checkLabelPolicy(loki: LokiClient, policy: LabelPolicy, selector: string, range: { start: Nanos; end: Nanos }): Promise<CheckOutcome> {
  const found = await streamLabelsOutcome(loki, policy, selector, range)
  if (!found) return { status: 'skip', detail: `no streams match ${neutralize(selector)} in the window, so no labels to check` }
  const { outcome, labels } = found
  if (outcome.status === 'pass' && !labels.includes('env')) {
    return { status: 'warn', detail: `no env label; ${outcome.detail}`, hint: 'set APP_ENV for Alloy (compose environment), or env disappears from every stream' }
  }
  return outcome
}

export async function checkAlloyTargets(alloy: AlloyClient): Promise<CheckOutcome> {
  const components = await alloy.components()
  const discovery = components.filter((c) => c.name === 'discovery.docker')
  if (discovery.length === 0) {
    return { status: 'fail', detail: 'the Alloy config has no discovery.docker component', hint: "load the stack's Alloy config (stack/alloy-config.alloy)" }
  }
  // One-off containers (docker compose run, obs's probe) come and go; the check counts the services' own.
  const discovered = (await discoveredTargets(alloy, discovery)).containers
  if (discovered === 0) {
    return {
      status: 'fail',
      detail: 'discovery.docker found no containers',
      hint: 'check the Docker socket mount (/var/run/docker.sock:ro) and that the app containers run; obs doctor says more',
    }
  }
  // Alloy keeps listing the last targets when Docker goes away: only the readers know.
  const targets = (await dockerTargets(alloy, components)).filter((t) => !t.oneOff)
  const running = targets.filter((t) => t.running).length
  if (targets.length > 0 && running === 0) {
    return {
      status: 'fail',
      detail: `${discovered} Docker targets discovered, but none is being read`,
      hint: 'check that Docker runs and its socket is mounted into alloy; obs doctor says more',
    }
  }
  return { status: 'pass', detail: `${discovered} Docker targets discovered, ${running} read` }
}
