// Module resolution hook for node20-compat.mjs: `fs` / `node:fs` imported
// from outside this directory resolves to fs-with-glob.mjs.
const replacement = new URL('./fs-with-glob.mjs', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL !== replacement) {
    return { url: replacement, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
