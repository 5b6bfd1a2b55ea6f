import { randomBytes } from 'node:crypto'
import { type AlloyClient, dockerTargets } from '../alloy/client.ts'
import type { AppIdentity } from '../config/settings.ts'
import { type DockerClient, DockerRefusal } from '../docker/client.ts'
import { ObsError } from '../errors.ts'
import type { LokiClient } from '../loki/client.ts'
import { streamSelector } from '../loki/logql.ts'
import { fetchLogPages } from '../loki/paging.ts'
import { parseMetrics, type Sample } from '../metrics.ts'
import { sleep } from '../time.ts'
import type { Check, CheckOutcome } from './runner.ts'

export interface ProbeContext {
  loki: LokiClient
  /** Absent with --no-alloy: the probe then cannot tell Alloy's hops apart. */
  alloy?: AlloyClient
  docker: DockerClient
  image: string
  identity: AppIdentity
  /** How long to wait for the marker in Loki. */
  timeoutMs: number
  pollMs?: number
}

/** Every marker's reqId starts so; smoke's own checks leave such lines out. */
export const PROBE_MARKER_PREFIX = 'obs-probe-'
const COMPOSE_PROJECT = 'com.docker.compose.project'
const COMPOSE_SERVICE = 'com.docker.compose.service'

/**
 * The pipeline probe: a throwaway container with the app's compose labels
 * writes one unique pino line; obs waits until Loki returns it. Its latency is
 * the pipeline's, App → Docker → Alloy → Loki. When the marker does not come,
 * each hop is asked in turn where it stopped.
 */
export function pipelineProbeCheck(context: ProbeContext): Check {
  return {
    id: 'pipeline-probe',
    title: 'a marker line goes App → Docker → Alloy → Loki',
    run: () => probe(context),
  }
}

async function probe(context: ProbeContext): Promise<CheckOutcome> {
  const { docker, identity } = context
  const marker = `${PROBE_MARKER_PREFIX}${randomBytes(6).toString('hex')}`
  let id: string
  let labels: Record<string, string>
  try {
    labels = await probeLabels(docker, identity.service)
    const before = context.alloy ? await alloyMetrics(context.alloy) : undefined
    id = await docker.run({
      name: marker,
      image: context.image,
      // Pino's shape, level by name: the app's own checks read the marker like any line of the service.
      cmd: [
        'sh',
        '-c',
        `echo "{\\"level\\":\\"info\\",\\"time\\":$(date +%s)000,\\"msg\\":\\"obs pipeline probe\\",\\"reqId\\":\\"${marker}\\"}"; exec sleep ${Math.ceil(context.timeoutMs / 1000) + 30}`,
      ],
      labels,
    })
    try {
      return await awaitMarker(context, marker, id, before)
    } finally {
      await docker.remove(id).catch(() => undefined)
    }
  } catch (error) {
    if (error instanceof DockerRefusal && error.status === 404) {
      return {
        status: 'fail',
        detail: `hop App → Docker: the probe image ${context.image} is not on this Docker host (${error.reason})`,
        hint: "pass --probe-image an image the host has, with sh, echo, date and sleep (busybox, alpine, the app's own)",
      }
    }
    if (error instanceof ObsError && !(error instanceof DockerRefusal) && error.message.includes(docker.host)) {
      return { status: 'fail', detail: `hop App → Docker: ${error.message}, so no probe container can start`, hint: error.hint }
    }
    throw error
  }
}

/** The compose labels of a running container of the app's service, so the probe's line takes the app's path and labels. */
async function probeLabels(docker: DockerClient, service: string): Promise<Record<string, string>> {
  const [sibling] = await docker.containersWithLabel(`${COMPOSE_SERVICE}=${service}`)
  const labels: Record<string, string> = { [COMPOSE_SERVICE]: service, 'com.docker.compose.oneoff': 'True' }
  for (const [name, value] of Object.entries(sibling?.labels ?? {})) {
    if (name.startsWith(`${COMPOSE_PROJECT}`)) labels[name] = value
  }
  return labels
}

async function awaitMarker(context: ProbeContext, marker: string, id: string, before: Sample[] | undefined): Promise<CheckOutcome> {
  const started = Date.now()
  const query = `${streamSelector({ app: context.identity.app, env: context.identity.env, service: context.identity.service })} |= "${marker}"`
  const deadline = started + context.timeoutMs
  const nanos = (ms: number) => BigInt(ms) * 1_000_000n
  // Loki down for a while is one of the faults the probe diagnoses: its errors are kept for the verdict, not thrown.
  let lokiError: ObsError | undefined
  while (Date.now() < deadline) {
    try {
      for await (const page of fetchLogPages(context.loki, {
        query,
        start: nanos(started - 120_000),
        end: nanos(Date.now() + 60_000),
        direction: 'backward',
        limit: 1,
        batch: 1,
      })) {
        if (page.length > 0) {
          const seconds = ((Date.now() - started) / 1000).toFixed(1)
          return { status: 'pass', detail: `marker ${marker} arrived in Loki ${seconds}s after its container started`, data: { latencyMs: Date.now() - started } }
        }
      }
      lokiError = undefined
    } catch (error) {
      if (!(error instanceof ObsError)) throw error
      lokiError = error
    }
    await sleep(context.pollMs ?? 250)
  }
  return { status: 'fail', ...(await whereItStopped(context, marker, id, before, lokiError)) }
}

/** The hop where the marker stopped: the container, Alloy's reader, Alloy's pushes, or Loki. */
async function whereItStopped(
  context: ProbeContext,
  marker: string,
  id: string,
  before: Sample[] | undefined,
  lokiError: ObsError | undefined,
): Promise<{ detail: string; hint: string }> {
  const waited = `${Math.round(context.timeoutMs / 1000)}s`
  const state = await context.docker.inspect(id)
  if (!state.running) {
    return {
      detail: `hop App → Docker: the probe container ${id.slice(0, 12)} is ${state.status} (exit code ${state.exitCode}) — it could not write the marker`,
      hint: 'check that the probe image has sh, echo, date and sleep (--probe-image)',
    }
  }
  const alloy = context.alloy
  if (!alloy) {
    return { detail: `marker ${marker} not in Loki after ${waited}; Alloy was not asked (--no-alloy), so the hop is unknown`, hint: 'run without --no-alloy to find the hop' }
  }
  const target = (await dockerTargets(alloy, await alloy.components())).find((t) => id.startsWith(t.id))
  if (!target) {
    return {
      detail: `hop Docker → Alloy: Alloy has no target for the probe container ${id.slice(0, 12)} after ${waited} — discovery.docker did not list it or the relabel rules dropped it`,
      hint: "check discovery.docker's host (the Docker socket mount) and refresh_interval; obs doctor shows the targets",
    }
  }
  if (!target.running) {
    return {
      detail: `hop Docker → Alloy: Alloy lists the probe container but does not read it${target.lastError ? ` (last error: ${target.lastError})` : ''}`,
      hint: 'check that Alloy can reach the Docker socket; obs doctor says more',
    }
  }
  const after = await alloyMetrics(alloy)
  const failed = failedPushes(after) - failedPushes(before ?? [])
  const dropped = sum(after, 'loki_write_dropped_entries_total') - sum(before ?? [], 'loki_write_dropped_entries_total')
  if (failed > 0 || dropped > 0) {
    return {
      detail: `hop Alloy → Loki: Alloy read the probe container, but ${failed} pushes to Loki failed${dropped > 0 ? ` and ${dropped} entries were dropped` : ''} during the probe${lokiError ? ` (obs cannot query Loki either: ${lokiError.message})` : ''}`,
      hint: "check that Loki is up and reachable at loki.write's url; obs doctor's alloy-loki-write says more",
    }
  }
  if (lokiError) {
    return { detail: `hop Loki: obs could not query Loki for the marker: ${lokiError.message}`, hint: lokiError.hint ?? 'check that Loki runs (obs ready)' }
  }
  return {
    detail: `hop Loki: Alloy read the probe container and pushed without errors, but Loki did not return marker ${marker} within ${waited}`,
    hint: "check the labels the line got (app, env, service: --app, --env, --service) and Loki's ingestion (obs doctor: loki-ingestion)",
  }
}

async function alloyMetrics(alloy: AlloyClient): Promise<Sample[]> {
  return parseMetrics(await alloy.metrics(), ['loki_write_request_duration_seconds_count', 'loki_write_dropped_entries_total'])
}

function failedPushes(samples: Sample[]): number {
  return samples.filter((s) => s.name === 'loki_write_request_duration_seconds_count' && !(s.labels.status_code ?? '').startsWith('2')).reduce((n, s) => n + s.value, 0)
}

function sum(samples: Sample[], name: string): number {
  return samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0)
}
