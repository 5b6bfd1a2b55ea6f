/**
 * A real Docker Engine for the pipeline tests and the sandbox: Debian's
 * dockerd, started as root on a socket and directories of its own (nothing
 * shared with any other Docker on the machine), no bridge and no iptables, so
 * containers run with --network none and the only connections are unix
 * sockets and loopback (../shared/docs/REAL_SERVERS.md). No registry is
 * reachable: images are made with `docker import` from root filesystems built
 * here. `stop()` leaves nothing behind: containers removed, daemon stopped by
 * its pid, its mounts undone, its directory deleted.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { stopChild } from './loki.ts'

const run = promisify(execFile)

/** The CLI that ships with the daemon (the same package), so client and engine agree on the API. */
function dockerCli(): string {
  const beside = join(dirname(dirname(which('dockerd') ?? '/usr/sbin/dockerd')), 'bin/docker')
  return existsSync(beside) ? beside : 'docker'
}

function which(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' })
  return found.status === 0 ? found.stdout.trim() : undefined
}

/** Why a real Docker Engine cannot run here, or undefined when it can. */
export function dockerUnavailable(): string | undefined {
  if (!which('dockerd')) return 'dockerd is not installed (apt-get install docker.io)'
  if (!existsSync('/bin/busybox')) return '/bin/busybox is not installed (apt-get install busybox-static)'
  if (process.getuid?.() !== 0) return 'dockerd needs root'
  return undefined
}

export interface DockerEngine {
  /** unix:///…/docker.sock, as DOCKER_HOST takes it. */
  host: string
  socket: string
  dir: string
  logFile: string
  child: ChildProcess
  /** Runs the docker CLI against this engine; resolves with its stdout, trimmed. */
  docker(args: string[]): Promise<string>
  /** Stops the daemon (its socket disappears); containers stay defined. */
  stopDaemon(): Promise<void>
  /** Starts the daemon again on the same socket and data. */
  startDaemon(): Promise<void>
  /** Removes every container, stops the daemon, undoes its mounts, deletes its directory. */
  stop(): Promise<void>
}

/** Runs the docker CLI against the engine at host (unix://…); resolves with its stdout, trimmed. */
export async function docker(host: string, args: string[]): Promise<string> {
  return (await run(dockerCli(), args, { env: { ...process.env, DOCKER_HOST: host }, maxBuffer: 64 * 1024 * 1024 })).stdout.trim()
}

export async function startDockerEngine(options: { dir?: string; detached?: boolean } = {}): Promise<DockerEngine> {
  const reason = dockerUnavailable()
  if (reason) throw new Error(`cannot start a Docker Engine: ${reason}`)
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'obs-docker-'))
  mkdirSync(dir, { recursive: true })
  const socket = join(dir, 'docker.sock')
  const logFile = join(dir, 'dockerd.log')
  const launch = () =>
    spawn(
      'dockerd',
      [
        `--data-root=${join(dir, 'data')}`,
        `--exec-root=${join(dir, 'exec')}`,
        `--pidfile=${join(dir, 'docker.pid')}`,
        `--host=unix://${socket}`,
        '--bridge=none',
        '--iptables=false',
        '--ip6tables=false',
        '--log-level=warn',
      ],
      { stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')], detached: options.detached },
    )
  const engine: DockerEngine = {
    host: `unix://${socket}`,
    socket,
    dir,
    logFile,
    child: launch(),
    docker: (args) => docker(engine.host, args),
    async stopDaemon() {
      await stopChild(engine.child)
    },
    async startDaemon() {
      engine.child = launch()
      if (options.detached) engine.child.unref()
      await waitForEngine(engine)
    },
    async stop() {
      await removeEngine(dir)
      await stopChild(engine.child)
    },
  }
  if (options.detached) engine.child.unref()
  await waitForEngine(engine)
  return engine
}

/**
 * Removes an engine started here, by its directory alone (the sandbox's is
 * another process's child): its containers, the daemon by its pid file, its
 * mounts, the directory.
 */
export async function removeEngine(dir: string): Promise<void> {
  const host = `unix://${join(dir, 'docker.sock')}`
  const pidFile = join(dir, 'docker.pid')
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined
  if (pid && alive(pid)) {
    const ids = await docker(host, ['ps', '-aq']).catch(() => '')
    if (ids) await docker(host, ['rm', '-f', ...ids.split('\n')]).catch(() => '')
    process.kill(pid, 'SIGTERM')
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100))
    if (alive(pid)) process.kill(pid, 'SIGKILL')
  }
  unmountUnder(dir)
  rmSync(dir, { recursive: true, force: true })
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Undoes what the daemon mounted under its directories (overlays, shm), deepest first. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((point): point is string => !!point && point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
  for (const point of mounts) spawnSync('umount', ['-l', point])
}

async function waitForEngine(engine: DockerEngine, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (engine.child.exitCode !== null) throw new Error(`dockerd exited with ${engine.child.exitCode}; see ${engine.logFile}`)
    try {
      await engine.docker(['version', '--format', '{{.Server.Version}}'])
      return
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`dockerd not answering on ${engine.socket} after ${timeoutMs}ms: ${String(error)}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

/** The busybox image the probe and the plain containers use: `sh`, `echo`, `sleep`, `date`. */
export const BUSYBOX_IMAGE = 'obs-busybox:local'
/** The app image: busybox plus the Node binary the project brings and its shared libraries. */
export const APP_IMAGE = 'obs-app:local'
const APP_SCRIPT = join(import.meta.dirname, 'pipeline-app.mjs')

/** Builds both images with `docker import` from root filesystems made here. */
export async function importImages(engine: DockerEngine): Promise<void> {
  const root = join(engine.dir, 'rootfs')
  rmSync(root, { recursive: true, force: true })
  const busybox = join(root, 'busybox')
  mkdirSync(join(busybox, 'bin'), { recursive: true })
  copyFileSync('/bin/busybox', join(busybox, 'bin/busybox'))
  chmodSync(join(busybox, 'bin/busybox'), 0o755)
  for (const tool of ['sh', 'echo', 'sleep', 'date', 'cat']) symlinkSync('busybox', join(busybox, 'bin', tool))
  await importTree(engine, busybox, BUSYBOX_IMAGE, ['/bin/sh'])

  const app = join(root, 'app')
  spawnSync('cp', ['-a', busybox, app])
  const node = process.execPath
  mkdirSync(join(app, 'usr/local/bin'), { recursive: true })
  copyFileSync(node, join(app, 'usr/local/bin/node'))
  chmodSync(join(app, 'usr/local/bin/node'), 0o755)
  for (const library of sharedLibraries(node)) {
    mkdirSync(join(app, dirname(library)), { recursive: true })
    copyFileSync(library, join(app, library))
  }
  mkdirSync(join(app, 'app'), { recursive: true })
  copyFileSync(APP_SCRIPT, join(app, 'app/app.mjs'))
  await importTree(engine, app, APP_IMAGE, ['/usr/local/bin/node', '/app/app.mjs'])
  rmSync(root, { recursive: true, force: true })
}

/** The shared libraries a binary loads, as ldd lists them (absolute paths). */
function sharedLibraries(binary: string): string[] {
  const listed = spawnSync('ldd', [binary], { encoding: 'utf8' }).stdout
  return [...listed.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1]!).filter((path, i, all) => all.indexOf(path) === i)
}

async function importTree(engine: DockerEngine, tree: string, image: string, command: string[]): Promise<void> {
  const tar = spawn('tar', ['-C', tree, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const imported = execFile(dockerCli(), ['import', '--change', `CMD ${JSON.stringify(command)}`, '-', image], {
    env: { ...process.env, DOCKER_HOST: engine.host },
  })
  tar.stdout.pipe(imported.stdin!)
  await new Promise<void>((resolve, reject) => imported.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker import ${image} exited ${code}`)))))
}
