import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatBytes, groupDigits, parseBytes } from '../../src/lib/units.ts'

test('formatBytes: decimal units, three significant figures', () => {
  assert.deepEqual([0, 999, 1000, 12_345, 2_340_000_000, 10e9, 123e12].map(formatBytes), ['0 bytes', '999 bytes', '1.00 kB', '12.3 kB', '2.34 GB', '10.0 GB', '123 TB'])
})

test('parseBytes: sizes as written in a profile; anything else is undefined', () => {
  assert.deepEqual(
    ['10GB', '500 MB', '1.5gb', '42', '7 bytes', '3kB'].map((text) => parseBytes(text)),
    [10e9, 500e6, 1.5e9, 42, 7, 3000],
  )
  assert.deepEqual(
    ['', 'ten GB', '10 GiB', '-1GB', '1e9'].map((text) => parseBytes(text)),
    [undefined, undefined, undefined, undefined, undefined],
  )
})

test('groupDigits', () => {
  assert.deepEqual([0, 999, 1000, 1_234_567].map(groupDigits), ['0', '999', '1,000', '1,234,567'])
})
