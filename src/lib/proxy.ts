/**
 * HTTP proxies, as the ecosystem sets them: a proxy named for obs
 * (--proxy-url, LOKI_HTTP_PROXY_URL, a profile's proxyUrl, as logcli has it)
 * goes before the environment's HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either
 * case, as curl reads them), and a named proxy takes every request, NO_PROXY
 * or not. undici's ProxyAgent and EnvHttpProxyAgent do the proxying (NO_PROXY
 * and its matching are undici's); they are loaded only when a proxy is set,
 * so a command without one pays nothing for them.
 */
import type { Dispatcher } from 'undici'
import { UsageError } from './errors.ts'
import { maskUrl } from './secrets.ts'
import { shown } from './text.ts'

/** A proxy URL and the setting or variable it came from, for messages. */
export interface ProxySource {
  url: string
  /** "--proxy-url", "LOKI_HTTP_PROXY_URL", "profile prod", "HTTPS_PROXY", "http_proxy", … */
  from: string
}

/** How requests to a server leave: through a named proxy, or as the environment's variables say. */
export type ProxyRoute = { named: ProxySource } | { env: { http?: ProxySource; https?: ProxySource; noProxy?: string } }

/** TLS settings to the server (through a tunnel, if proxied), as undici's connector takes them. */
export interface ConnectTls {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  rejectUnauthorized?: boolean
}

export interface DispatcherOptions {
  tls?: ConnectTls
  keepAliveTimeout?: number
  connections?: number
  /**
   * Tunnel with CONNECT also to an http:// server: a proxy that forwards
   * plain requests drops a WebSocket's Upgrade (the tail's).
   */
  tunnel?: boolean
  /** Builds the connection to one origin (the tail's keeps hold of its socket). */
  factory?: (origin: string | URL, options: Record<string, unknown>) => Dispatcher
}

/** The proxy schemes obs passes to undici: an HTTP proxy, reached in plain HTTP or in TLS. */
const PROXY_SCHEMES = new Set(['http:', 'https:'])

/**
 * A proxy URL as given: checked, and with http:// assumed when it names no
 * scheme ("proxy.corp:3128", as curl and Go read HTTPS_PROXY). Credentials
 * never appear in the message.
 */
export function checkProxyUrl(value: string, from: string): string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`
  const display = shown(maskUrl(value))
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new UsageError(`invalid proxy URL "${display}" (${from}): not a URL`, 'use a URL like http://proxy.example.com:3128 or http://user:password@proxy:3128')
  }
  if (!PROXY_SCHEMES.has(url.protocol)) {
    throw new UsageError(`invalid proxy URL "${display}" (${from}): only http:// and https:// proxies are supported`, 'use a URL like http://proxy.example.com:3128')
  }
  if (url.pathname !== '/' || url.search || url.hash) {
    throw new UsageError(`invalid proxy URL "${display}" (${from}): a proxy URL has no path, query or fragment`, 'use a URL like http://proxy.example.com:3128')
  }
  return text
}

/** The proxy variables of the environment; the lower-case form wins, as in curl and undici. */
export function envProxies(env: NodeJS.ProcessEnv): { http?: ProxySource; https?: ProxySource; noProxy?: string } | undefined {
  const read = (lower: string, upper: string): ProxySource | undefined => {
    const [from, value] = env[lower] ? [lower, env[lower]] : env[upper] ? [upper, env[upper]] : []
    return from && value ? { url: checkProxyUrl(value, from), from } : undefined
  }
  const http = read('http_proxy', 'HTTP_PROXY')
  const https = read('https_proxy', 'HTTPS_PROXY')
  if (!http && !https) return undefined
  return { http, https, noProxy: env.no_proxy ?? env.NO_PROXY }
}

/**
 * The proxy a request to `target` would take by the route, if any might: a
 * named proxy always, else HTTPS_PROXY (falling back to HTTP_PROXY) for
 * https://, HTTP_PROXY for http://. NO_PROXY is left to undici.
 */
export function proxyFor(route: ProxyRoute | undefined, target: URL): ProxySource | undefined {
  if (!route) return undefined
  if ('named' in route) return route.named
  return target.protocol === 'https:' || target.protocol === 'wss:' ? (route.env.https ?? route.env.http) : route.env.http
}

/** A proxy for messages: its address without credentials, and where it was set. */
export function describeProxy(proxy: ProxySource): string {
  return `${maskUrl(proxy.url)} (${proxy.from})`
}

/**
 * The dispatcher for a server behind the route's proxy, or undefined when no
 * proxy applies to it (the caller then connects straight, as before).
 */
export async function proxyDispatcher(route: ProxyRoute | undefined, target: URL, options: DispatcherOptions): Promise<Dispatcher | undefined> {
  if (!proxyFor(route, target) || !route) return undefined
  const agentOptions = {
    keepAliveTimeout: options.keepAliveTimeout,
    connections: options.connections,
    factory: options.factory,
    // TLS to the server: in the tunnel for a proxied request, on the direct connection otherwise (NO_PROXY).
    requestTls: options.tls,
    connect: options.tls,
    proxyTunnel: options.tunnel,
  }
  // undici's parts, not its index (see src/types/undici-parts.d.ts), and only now.
  const [{ default: Pool }, { default: connect }] = await Promise.all([import('undici/lib/dispatcher/pool.js'), import('undici/lib/api/api-connect.js')])
  // The proxy agent opens its tunnels with the pool's connect(), which undici's index adds to every dispatcher; obs loads no index.
  const clientFactory = (origin: URL, options: object) => Object.assign(new Pool(origin, options), { connect })
  if ('named' in route) {
    const { default: ProxyAgent } = await import('undici/lib/dispatcher/proxy-agent.js')
    return new ProxyAgent({ ...agentOptions, clientFactory, uri: route.named.url })
  }
  const { default: EnvHttpProxyAgent } = await import('undici/lib/dispatcher/env-http-proxy-agent.js')
  // The variables as obs read them (checked, scheme added), not as undici would read them again.
  return new EnvHttpProxyAgent({
    ...agentOptions,
    clientFactory,
    httpProxy: route.env.http?.url,
    httpsProxy: route.env.https?.url,
    noProxy: route.env.noProxy ?? '',
  } as ConstructorParameters<typeof EnvHttpProxyAgent>[0])
}
