#!/usr/bin/env node
// obs runs on Node.js 22 or newer. Where the machine's node is older, hand over
// to the Node that `npm ci` installs with the project (the npm package "node").
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  const { createRequire } = await import('node:module')
  const { dirname, join } = await import('node:path')
  const { spawn } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  let bundled
  try {
    bundled = join(dirname(createRequire(import.meta.url).resolve('node/package.json')), 'bin', 'node')
  } catch {
    process.stderr.write(`error: obs needs Node.js 22 or newer, this is ${process.version}; run npm ci in the obs checkout to install one\n`)
    process.exit(2)
  }
  // obs runs in a session of its own: a terminal's Ctrl-C reaches this
  // launcher's whole process group, and obs must see it once, from here, or a
  // second SIGINT cuts short the shutdown that the first one began (the
  // tail's summary). Ctrl-Z then stops obs and this launcher together.
  const child = spawn(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    detached: process.platform !== 'win32',
    env: { ...process.env, OBS_LAUNCHER_PID: String(process.pid) },
  })
  child.on('error', (error) => {
    process.stderr.write(`error: cannot start the bundled Node.js ${bundled}: ${error.message}; run npm ci in the obs checkout\n`)
    process.exit(2)
  })
  const { constants } = await import('node:os')
  const forwarded = new Set()
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGWINCH', 'SIGCONT']) {
    process.on(signal, () => {
      forwarded.add(signal)
      child.kill(signal)
    })
  }
  process.on('SIGTSTP', () => {
    // Outside the terminal's session obs ignores SIGTSTP: stop it for sure.
    child.kill('SIGSTOP')
    process.kill(process.pid, 'SIGSTOP')
  })
  child.on('exit', (code, signal) => {
    if (signal === null) process.exit(code)
    // A signal nobody here sent is news: the out-of-memory killer sends SIGKILL without a word.
    if (!forwarded.has(signal)) {
      process.stderr.write(`error: obs was killed by ${signal}${signal === 'SIGKILL' ? '; if nobody sent it, the out-of-memory killer did (see dmesg)' : ''}\n`)
    }
    process.exit(128 + constants.signals[signal])
  })
  await new Promise(() => {})
}

// Started by the launcher above in a session of its own, obs would outlive a
// launcher killed without a chance to pass the signal on: end with it.
const launcher = Number(process.env.OBS_LAUNCHER_PID)
if (launcher) {
  delete process.env.OBS_LAUNCHER_PID
  setInterval(() => process.ppid !== launcher && process.kill(process.pid, 'SIGTERM'), 1000).unref()
}

// obs is typed during incidents: answer --version without loading the CLI
// framework, and keep compiled code on disk so later starts skip compiling.
const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  const { readFileSync } = await import('node:fs')
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  // A stdout that fails (a full disk, /dev/full) is one line on stderr, not a stack trace; rare, so loaded then.
  process.stdout.once('error', async (error) => (await import('../dist/cli.js')).onStdoutError(error))
  process.stdout.write(`obs/${version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else {
  // An export (query-range --limit 0) streams page after page: V8's heap is
  // sized for that before anything loads, as src/lib/heap.ts explains (the
  // young generation stays at the size it has when the flag is set, so set
  // late it keeps what module loading grew it to: 148 MB peak instead of 139).
  // query-range sets it itself for other long queries, other commands not at all.
  const exporting = (args[0] === 'query-range' || args[0] === 'query_range') && args.some((arg, i) => arg === '--limit=0' || (arg === '--limit' && args[i + 1] === '0'))
  if (exporting) {
    const { tuneHeapForStreaming } = await import('../dist/lib/heap.js')
    tuneHeapForStreaming()
  }
  // undici parses HTTP with WebAssembly (llhttp). V8 optimizes a hot WebAssembly
  // function on a background thread, and an exiting Node waits for that to end:
  // after 10 KB of answer it started, and `query-range --limit 10` exited 90 ms
  // late. Ten times V8's budget (1.8M) leaves a short answer to the baseline
  // code; an export still crosses it in its first page.
  const { setFlagsFromString } = await import('node:v8')
  setFlagsFromString('--wasm-tiering-budget=18000000')
  const { enableCompileCache } = await import('node:module')
  enableCompileCache?.()
  // dist/cli.js is oclif's execute entry point alone (its index loads every
  // part of it: help, ux, semver's 47 files), bundled with the commands.
  const { execute, guardStdout } = await import('../dist/cli.js')
  // Ahead of oclif's listener, which makes a stack trace of any write error but
  // EPIPE, for every command and for oclif's own output (help, completion) too.
  guardStdout()
  await execute({ dir: import.meta.url })
}
