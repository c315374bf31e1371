// Playwright drives Debian's Chromium (no browser download) against a server started here on a
// fresh SQLite database with the demo organization.
import { defineConfig } from "@playwright/test";
import * as os from "node:os";
import * as path from "node:path";

const port = Number(process.env.I360_E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;
const serverBin = process.env.I360_SERVER_BIN;
const siteRoot = process.env.I360_SITE_ROOT;
if (!serverBin || !siteRoot) {
  throw new Error("Run the end-to-end tests through `make test` (it sets I360_SERVER_BIN and I360_SITE_ROOT).");
}
const dataDir = path.join(os.tmpdir(), `i360-e2e-${port}`);
// Tests create their own organizations through the operator CLI against the same database, so
// each test starts from a known state whatever ran before it.
process.env.I360_E2E_DATABASE_URL = `sqlite://${dataDir}/e2e.db`;
process.env.I360_E2E_KEY_FILE = `${dataDir}/secrets.key`;
process.env.I360_E2E_EMULATOR_ORIGIN = `http://127.0.0.1:${port + 1}`;

export default defineConfig({
  testDir: "./tests",
  outputDir: "./test-results",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: "/usr/bin/chromium",
      // Needed as root in a container, and keeps Chromium off a network it cannot reach.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
  },
  webServer: {
    command: `rm -rf ${dataDir} && mkdir -p ${dataDir} && exec ${serverBin} --demo --bind 127.0.0.1:${port} --emulator-bind 127.0.0.1:${port + 1} --site-root ${siteRoot} --database-url sqlite://${dataDir}/e2e.db --key-file ${dataDir}/secrets.key`,
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "ignore",
    stderr: "pipe",
  },
});
