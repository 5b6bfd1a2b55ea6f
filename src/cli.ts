// The launcher's way into oclif (bin/run.js): bundled with the commands, so both use one copy of it.
export { execute } from '@oclif/core/execute'
// And its guard on standard output, for the output no obs command writes (oclif's help, --version).
export { guardStdout, onStdoutError } from './lib/render/terminal.ts'
