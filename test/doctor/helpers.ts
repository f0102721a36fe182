/**
 * The compiled CLI (bin/scim-bridge.js) as operators run it: one-shot commands, and `serve` as a
 * child process whose JSON log lines the tests read.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../../src/paths.js";

const bin = join(packageRoot, "bin/scim-bridge.js");

/** Environment without the caller's Auth0 or database settings, plus `env`. */
export function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const k of Object.keys(base))
    if (/^(AUTH0_|DATABASE_URL|PUBLIC_URL|PORT|BRIDGE_ADMIN_TOKEN|LOG_LEVEL)/.test(k)) delete base[k];
  return { ...base, ...env };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string>, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: cleanEnv(env), ...(cwd ? { cwd } : {}) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface Served {
  child: ChildProcessWithoutNullStreams;
  url: string;
  logs: () => LogLine[];
  output: () => string;
  /** SIGTERM, and the exit code. */
  stop: () => Promise<number | null>;
}

/** Starts `scim-bridge <command>` (serve or start) on a free port; resolves once it listens. */
export async function startBridge(
  command: "serve" | "start",
  env: Record<string, string>,
  cwd?: string,
): Promise<Served> {
  const child = spawn(process.execPath, [bin, command], {
    env: cleanEnv({ PORT: "0", LOG_LEVEL: "info", ...env }),
    ...(cwd ? { cwd } : {}),
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const logs = (): LogLine[] =>
    out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as LogLine);
  const deadline = Date.now() + 30_000;
  let port: number | undefined;
  while (port === undefined) {
    port = logs().find((l) => l.msg === "scim-bridge listening")?.port as number | undefined;
    if (port !== undefined) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${command} did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    logs,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once("exit", (code) => resolve(code));
        child.kill("SIGTERM");
      }),
  };
}

export async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
