#!/usr/bin/env node
// Finishes a built site directory for serving (called by `make build-site`):
//  1. the front end's files (pkg/i360.js, .wasm, .css) get content-hashed names, and hash.txt says
//     which (the format Leptos reads for its script tags: `js: <hash>` per line), so browsers may
//     keep them for a year and a new build is never served from a stale cache;
//  2. every text or wasm file gets brotli and gzip copies beside it, made once here at the highest
//     levels, which the server sends to browsers that accept them.
// It then prints the bundle's sizes, raw and with brotli: the figure issue 15's goal is about.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const site = process.argv[2];
if (!site) {
  console.error("usage: finish-site.mjs SITE_DIR");
  process.exit(2);
}
const NAME = "i360";
const pkg = join(site, "pkg");

const hashes = {};
for (const ext of ["js", "wasm", "css"]) {
  const plain = join(pkg, `${NAME}.${ext}`);
  const hash = createHash("sha256").update(readFileSync(plain)).digest("hex").slice(0, 16);
  renameSync(plain, join(pkg, `${NAME}.${hash}.${ext}`));
  hashes[ext] = hash;
}
writeFileSync(join(site, "hash.txt"), Object.entries(hashes).map(([ext, h]) => `${ext}: ${h}\n`).join(""));

const COMPRESSIBLE = /\.(js|wasm|css|svg|html|json|txt|ico)$/;
function* files(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}
for (const path of [...files(site)]) {
  if (!COMPRESSIBLE.test(path) || path.endsWith("hash.txt")) continue;
  const raw = readFileSync(path);
  const br = brotliCompressSync(raw, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
  });
  writeFileSync(`${path}.br`, br);
  writeFileSync(`${path}.gz`, gzipSync(raw, { level: 9 }));
}

const size = (ext, suffix = "") => statSync(join(pkg, `${NAME}.${hashes[ext]}.${ext}${suffix}`)).size;
const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
console.log(
  `bundle: wasm ${kb(size("wasm"))} raw, ${kb(size("wasm", ".br"))} brotli; js ${kb(size("js"))} raw, ${kb(size("js", ".br"))} brotli; ` +
    `wasm + js with brotli ${kb(size("wasm", ".br") + size("js", ".br"))}`,
);
