// The design doc's Node.js app as the live pipeline runs it in a container:
// pino-shaped JSON on stdout (level by name, as the runbook's level formatter
// writes it; time in epoch ms; pid, hostname, reqId, userId, msg), error-level
// lines on stderr, now and then a plain-text line
// and a multi-line stack trace, as a real app under Docker writes them.
//
// Requests span services: every container derives request k from the clock
// (one every TICK_MS since START_MS), so the `app` and `worker` containers of
// one run log the same reqId without talking to each other.
//
// Every line written is also appended to RECORD_DIR/<service>.<hostname>.log as
// "<epoch ms> <stream> <line>": the ground truth the delivery tests compare Loki with.
// With CLOCK_OFFSET_MS the lines' pino `time` is that far off the real time.
// With REQUESTS=N the container logs N requests, then stays up silently (a
// container that exits early may be gone before Alloy's next discovery).
// VERSION is the release every line names (pino's base fields, as apps log
// theirs); BAD=1 is a bad release: a quarter of the app's requests fail with
// a message no earlier release wrote, "db connection refused on pool N".
import { appendFileSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'

const service = process.env.SERVICE ?? 'app'
const run = process.env.RUN_ID ?? 'run'
const tickMs = Number(process.env.TICK_MS ?? 200)
const startMs = Number(process.env.START_MS ?? Date.now())
const requests = Number(process.env.REQUESTS ?? 0)
const version = process.env.VERSION || '1.0.0'
const bad = process.env.BAD === '1'
// A wrong clock in the app alone: pino's `time` is off by this much, Docker's own timestamp is not.
const clockOffsetMs = Number(process.env.CLOCK_OFFSET_MS ?? 0)
const record = process.env.RECORD_DIR ? `${process.env.RECORD_DIR}/${service}.${hostname()}.log` : undefined
const host = hostname()
let seq = 0

function write(stream, line, ms = Date.now()) {
  writeSync(stream === 'stdout' ? 1 : 2, `${line}\n`)
  if (record) appendFileSync(record, `${ms} ${stream} ${line}\n`)
}

function log(level, msg, fields, stream = level === 'error' ? 'stderr' : 'stdout') {
  seq += 1
  const time = Date.now() + clockOffsetMs
  write(stream, JSON.stringify({ level, time, pid: process.pid, hostname: host, name: service, version, seq, ...fields, msg }), time)
}

function request(k) {
  const reqId = `${run}-${k}`
  const userId = `u-${k % 37}`
  if (service === 'app') {
    log('info', 'request received', { reqId, userId, method: 'GET', url: `/api/items/${k}` })
    if (k % 10 === 7) log('error', 'upstream call failed', { reqId, userId, err: { type: 'Error', message: 'upstream timed out' } })
    const refused = bad && k % 4 === 1
    if (refused) log('error', `db connection refused on pool ${k % 7}`, { reqId, userId })
    log('info', 'request completed', { reqId, userId, statusCode: k % 10 === 7 ? 502 : refused ? 503 : 200, responseTime: 3 + (k % 17) })
  } else {
    log('info', 'job started', { reqId, userId, queue: 'items' })
    if (k % 10 === 7) log('warn', 'job retried', { reqId, attempt: 2 })
    log('info', 'job done', { reqId, userId, durationMs: 5 + (k % 23) })
  }
  if (k % 25 === 3) {
    seq += 1
    write('stdout', `plain text from ${service} ${host} #${seq}: cache warmed in ${k % 9} ms`)
  }
  if (k % 40 === 11) {
    seq += 1
    write('stderr', `Error: socket hang up (${reqId} on ${host} #${seq})`)
    write('stderr', '    at connResetException (node:internal/errors:787:14)')
    write('stderr', '    at Socket.socketOnEnd (node:_http_client:519:23)')
    write('stderr', '    at Socket.emit (node:events:530:35)')
  }
}

let next = Math.max(0, Math.ceil((Date.now() - startMs) / tickMs))
function loop() {
  if (requests > 0 && next >= requests) return
  const due = startMs + next * tickMs
  const wait = due - Date.now()
  if (wait > 0) return void setTimeout(loop, wait)
  request(next)
  next += 1
  setImmediate(loop)
}
loop()
// Stay up, logging or not, until stopped; docker stop sends SIGTERM.
setInterval(() => {}, 1 << 30)
process.on('SIGTERM', () => process.exit(0))
