// Entry point of the integration CTest: checks that the npm packages are installed, then
// runs the *.test.mjs files one at a time (each starts its own servers; the machine is
// small) with Node's built-in test runner and exits with its status.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
for (const pkg of ['openai', 'playwright-core']) {
  if (!fs.existsSync(path.join(here, 'node_modules', pkg, 'package.json'))) {
    console.error(`integration: node package '${pkg}' is missing; run scripts/install-node-deps.sh`);
    process.exit(1);
  }
}
const files = process.argv.slice(2);
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', cwd: here });
process.exit(r.status ?? 1);
