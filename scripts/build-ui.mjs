// Builds the web UI (ui/) into <outDir>/ui/: one script and one stylesheet named by their content's
// hash, and the index.html that loads them (no inline script or style: the page's
// Content-Security-Policy allows neither). `npm run build` runs it after tsc:
//
//   node scripts/build-ui.mjs [outDir]     (default: dist)
//
// The vault serves that directory at /ui/ (src/http/ui-routes.ts finds it beside its own
// compiled module: <outDir>/src/http/ui-routes.js → <outDir>/ui/).
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outRoot = resolve(root, process.argv[2] ?? "dist");
const outdir = join(outRoot, "ui");

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: "ui/src/main.tsx", style: "ui/src/styles.css" },
  outdir,
  entryNames: "[name]-[hash]",
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022", "chrome111", "firefox111", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  tsconfig: "ui/tsconfig.json",
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});

/** The file built from `entry` (relative to the repository), by its name in the output directory. */
function outputOf(entry) {
  const found = Object.entries(result.metafile.outputs).find(([, output]) => output.entryPoint === entry);
  if (found === undefined) throw new Error(`esbuild wrote nothing for ${entry}`);
  return basename(found[0]);
}

const template = await readFile(join(root, "ui", "index.html"), "utf8");
const html = template.replace("%SCRIPT%", outputOf("ui/src/main.tsx")).replace("%STYLE%", outputOf("ui/src/styles.css"));
if (html.includes("%")) throw new Error("ui/index.html has a placeholder the build does not fill");
await writeFile(join(outdir, "index.html"), html);
console.log(`web UI built in ${outdir}`);
