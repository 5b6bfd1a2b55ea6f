/**
 * A Loki that answers only the label endpoints, with whatever names and
 * values a test gives it (hostile ones, for completion), and records each
 * request's path and the headers that say who asked (tenant, credentials).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface LabelServer {
  addr: string
  /** Label name to its values; the names answered are its keys plus `extraNames`. */
  values: Record<string, string[]>
  extraNames: string[]
  requests: { path: string; headers: IncomingHttpHeaders }[]
  close(): Promise<void>
}

export async function startLabelServer(values: Record<string, string[]> = {}, extraNames: string[] = []): Promise<LabelServer> {
  const state: Omit<LabelServer, 'addr' | 'close'> = { values, extraNames, requests: [] }
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname
    state.requests.push({ path, headers: request.headers })
    const name = /^\/loki\/api\/v1\/label\/([^/]+)\/values$/.exec(path)
    const data = path === '/loki/api/v1/labels' ? [...Object.keys(state.values), ...state.extraNames] : name ? (state.values[decodeURIComponent(name[1])] ?? []) : undefined
    response.writeHead(data ? 200 : 404, { 'content-type': 'application/json' })
    response.end(data ? JSON.stringify({ status: 'success', data }) : '404 page not found\n')
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const { port } = server.address() as AddressInfo
  return Object.assign(state, {
    addr: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  })
}
