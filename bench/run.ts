/**
 * `npm run bench` — every benchmark in turn, each as its own process (its own cleanup, its own
 * table). Arguments after `--` are passed to each. Exit code: the first non-zero one, if any.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const BENCHMARKS = ["objects-bench.js", "cache-bench.js"];

// Ctrl-C reaches the running benchmark too (same process group); it stops its servers, removes
// its files and exits 130, which ends this loop.
process.on("SIGINT", () => undefined);

let exitCode = 0;
for (const file of BENCHMARKS) {
  const script = fileURLToPath(new URL(file, import.meta.url));
  const result = spawnSync(process.execPath, [script, ...process.argv.slice(2)], { stdio: "inherit" });
  const code = result.status ?? (result.signal === "SIGINT" ? 130 : 1);
  if (code === 130) process.exit(130);
  if (exitCode === 0) exitCode = code;
}
process.exit(exitCode);
