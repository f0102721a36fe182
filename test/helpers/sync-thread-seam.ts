/**
 * Test seam for the sync engine's thread (BridgeOverrides.syncThread.workerSetup): the thread
 * imports this module and runs setup() before its worker starts. With `?crash=<file>` in the URL,
 * the thread crashes (an uncaught exception) as soon as that file exists, and every replacement
 * fails to start while it does, so a test controls how long the thread stays down.
 */
import { existsSync } from "node:fs";
import type { Logger } from "pino";

const crashFile = new URL(import.meta.url).searchParams.get("crash");

export function setup({ log }: { log: Logger }): void {
  if (crashFile && existsSync(crashFile)) throw new Error("crash seam: this thread fails to start");
  // A line logged in the thread, so a test can see it arrive with its fields.
  log.info({ seam: "sync-thread", threadLine: true }, "sync thread seam installed");
  if (!crashFile) return;
  setInterval(() => {
    if (existsSync(crashFile)) throw new Error("crash seam: the sync thread crashed on purpose");
  }, 20).unref();
}
