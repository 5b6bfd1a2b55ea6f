import { HttpClient, type HttpSettings } from './http.ts'
import { UnreachableError } from './errors.ts'

/** A value as Alloy's web API encodes it. */
export interface AlloyValue {
  type: string
  value?: unknown
}

export interface AlloyComponent {
  name: string
  localID: string
  label?: string
  health?: { state: string; message?: string; updatedTime?: string }
  exports?: { name: string; value: AlloyValue }[]
  debugInfo?: { name: string; value: AlloyValue }[]
}

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
    return this.getJson<AlloyComponent[]>('/api/v0/web/components')
  }

  /** One component with its exports and debug info filled in. */
  async component(localID: string): Promise<AlloyComponent> {
    return this.getJson<AlloyComponent>(`/api/v0/web/components/${encodeURIComponent(localID)}`)
  }

  async close(): Promise<void> {
    await this.http.close()
  }

  private async getJson<T>(path: string): Promise<T> {
    const response = await this.http.request(path)
    try {
      return JSON.parse(response.body) as T
    } catch {
      throw new UnreachableError(`Alloy's answer to ${path} is not JSON`, 'check that --alloy-addr points at Alloy\'s HTTP server')
    }
  }
}

/** Decodes Alloy's {type, value} encoding into plain values. */
export function decodeAlloyValue(encoded: AlloyValue | undefined): unknown {
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

/** A named export or debug-info field of a component, decoded. */
export function componentField(fields: { name: string; value: AlloyValue }[] | undefined, name: string): unknown {
  return decodeAlloyValue(fields?.find((field) => field.name === name)?.value)
}
