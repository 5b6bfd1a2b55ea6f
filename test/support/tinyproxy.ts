/**
 * A real HTTP proxy for the tests: Debian's tinyproxy (apt install tinyproxy),
 * in the foreground on a free loopback port with a config of its own. Its log
 * (LogLevel Connect) names every request it forwards and every CONNECT it
 * tunnels, which is how a test tells that obs went through it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const TINYPROXY = '/usr/bin/tinyproxy'

export function hasTinyproxy(): boolean {
  return existsSync(TINYPROXY)
}

export interface Tinyproxy {
  /** http://127.0.0.1:PORT, without credentials. */
  addr: string
  port: number
  /** What tinyproxy logged so far. */
  log(): string
  /** The requests it forwarded and the tunnels it opened, as its log names them ("GET http://…", "CONNECT 127.0.0.1:3100"). */
  requests(): string[]
  close(): Promise<void>
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Starts tinyproxy; `connectPorts` are the ports it may CONNECT to, `auth` the user and password it asks for. */
export async function startTinyproxy(options: { connectPorts: number[]; auth?: [string, string] }): Promise<Tinyproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'obs-tinyproxy-'))
  const port = await freePort()
  const config = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 30',
    'Allow 127.0.0.1',
    'LogLevel Connect',
    'MaxClients 100',
    ...options.connectPorts.map((p) => `ConnectPort ${p}`),
    ...(options.auth ? [`BasicAuth ${options.auth[0]} ${options.auth[1]}`] : []),
  ].join('\n')
  writeFileSync(join(dir, 'tinyproxy.conf'), `${config}\n`)
  let output = ''
  const child: ChildProcess = spawn(TINYPROXY, ['-d', '-c', join(dir, 'tinyproxy.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  // Listening once a connection is accepted.
  for (let attempt = 0; ; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, '127.0.0.1', () => {
        socket.destroy()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    })
    if (ok) break
    if (attempt > 100 || child.exitCode !== null) throw new Error(`tinyproxy did not start: ${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    addr: `http://127.0.0.1:${port}`,
    port,
    log: () => output,
    requests: () => [...output.matchAll(/Request \(file descriptor \d+\): (\S+ \S+)/g)].map((match) => match[1]),
    close: async () => {
      child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
