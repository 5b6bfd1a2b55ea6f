/**
 * The architecture as the tree shows it (README, Layout). biome.jsonc keeps
 * each layer of src/lib from importing a higher one; this keeps modules from
 * importing each other in a circle, which a layer rule cannot see inside one
 * folder.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { test } from 'node:test'

const SRC = join(import.meta.dirname, '../../src')

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? modules(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  )
}

/** Every relative import of a module, type-only ones included: a cycle of types is still a knot to untie. */
function imports(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*?from '(\.[^']+)'/gm)].map((m) => normalize(join(dirname(file), m[1]!)))
}

test('no module of src imports itself through others', () => {
  const graph = new Map(modules(SRC).map((file) => [file, imports(file)]))
  const cycles: string[] = []
  const done = new Set<string>()
  const visit = (file: string, path: string[]) => {
    if (path.includes(file)) {
      cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' → '))
      return
    }
    if (done.has(file)) return
    for (const next of graph.get(file) ?? []) visit(next, [...path, file])
    done.add(file)
  }
  for (const file of graph.keys()) visit(file, [])
  assert.ok(graph.size > 30, `found the modules (${graph.size})`)
  assert.deepEqual(cycles, [])
})
