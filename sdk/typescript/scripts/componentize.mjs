// Builds a policy component from a compiled entry module:
//   node scripts/componentize.mjs --world pricing --entry dist/examples/pricing-linear/src/component.js --out build/pricing-linear.wasm
// 1. esbuild bundles the entry and the SDK into one ES module (the WIT imports stay imports);
// 2. componentize-js turns it into a component of the world, with every WASI feature it can
//    leave out left out (stdio, random, clocks, http, fetch-event), so the component imports
//    nothing but grid:policy and loads on a host that grants no WASI at all.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { componentize } from '@bytecodealliance/componentize-js';
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const { values } = parseArgs({
  options: {
    world: { type: 'string' },
    entry: { type: 'string' },
    out: { type: 'string' },
    wit: { type: 'string', default: join(root, '..', '..', 'wit') },
  },
});
if (!values.world || !values.entry || !values.out) {
  console.error('usage: componentize.mjs --world pricing|payee|authorization --entry ENTRY.js --out OUT.wasm [--wit DIR]');
  process.exit(2);
}
const bundle = values.out.replace(/\.wasm$/, '') + '.bundle.js';
mkdirSync(dirname(values.out), { recursive: true });
await build({
  entryPoints: [values.entry],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  external: ['grid:policy/*'],
  outfile: bundle,
  logLevel: 'warning',
});
// componentize-js reads the WIT through a WASI filesystem shim that (since preview2-shim
// 0.26) preopens nothing by default, which is why `componentize-js --wit DIR` and jco's
// subcommands fail with "No such file or directory": open the WIT directory, and only it.
const witPath = resolve(values.wit);
_setPreopens({ [witPath]: witPath });
const { component, imports } = await componentize({
  sourcePath: resolve(bundle),
  witPath,
  worldName: values.world,
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});
const foreign = imports.filter(([name]) => !name.startsWith('grid:policy/'));
if (foreign.length > 0) {
  console.error(`the component imports more than grid:policy: ${foreign.map(([n]) => n).join(', ')}`);
  process.exit(1);
}
writeFileSync(values.out, component);
console.log(`${values.out}: ${component.length} bytes, imports ${[...new Set(imports.map(([n]) => n))].join(', ')}`);
