// The launcher's way into oclif (bin/run.js): bundled with the commands, so both use one copy of it.
export { execute } from '@oclif/core/execute'
