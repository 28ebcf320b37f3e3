// Preloaded with `node --import ./node20-compat.mjs` on Node < 22, where
// `fs` has no `globSync` (added in Node 22). The conformance suite's published
// build imports it by name, so `import ... from "fs"` is resolved to
// fs-with-glob.mjs: everything `fs` exports plus a small `globSync`.
import fs from 'node:fs';
import { register } from 'node:module';

if (typeof fs.globSync !== 'function') {
  register('./node20-compat-hooks.mjs', import.meta.url);
}
