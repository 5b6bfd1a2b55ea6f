/** Runs the built CLI as a subprocess, as users and scripts do. */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { REPO } from './loki.ts'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export const OBS = join(REPO, 'bin/run.js')

export function runObs(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', OBS_DEBUG: undefined, ...options.env }
    for (const name of ['LOKI_ADDR', 'LOKI_ORG_ID', 'LOKI_USERNAME', 'LOKI_PASSWORD', 'LOKI_BEARER_TOKEN', 'OBS_PROFILE']) {
      if (!options.env || !(name in options.env)) delete env[name]
    }
    const child = spawn(process.execPath, [OBS, ...args], { cwd: options.cwd ?? REPO, env: env as NodeJS.ProcessEnv })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') }))
  })
}
