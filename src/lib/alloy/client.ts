import { UnreachableError } from '../errors.ts'
import { HttpClient, type HttpSettings } from '../http.ts'
import { any, checkShape, list, object, optional, recursive, type Shape, string, tagged } from '../shapes.ts'

/** A value as Alloy's web API encodes it. */
export interface AlloyValue {
  type: string
  value?: unknown
}

/** A field of a component's arguments, exports or debug info: an attribute, or a block of fields. */
export interface AlloyField {
  name: string
  type?: 'attr' | 'block'
  value?: AlloyValue
  body?: AlloyField[]
}

export interface AlloyComponent {
  name: string
  localID: string
  label?: string
  health?: { state: string; message?: string; updatedTime?: string }
  exports?: AlloyField[]
  debugInfo?: AlloyField[]
}

/** One target of loki.source.docker, from its debug info. */
export interface DockerTarget {
  id: string
  /** The container's name, without Docker's leading slash. */
  name: string
  /** The compose service the container runs, when compose started it. */
  service: string
  running: boolean
  lastError: string
  /** A `docker compose run` container (obs's probe is one): it is meant to end, so its end is no fault. */
  oneOff: boolean
}

const ONE_OFF_LABEL = '__meta_docker_container_label_com_docker_compose_oneoff'

/** Whether discovery's labels mark a one-off container (compose sets the label to "True"). */
function isOneOff(labels: Record<string, unknown>): boolean {
  return labels[ONE_OFF_LABEL] === 'True'
}

// The shapes of Alloy's web API answers (docs/LOKI_FACTS.md), as obs reads them.
const alloyValue = recursive((value) =>
  tagged('type', { array: object({ value: optional(list(value)) }), object: object({ value: optional(list(object({ key: string, value: optional(value) }))) }) }, any),
)
const alloyField = recursive((field) => object({ name: string, type: optional(string), value: optional(alloyValue), body: optional(list(field)) }))
const alloyComponent = object({
  name: string,
  localID: string,
  label: optional(string),
  health: optional(object({ state: string, message: optional(string), updatedTime: optional(string) })),
  exports: optional(list(alloyField)),
  debugInfo: optional(list(alloyField)),
})
const ALLOY_HINT = "check that --alloy-addr points at Alloy's HTTP server (default port 12345)"

/** Alloy's HTTP API: readiness and the components of its running config. */
export class AlloyClient {
  readonly http: HttpClient

  constructor(settings: HttpSettings) {
    this.http = new HttpClient(settings)
  }

  get address(): string {
    return this.http.address
  }

  /** True once Alloy loaded its config (/-/ready answers 200). */
  async ready(): Promise<boolean> {
    return (await this.http.request('/-/ready', { answerStatuses: [503], retries: 0 })).status === 200
  }

  async metrics(): Promise<string> {
    return (await this.http.request('/metrics')).body
  }

  async components(): Promise<AlloyComponent[]> {
    return this.getJson<AlloyComponent[]>('/api/v0/web/components', list(alloyComponent))
  }

  /** One component with its exports and debug info filled in. */
  async component(localID: string): Promise<AlloyComponent> {
    return this.getJson<AlloyComponent>(`/api/v0/web/components/${encodeURIComponent(localID)}`, alloyComponent)
  }

  async close(): Promise<void> {
    await this.http.close()
  }

  private async getJson<T>(path: string, shape: Shape): Promise<T> {
    const response = await this.http.request(path)
    let answer: unknown
    try {
      answer = JSON.parse(response.body)
    } catch {
      throw new UnreachableError(`Alloy's answer to ${path} is not JSON`, ALLOY_HINT)
    }
    return checkShape<T>({ server: 'Alloy', path, hint: ALLOY_HINT }, shape, answer)
  }
}

/** Decodes Alloy's {type, value} encoding into plain values; the answer's shape was checked when it arrived. */
function decodeAlloyValue(encoded: AlloyValue | undefined): unknown {
  if (!encoded) return undefined
  switch (encoded.type) {
    case 'array':
      return ((encoded.value as AlloyValue[]) ?? []).map(decodeAlloyValue)
    case 'object': {
      const object: Record<string, unknown> = {}
      for (const field of (encoded.value as { key: string; value: AlloyValue }[]) ?? []) object[field.key] = decodeAlloyValue(field.value)
      return object
    }
    default:
      return encoded.value
  }
}

/** A named attribute of a component's fields, decoded. */
export function componentField(fields: AlloyField[] | undefined, name: string): unknown {
  return decodeAlloyValue(fields?.find((field) => field.name === name && field.type !== 'block')?.value)
}

/** Every block of that name among a component's fields, each decoded into an object of its attributes. */
export function componentBlocks(fields: AlloyField[] | undefined, name: string): Record<string, unknown>[] {
  return (fields ?? []).filter((field) => field.name === name && field.type === 'block').map((block) => decodeBlock(block.body ?? []))
}

function decodeBlock(fields: AlloyField[]): Record<string, unknown> {
  const object: Record<string, unknown> = {}
  for (const field of fields) object[field.name] = field.type === 'block' ? decodeBlock(field.body ?? []) : decodeAlloyValue(field.value)
  return object
}

/**
 * What every discovery.docker component exports, counted: the services'
 * containers, and apart from them the one-off containers (docker compose run,
 * obs's probe), which come and go.
 */
export async function discoveredTargets(alloy: AlloyClient, components: AlloyComponent[]): Promise<{ containers: number; oneOff: number }> {
  const counts = { containers: 0, oneOff: 0 }
  for (const component of components.filter((c) => c.name === 'discovery.docker')) {
    const exported = componentField((await alloy.component(component.localID)).exports, 'targets')
    for (const target of Array.isArray(exported) ? exported : []) {
      if (isOneOff(target as Record<string, unknown>)) counts.oneOff += 1
      else counts.containers += 1
    }
  }
  return counts
}

/** The targets every loki.source.docker reads, with their state. Alloy encodes is_running as a string. */
export async function dockerTargets(alloy: AlloyClient, components: AlloyComponent[]): Promise<DockerTarget[]> {
  const targets: DockerTarget[] = []
  for (const source of components.filter((c) => c.name === 'loki.source.docker')) {
    for (const info of componentBlocks((await alloy.component(source.localID)).debugInfo, 'targets_info')) {
      // Alloy prints the target's labels as one Prometheus label set: {name="value", ...}.
      const labels = typeof info.labels === 'string' ? info.labels : ''
      const label = (name: string) => new RegExp(`${name}="((?:[^"\\\\]|\\\\.)*)"`).exec(labels)?.[1] ?? ''
      targets.push({
        id: String(info.id ?? '?').slice(0, 12),
        name: label('__meta_docker_container_name').replace(/^\//, ''),
        service: label('__meta_docker_container_label_com_docker_compose_service'),
        running: info.is_running === true || info.is_running === 'true',
        lastError: typeof info.last_error === 'string' ? info.last_error : '',
        oneOff: isOneOff({ [ONE_OFF_LABEL]: label(ONE_OFF_LABEL) }),
      })
    }
  }
  return targets
}
