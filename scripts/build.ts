// Builds dist/: obs and the libraries it runs on (oclif, undici, chalk, …),
// bundled by esbuild into one module per command plus shared chunks
// (npm run build). The package then needs nothing from node_modules at run time.
//
// obs is typed during incidents, and Node spent a third of `obs ready` finding,
// reading and linking the ~300 files of src, oclif and undici one by one. Bundled,
// a command loads a handful of files. oclif finds the commands as before, by
// the manifest's paths under dist/commands; oclif itself is bundled into the
// shared chunks, so the launcher (bin/run.js, through dist/cli.js) and the
// commands use one copy of it.
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type Plugin } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// undici's HTTP/1 client requires its HTTP/2 client at load, and that loads
// node:http2 and node:tls (a sixth of a one-request command's start), though
// it only serves a connection where TLS negotiated h2. It is bundled behind a
// function that loads it on that first use.
const lazyHttp2Client: Plugin = {
  name: 'lazy-undici-http2-client',
  setup(bundle) {
    bundle.onResolve({ filter: /[/\\]client-h2\.js$/, namespace: 'file' }, (args) => ({
      path: createRequire(args.importer).resolve(args.path),
      namespace: 'lazy-h2',
    }))
    bundle.onLoad({ filter: /.*/, namespace: 'lazy-h2' }, (args) => ({
      contents: `module.exports = function connectH2(...args) { return require(${JSON.stringify(args.path)})(...args) }`,
      loader: 'js',
    }))
    // The stub's own require: the real module, from the file system.
    bundle.onResolve({ filter: /.*/, namespace: 'lazy-h2' }, (args) => ({ path: args.path, namespace: 'file' }))
  },
}

const commands = readdirSync(join(root, 'src/commands'))
  .filter((name) => name.endsWith('.ts'))
  .map((name) => `src/commands/${name}`)

await build({
  absWorkingDir: root,
  // The launcher's entry, the help class named in package.json, the heap tuning
  // the launcher applies before anything else loads, and the commands.
  entryPoints: ['src/cli.ts', 'src/lib/cli/help.ts', 'src/lib/heap.ts', ...commands],
  outbase: 'src',
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  chunkNames: 'chunks/[name]-[hash]',
  plugins: [lazyHttp2Client],
  // The CommonJS packages inside (oclif, undici, cli-table3) call require for
  // Node's own modules; an ES module has no require of its own.
  banner: { js: "import { createRequire as __obsCreateRequire } from 'node:module'; const require = __obsCreateRequire(import.meta.url);" },
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  // For profiles (bench/run.ts maps a bundled function back to its file); Node
  // does not read them, and the package leaves them out.
  sourcemap: 'external',
  logLevel: 'warning',
})
