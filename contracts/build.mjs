#!/usr/bin/env node
// Compiles contracts/*.sol with the pinned solc-js and writes contracts/out/<Name>.json
// (ABI + creation and runtime bytecode). The artifacts are committed so the Rust build needs
// no node; `--check` regenerates them in memory and exits 1 if anything would change, which
// is what CI runs.
//
// Determinism: sources are read in sorted order under fixed names (no absolute paths reach
// the compiler, so the metadata hash in the bytecode does not depend on where the repo is
// cloned), settings are fixed below, and the JSON is written with sorted contract names,
// two-space indentation and a trailing newline.

import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

// Must match the exact version pinned in package.json; a different compiler would produce
// different bytecode and the check would fail for a confusing reason.
const SOLC_VERSION = "0.8.37";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "out");
const check = process.argv.includes("--check");

const loaded = solc.version();
if (!loaded.startsWith(`${SOLC_VERSION}+`)) {
  console.error(`solc ${loaded} is loaded, expected ${SOLC_VERSION}: run \`npm ci\``);
  process.exit(2);
}

const sourceNames = readdirSync(here).filter((f) => f.endsWith(".sol")).sort();
const sources = {};
for (const name of sourceNames) {
  sources[name] = { content: readFileSync(join(here, name), "utf8") };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    // Cancun: supported by every current L1/L2 client and by anvil; newer opcodes buy us nothing.
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
    },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const diag of output.errors ?? []) {
  console.error(diag.formattedMessage ?? diag.message);
  if (diag.severity === "error") failed = true;
}
if (failed) process.exit(1);

const artifacts = new Map();
for (const file of sourceNames) {
  const contracts = output.contracts?.[file] ?? {};
  for (const name of Object.keys(contracts).sort()) {
    const c = contracts[name];
    // Interfaces (no bytecode) are not deployable artifacts.
    if (!c.evm.bytecode.object) continue;
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: { solc: SOLC_VERSION, settings: { evmVersion: input.settings.evmVersion, optimizer: input.settings.optimizer } },
      abi: c.abi,
      bytecode: `0x${c.evm.bytecode.object}`,
      deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
    };
    artifacts.set(`${name}.json`, `${JSON.stringify(artifact, null, 2)}\n`);
  }
}

let stale = [];
for (const [file, text] of artifacts) {
  const path = join(outDir, file);
  const current = existsSync(path) ? readFileSync(path, "utf8") : null;
  if (current === text) continue;
  if (check) {
    stale.push(file);
  } else {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path, text);
    console.log(`wrote contracts/out/${file}`);
  }
}
// An artifact with no source any more is stale too.
if (existsSync(outDir)) {
  for (const file of readdirSync(outDir).filter((f) => f.endsWith(".json"))) {
    if (!artifacts.has(file)) stale.push(`${file} (no source)`);
  }
}

if (check) {
  if (stale.length > 0) {
    console.error(`contract artifacts are out of date: ${stale.join(", ")}`);
    console.error("run `node contracts/build.mjs` and commit contracts/out/");
    process.exit(1);
  }
  console.log("contract artifacts are up to date");
} else if (stale.length > 0) {
  console.error(`remove stale artifacts: ${stale.join(", ")}`);
  process.exit(1);
}
