import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type CompletionSources, completeWords, completionScript, forBash, splitLine } from '../../../src/lib/cli/completion.ts'

const asked: string[] = []
const sources: CompletionSources = {
  commands: [
    { id: 'query-range', flags: [{ name: 'output', char: 'o', options: ['pretty', 'raw', 'jsonl', 'json'] }, { name: 'since' }, { name: 'profile' }], logqlArgument: true },
    { id: 'labels', flags: [{ name: 'query' }], logqlArgument: false, labelArgument: true },
    { id: 'ready', flags: [{ name: 'wait' }], logqlArgument: false },
  ],
  profiles: async () => ['dev', 'prod'],
  labelNames: async () => {
    asked.push('names')
    return ['app', 'env', 'service']
  },
  labelValues: async (name) => {
    asked.push(`values ${name}`)
    return name === 'app' ? ['cogni-template', 'billing', 'say "hi"'] : []
  },
}

async function complete(line: string): Promise<string[]> {
  const { words, current } = splitLine(line)
  return forBash(current, await completeWords(words, current, sources))
}

describe('completeWords', () => {
  test('commands, flags, flag values and profiles', async () => {
    assert.deepEqual(await complete('obs '), ['labels', 'query-range', 'ready'])
    assert.deepEqual(await complete('obs qu'), ['query-range'])
    assert.deepEqual(await complete('obs query-range {a="b"} --s'), ['--since'])
    assert.deepEqual(await complete('obs query-range {a="b"} -o j'), ['jsonl', 'json'])
    assert.deepEqual(await complete('obs query-range {a="b"} --profile '), ['dev', 'prod'])
    assert.deepEqual(await complete('obs nosuch '), [])
  })

  test("inside a selector: label names, then that label's values, quoted as LogQL wants, the shell's quote kept", async () => {
    assert.deepEqual(await complete(`obs query-range '{`), [`'{app=`, `'{env=`, `'{service=`])
    assert.deepEqual(await complete(`obs query-range '{app="c`), [`'{app="cogni-template"`])
    assert.deepEqual(await complete(`obs query-range '{env="test", app="s`), [`'{env="test", app="say \\"hi\\""`])
    assert.deepEqual(await complete(`obs query-range '{app="x"} | json`), [], 'past the selector: nothing')
    assert.deepEqual(await complete('obs labels s'), ['service'])
    assert.deepEqual(await complete(`obs labels --query '{ap`), [`'{app=`])
  })

  test('Loki is asked only where a label can go', async () => {
    asked.length = 0
    await complete('obs ready --w')
    await complete('obs query-range {a="b"} --since ')
    assert.deepEqual(asked, [])
  })
})

describe('splitLine and forBash', () => {
  test('quotes keep a word whole; the word being typed is apart', () => {
    assert.deepEqual(splitLine(`obs tail '{app="a b"} |= "x y'`), { words: ['obs', 'tail'], current: `'{app="a b"} |= "x y'` })
    assert.deepEqual(splitLine('obs tail '), { words: ['obs', 'tail'], current: '' })
  })

  test('bash replaces a quoted word whole, and an unquoted one after its last =', () => {
    assert.deepEqual(forBash(`'{app="c`, [`'{app="cogni"`]), [`'{app="cogni"`])
    assert.deepEqual(forBash('--output=j', ['--output=json']), ['json'])
  })

  test('the scripts call obs __complete with the line up to the cursor', () => {
    assert.match(completionScript('bash', 'obs'), /obs __complete "\$line"/)
    assert.match(completionScript('zsh', 'obs'), /bashcompinit/)
  })
})
