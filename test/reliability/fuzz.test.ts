/**
 * Property fuzzing of every input surface obs reads: the config file, the
 * compose file and Alloy config doctor reads, Loki's answers (the streaming
 * parser, the shape checks, the metric renderers behind them), Alloy's
 * answers, and LogQL. Inputs are arbitrary and near-valid (real documents
 * mutated); the property is always the contract's: a result, or an ObsError
 * (one line, its exit code), never another exception.
 *
 * A few seconds per surface in `npm test`; OBS_FUZZ_RUNS=N runs N cases per
 * surface, OBS_PROPERTY_SEED=random a new seed (`npm run fuzz` does both). Coverage-guided fuzzing (Jazzer.js 4.0.0) was
 * tried: its Linux prebuilt needs glibc 2.38 and this image has 2.36, and
 * building it needs clang and cmake, which the image lacks.
 */
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, test } from 'node:test'
import fc from 'fast-check'
import nock from 'nock'
import { AlloyClient, componentBlocks, componentField, dockerTargets } from '../../src/lib/alloy/client.ts'
import { doctorChecks, parseAlloyConfig, parseCompose } from '../../src/lib/checks/doctor.ts'
import { resolveSettings } from '../../src/lib/config/settings.ts'
import { ObsError } from '../../src/lib/errors.ts'
import { AnswerParser } from '../../src/lib/loki/answer-parser.ts'
import { labelsAnswer, queryAnswer, seriesAnswer } from '../../src/lib/loki/answer-shapes.ts'
import type { LokiClient } from '../../src/lib/loki/client.ts'
import { checkLogQL, LogQLSyntaxError, pinnedLabels } from '../../src/lib/loki/logql.ts'
import { metricToJsonl, renderMetricTable } from '../../src/lib/render/output.ts'
import { chalkFor } from '../../src/lib/render/terminal.ts'
import { counters } from '../support/fault-truth.ts'
import { REPO } from '../support/loki.ts'
import { PROPERTY_SEED } from '../support/property-seed.ts'

const RUNS = Number(process.env.OBS_FUZZ_RUNS ?? 400)
const options = { numRuns: RUNS, seed: PROPERTY_SEED }
const cases: Record<string, number> = {}
const dir = mkdtempSync(join(tmpdir(), 'obs-fuzz-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** Runs `check`, counting the case under `surface`; an error that is not `allowed` is a crash. */
async function contract(surface: string, input: unknown, check: () => unknown, allowed: (error: unknown) => boolean = (error) => error instanceof ObsError): Promise<void> {
  cases[surface] = (cases[surface] ?? 0) + 1
  try {
    await check()
  } catch (error) {
    if (!allowed(error)) assert.fail(`${surface}: ${(error as Error)?.constructor?.name}: ${(error as Error)?.message} for ${JSON.stringify(input)?.slice(0, 500)}`)
    // A LogQL syntax error adds the query and a caret under it, by design.
    if (error instanceof ObsError && !(error instanceof LogQLSyntaxError))
      assert.doesNotMatch(error.render(), /\n/, `${surface}: one line for ${JSON.stringify(input)?.slice(0, 200)}`)
  }
}

/** Text near a real document: pieces of it cut, repeated, swapped and spliced with arbitrary text. */
function nearText(real: string): fc.Arbitrary<string> {
  const lines = real.split('\n')
  return fc.oneof(
    fc
      .array(fc.oneof(fc.constantFrom(...lines), fc.string({ maxLength: 30 }), fc.constantFrom('  ', '- ', ': ', '[', '{', '&a ', '*a', '!!binary ', '"', "'", '\t')), {
        maxLength: lines.length + 5,
      })
      .map((parts) => parts.join('\n')),
    fc.tuple(fc.nat(real.length), fc.nat(real.length), fc.string({ maxLength: 20 })).map(([a, b, text]) => real.slice(0, Math.min(a, b)) + text + real.slice(Math.max(a, b))),
    fc.string({ unit: 'binary', maxLength: 200 }),
  )
}

/** A JSON document with this one replaced at a random path by an arbitrary JSON value, or as it is. */
function mutatedJson(real: unknown): fc.Arbitrary<unknown> {
  const paths: (string | number)[][] = []
  const walk = (value: unknown, path: (string | number)[]) => {
    paths.push(path)
    if (Array.isArray(value)) for (const [i, item] of value.slice(0, 4).entries()) walk(item, [...path, i])
    else if (value && typeof value === 'object') for (const [key, item] of Object.entries(value)) walk(item, [...path, key])
  }
  walk(real, [])
  return fc.tuple(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 3 })).map(([path, replacement]) => {
    if (path.length === 0) return replacement
    const copy = structuredClone(real) as Record<string | number, unknown>
    let parent = copy
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
    parent[path.at(-1)!] = replacement
    return copy
  })
}

describe('the config file (obs.config.yaml, .json)', () => {
  const real =
    'defaultProfile: dev\nprofiles:\n  dev:\n    addr: http://localhost:3100\n    app: cogni-template\n    env: dev\n    timeout: 60s\n    retries: 2\n    headers:\n      X-A: b\npolicy:\n  allowedLabels: [app, env, service, stream]\n  maxValuesPerLabel: 100\n  forbiddenLabels: [reqId]\n'
  for (const name of ['obs.config.yaml', 'obs.config.json']) {
    test(`${name}: settings or one line, exit 2 (${RUNS} cases)`, async () => {
      const home = join(dir, name)
      mkdirSync(home)
      const documents = name.endsWith('.json')
        ? fc.oneof(
            mutatedJson({ defaultProfile: 'dev', profiles: { dev: { addr: 'http://localhost:3100', retries: 2 } } }).map((v) => JSON.stringify(v)),
            fc.string(),
          )
        : nearText(real)
      await fc.assert(
        fc.asyncProperty(documents, async (text) => {
          const file = join(home, name)
          writeFileSync(file, text)
          chmodSync(file, 0o600)
          await contract('configFile', text, () => resolveSettings({ flags: {}, env: { HOME: home, XDG_CONFIG_HOME: join(home, 'xdg') }, cwd: home, version: '0.0.0' }))
        }),
        options,
      )
    })
  }
})

describe('the files doctor reads (--compose, --alloy-config)', () => {
  const policy = { allowedLabels: ['app', 'env', 'service', 'stream'], maxValuesPerLabel: 100, forbiddenLabels: ['reqId'] }
  const unusedLoki = new Proxy({}, { get: () => assert.fail('a file check asked Loki') }) as LokiClient
  const base = { loki: unusedLoki, policy, range: () => ({ start: 0n, end: 1n }), window: '1h' }
  const surfaces = [
    { surface: 'composeFile', real: 'stack/docker-compose.yml', checks: (text: string) => doctorChecks({ ...base, compose: parseCompose(text) }), prefix: 'compose-' },
    { surface: 'alloyConfig', real: 'stack/alloy-config.alloy', checks: (text: string) => doctorChecks({ ...base, alloyConfig: parseAlloyConfig(text) }), prefix: 'alloy-config' },
  ]
  for (const { surface, real, checks, prefix } of surfaces) {
    test(`${surface}: parsed and inspected, or one line (${RUNS} cases)`, async () => {
      await fc.assert(
        fc.asyncProperty(nearText(readFileSync(join(REPO, real), 'utf8')), async (text) => {
          await contract(surface, text, async () => {
            for (const check of checks(text).filter((c) => c.id.startsWith(prefix))) await check.run({})
          })
        }),
        options,
      )
    })
  }
})

describe("Loki's answers", () => {
  const streams = {
    status: 'success',
    data: {
      resultType: 'streams',
      result: [
        {
          stream: { app: 'a' },
          values: [
            ['1700000000000000000', '{"level":"info"}', {}],
            ['1700000000000000001', 'b', { structuredMetadata: { t: 'x' }, parsed: { level: 'info' } }],
          ],
        },
      ],
      stats: { summary: { execTime: 0.1 } },
    },
  }
  const matrix = {
    status: 'success',
    data: {
      resultType: 'matrix',
      result: [
        {
          metric: { app: 'a' },
          values: [
            [1700000000, '1'],
            [1700000060, 'NaN'],
          ],
        },
      ],
    },
  }
  const vector = { status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [1700000000.5, '+Inf'] }] } }
  const scalar = { status: 'success', data: { resultType: 'scalar', result: [1700000000, '7'] } }
  const labels = { status: 'success', data: ['app', 'env'] }
  const series = { status: 'success', data: [{ app: 'a', env: 'prod' }] }
  const answers = fc.oneof(...[streams, matrix, vector, scalar, labels, series].map((real) => mutatedJson(real)), fc.jsonValue({ maxDepth: 5 }))
  const chalk = chalkFor({ isTTY: false }, {})

  test(`the streaming parser gives what JSON.parse gives, or a SyntaxError (${RUNS} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          answers.map((value) => JSON.stringify(value)),
          answers.chain((value) => nearText(JSON.stringify(value))),
        ),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (text, cuts) => {
          await contract('lokiParser', text, () => {
            const parse = () => {
              const parser = new AnswerParser()
              let from = 0
              for (const cut of cuts.map((c) => c % (text.length + 1)).sort((a, b) => a - b)) {
                parser.write(text.slice(from, cut))
                from = cut
              }
              parser.write(text.slice(from))
              return parser.end()
            }
            let expected: unknown
            try {
              expected = JSON.parse(text)
            } catch {
              // Entries are parsed as they complete: a bad one is refused by write(), the rest by end().
              assert.throws(parse, SyntaxError, `not JSON, refused: ${text}`)
              return
            }
            assert.deepEqual(parse(), expected)
          })
        },
      ),
      options,
    )
  })

  test(`shape checks, then the renderers behind them: a result or one line, exit 3 (${RUNS} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(answers, async (answer) => {
        const data = (answer as { data?: unknown } | null)?.data
        await contract('lokiShapes', answer, () => labelsAnswer('/loki/api/v1/labels', data))
        await contract('lokiShapes', answer, () => seriesAnswer('/loki/api/v1/series', data))
        await contract('lokiShapes', answer, async () => {
          const result = queryAnswer('/loki/api/v1/query_range', data)
          if (result.resultType === 'streams') return
          await renderMetricTable(result, { chalk, sparklines: true })
          metricToJsonl(result)
        })
      }),
      options,
    )
  })
})

describe("Alloy's answers", () => {
  const ADDR = 'http://alloy.fuzz:12345'
  const FIXTURES = join(REPO, 'test/fixtures/alloy-v1.1.1')
  const list = JSON.parse(readFileSync(join(FIXTURES, 'healthy.components.json'), 'utf8')) as unknown[]
  const detail = JSON.parse(readFileSync(join(FIXTURES, 'healthy.component.loki.source.docker.default.json'), 'utf8')) as Record<string, unknown>
  // A small real detail: the first target and the first debug block, so mutations reach every level.
  const small = { ...detail, arguments: [], debugInfo: (detail.debugInfo as unknown[]).slice(0, 1) }
  afterEach(() => nock.cleanAll())

  test(`components and their details: targets or one line, exit 3 (${RUNS} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(mutatedJson(list.slice(0, 2)), fc.jsonValue({ maxDepth: 4 })),
        fc.oneof(mutatedJson(small), fc.jsonValue({ maxDepth: 4 })),
        async (components, component) => {
          nock.cleanAll()
          nock(ADDR)
            .persist()
            .get('/api/v0/web/components')
            .reply(200, JSON.stringify(components))
            .get(/\/api\/v0\/web\/components\/.+/)
            .reply(200, JSON.stringify(component))
          const alloy = new AlloyClient({ baseUrl: ADDR, headers: {}, timeoutMs: 2000, retries: 0, peer: 'Alloy' })
          try {
            await contract('alloyAnswers', { components, component }, async () => {
              const all = await alloy.components()
              await dockerTargets(
                alloy,
                all.map((c) => ({ ...c, name: 'loki.source.docker' })),
              )
              const one = await alloy.component('x')
              componentField(one.exports, 'targets')
              componentBlocks(one.debugInfo, 'targets_info')
            })
          } finally {
            await alloy.close()
          }
        },
      ),
      options,
    )
  })
})

describe('LogQL', () => {
  const TOKENS = [
    '{',
    '}',
    '(',
    ')',
    '[',
    ']',
    ',',
    '|',
    '|=',
    '!=',
    '|~',
    '!~',
    '=',
    '=~',
    '"a"',
    '`b`',
    '"\\"',
    'app',
    'json',
    'logfmt',
    'or',
    'and',
    'by',
    'sum',
    'rate',
    'count_over_time',
    '5m',
    '1',
    ' ',
    '\n',
    '#c\n',
    'constructor',
    '__proto__',
    '😀',
    '\u0000',
    '\u202e',
  ]
  const queries = fc.oneof(
    fc.array(fc.constantFrom(...TOKENS), { maxLength: 30 }).map((parts) => parts.join('')),
    fc.string({ unit: 'binary', maxLength: 60 }),
  )

  test(`the pre-check: a kind or one syntax error, exit 2 (${RUNS * 5} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(queries, async (query) => {
        await contract('logql', query, () => {
          const kind = checkLogQL(query)
          assert.ok(kind === 'log' || kind === 'metric')
          pinnedLabels(query)
        })
      }),
      { ...options, numRuns: RUNS * 5 },
    )
  })
})

test('counts', (t) => {
  t.diagnostic(counters('fuzz', { seed: PROPERTY_SEED, ...cases }))
})
