#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Runs the TypeScript sources directly (Node strips the types), without a build.
const { execute } = await import('@oclif/core')
await execute({ development: true, dir: import.meta.url })
