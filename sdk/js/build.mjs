// Builds the SDK into dist/ from src/ (run by `npm run build`, `npm pack` and `make install`):
//   remotebank-h5.mjs         ES module, sm-crypto bundled (for bundlers and <script type=module>)
//   remotebank-h5.js          one file for a <script> tag, global `RemoteBank`
//   remotebank-h5-worker.js   the frame-encryption worker (served beside either file)
//   remotebank-seat.js/.mjs   the seat widget <rb-seat> for CRM pages (docs/seat-widget.md)
//   types/                    TypeScript declarations
//   examples/                 the example pages (they load ../remotebank-h5.mjs)
// All minified with source maps; nothing is fetched from a CDN at run time.
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const out = join(root, "dist");

const common = {
  bundle: true,
  minify: true,
  sourcemap: true,
  target: ["es2020"],
  legalComments: "none",
  logLevel: "warning",
  absWorkingDir: root,
};

rmSync(out, { recursive: true, force: true });
await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: ["src/index.ts"],
    format: "esm",
    outfile: join(out, "remotebank-h5.mjs"),
    define: { __RB_VERSION__: JSON.stringify(version), __RB_FORMAT__: '"esm"' },
  }),
  esbuild.build({
    ...common,
    entryPoints: ["src/index.ts"],
    format: "iife",
    globalName: "RemoteBank",
    outfile: join(out, "remotebank-h5.js"),
    define: {
      __RB_VERSION__: JSON.stringify(version),
      __RB_FORMAT__: '"iife"',
      "import.meta.url": "undefined",
    },
  }),
  esbuild.build({
    ...common,
    entryPoints: ["src/seat-entry.ts"],
    format: "esm",
    outfile: join(out, "remotebank-seat.mjs"),
  }),
  esbuild.build({
    ...common,
    entryPoints: ["src/seat-entry.ts"],
    format: "iife",
    globalName: "RemoteBankSeat",
    outfile: join(out, "remotebank-seat.js"),
    define: { "import.meta.url": "undefined" },
  }),
  esbuild.build({
    ...common,
    entryPoints: ["src/worker.ts"],
    format: "iife",
    outfile: join(out, "remotebank-h5-worker.js"),
  }),
]);
cpSync(join(root, "examples"), join(out, "examples"), { recursive: true });
execFileSync(
  process.execPath,
  [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json", "--emitDeclarationOnly", "--outDir", join(out, "types")],
  { cwd: root, stdio: "inherit" },
);
