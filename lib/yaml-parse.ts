// yaml's parse, behind a module of our own so that `await import('./yaml-parse.ts')` is bundled by
// bin/run (a dynamic import of yaml itself, a CommonJS package, is left to node: twice the cost).
export { parse } from 'yaml';
