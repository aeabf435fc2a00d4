// Runs the tests (compiled to build/test) against a real tpwallet server: the Go binary is
// built once here, unless TPWALLET_BIN names one, and each test file starts its own
// `tpwallet serve` processes from it.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const pkg = resolve(here, "..");
const repo = resolve(pkg, "../..");
let bin = process.env.TPWALLET_BIN;
let tmp;
if (!bin) {
  tmp = mkdtempSync(join(tmpdir(), "tpwallet-ts-"));
  bin = join(tmp, "tpwallet");
  const b = spawnSync("go", ["build", "-o", bin, "./cmd/tpwallet"], { cwd: repo, stdio: "inherit" });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
// Arguments name test files (build/test/x.test.js) to run only those.
const dir = join(pkg, "build", "test");
const files = process.argv.length > 2 ? process.argv.slice(2)
  : readdirSync(dir).filter((f) => f.endsWith(".test.js")).map((f) => join(dir, f));
const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], {
  stdio: "inherit",
  env: { ...process.env, TPWALLET_BIN: bin },
});
if (tmp) rmSync(tmp, { recursive: true, force: true });
process.exit(r.status ?? 1);
