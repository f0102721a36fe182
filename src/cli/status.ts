/**
 * `scim-bridge jobs` and `scim-bridge status <org>`: read-only views of the queue and of one
 * organization's sync health, for operators. Tables for people, `--json` for scripts.
 * `scim-bridge jobs retry` puts dead (or waiting) jobs back to work, as the admin API's retry route does.
 * Exit codes: 0 shown (or retried); 1 unknown organization or job, or a job that cannot be retried.
 */
import { Option, InvalidArgumentError, type Command } from "commander";
import { listDirectories, scimBaseUrl } from "../directory/directories.js";
import { queueJobs } from "../directory/operator-views.js";
import { getOrganization, type OrganizationRow } from "../directory/organizations.js";
import type { StoreOp } from "../directory/store-op.js";
import { isActiveScimToken, listOrganizationScimTokens } from "../directory/tokens.js";
import { isBridgeError } from "../errors.js";
import { activePause } from "../sync/guard.js";
import { failedUsers, syncStatusCounts } from "../sync/sync-state.js";
import { listDeadJobs, queueDepth, retryJob } from "../sync/job-queries.js";
import { Lane, laneName } from "../directory/outbox.js";
import { changeBy } from "../directory/write-context.js";
import { cliOperator, withStore, type OpenStore } from "./database.js";

const exitUnknown = 1;
/** Users with a sync error listed by `status` (the count covers all of them). */
const failedShown = 20;
const jobStates = ["pending", "running", "dead"] as const;

/** Columns padded to their widest cell; numbers right-aligned. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"));
  return cells
    .map((r) =>
      r
        .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

const iso = (ms: number | null | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

function relative(ms: number, now: number): string {
  const s = Math.round((ms - now) / 1000);
  const abs = Math.abs(s);
  const text =
    abs < 60
      ? `${abs}s`
      : abs < 3600
        ? `${Math.round(abs / 60)}m`
        : abs < 86400
          ? `${Math.round(abs / 3600)}h`
          : `${Math.round(abs / 86400)}d`;
  return s > 0 ? `in ${text}` : s === 0 ? "now" : `${text} ago`;
}

const clip = (text: string | null, max: number): string =>
  !text ? "" : text.length > max ? `${text.slice(0, max - 1)}…` : text;

function unknownOrganization(slug: string): void {
  console.error(`organization "${slug}" not found (scim-bridge org list shows the existing ones)`);
  process.exitCode = exitUnknown;
}

// ── jobs ─────────────────────────────────────────────────────────────────────────────────────────

interface JobsOptions {
  org?: string;
  state?: (typeof jobStates)[number];
  limit: number;
  json?: boolean;
}

/** The organization named by --org (null when there is none by that name) and its jobs, in one snapshot. */
function* listJobs(opts: JobsOptions) {
  const org = opts.org === undefined ? undefined : yield* getOrganization(opts.org);
  if (opts.org !== undefined && !org) return null;
  const { total, jobs } = yield* queueJobs({
    states: opts.state ? [opts.state] : jobStates,
    organizationId: org?.id,
    limit: opts.limit,
  });
  return {
    org,
    total,
    jobs: jobs.map((job) => ({
      id: job.id,
      organization: job.slug ?? job.organizationId,
      kind: job.kind,
      subjectId: job.subjectId,
      ...(job.userName ? { userName: job.userName } : {}),
      lane: laneName(job.lane),
      state: job.state,
      attempts: job.attempts,
      runAfter: iso(job.runAfter),
      firstEnqueuedAt: iso(job.firstEnqueuedAt),
      updatedAt: iso(job.updatedAt),
      lastError: job.lastError,
    })),
  };
}

// ── status ───────────────────────────────────────────────────────────────────────────────────────

/** The figures of `status`, read in one snapshot so they add up. */
function* organizationStatus(org: OrganizationRow, publicUrl: string | undefined, now: number) {
  const dirs = yield* listDirectories(org.id);
  const tokens = yield* listOrganizationScimTokens(org.id);

  const counts = yield* syncStatusCounts(org.id);
  const queue = Object.fromEntries(
    Object.values(Lane).map((l) => [laneName(l), { pending: 0, running: 0, dead: 0 }]),
  ) as Record<string, Record<(typeof jobStates)[number], number>>;
  const depth = yield* queueDepth(org.id);
  for (const row of depth) (queue[laneName(row.lane)] ??= { pending: 0, running: 0, dead: 0 })[row.state] = row.count;
  const waiting = depth
    .filter((d) => d.lane === Lane.deprovision && d.state !== "dead")
    .map((d) => d.oldestFirstEnqueuedAt);
  const oldest = waiting.length > 0 ? Math.min(...waiting) : null;
  const pause = yield* activePause(org.id);
  const failed = yield* failedUsers(org.id, failedShown);

  return {
    organization: {
      id: org.id,
      slug: org.slug,
      displayName: org.displayName,
      userModel: org.userModel,
      connection: org.connection,
      auth0OrgId: org.auth0OrgId,
      activeMappingVersion: org.activeMappingVersion,
      createdAt: iso(org.createdAt),
    },
    directories: dirs.map((d) => {
      const own = tokens.filter((t) => t.directoryId === d.id);
      const lastUsed = Math.max(0, ...own.map((t) => t.lastUsedAt ?? 0));
      return {
        id: d.id,
        name: d.name,
        ...(publicUrl ? { scimBaseUrl: scimBaseUrl(publicUrl, d.id) } : {}),
        users: d.userCount,
        groups: d.groupCount,
        activeTokens: own.filter((t) => isActiveScimToken(t, now)).length,
        lastUsedAt: iso(lastUsed),
      };
    }),
    failedUsers: failed.map((f) => ({ ...f, lastErrorAt: iso(f.lastErrorAt) })),
    users: {
      total: counts.total,
      active: counts.active,
      inactive: counts.total - counts.active,
      synced: counts.synced,
      pending: counts.pending,
      failed: counts.failed,
      awaitingFirstLogin: counts.awaitingFirstLogin,
      notSynced: counts.notSynced,
    },
    queue,
    deadJobs: Object.values(queue).reduce((sum, q) => sum + q.dead, 0),
    oldestDeprovisionWaitingSince: iso(oldest ?? null),
    guard: pause ? { paused: true, reason: pause.reason, trippedAt: iso(pause.trippedAt) } : { paused: false },
  };
}

type OrganizationStatus = ReturnType<typeof organizationStatus> extends StoreOp<infer T> ? T : never;

function* statusOf(slug: string, publicUrl: string | undefined, now: number): StoreOp<OrganizationStatus | null> {
  const org = yield* getOrganization(slug);
  return org ? yield* organizationStatus(org, publicUrl, now) : null;
}

/** Every dead job's id (of one organization, or all), page by page in one snapshot; null: no such organization. */
function* deadJobIds(orgRef: string | undefined): StoreOp<number[] | null> {
  const org = orgRef === undefined ? undefined : yield* getOrganization(orgRef);
  if (orgRef !== undefined && !org) return null;
  const ids: number[] = [];
  for (let before: number | undefined; ;) {
    const page = yield* listDeadJobs({ organizationId: org?.id, limit: 500, before });
    ids.push(...page.jobs.map((j) => j.id));
    if (page.next === null) return ids;
    before = page.next;
  }
}

function statusText(s: OrganizationStatus, now: number): string {
  const o = s.organization;
  const u = s.users;
  const lines = [
    `Organization ${o.slug} (${o.displayName})`,
    `  id          ${o.id}`,
    `  user model  ${o.userModel}; connection ${o.connection}`,
    `  Auth0 org   ${o.auth0OrgId ?? "not created yet"}`,
    `  mapping     ${o.activeMappingVersion === null ? "default (none applied)" : `version ${o.activeMappingVersion}`}`,
    `  guard       ${s.guard.paused ? `PAUSED since ${s.guard.trippedAt}: ${s.guard.reason} (irreversible operations wait for an operator)` : "not paused"}`,
    "",
    "Directories",
    s.directories.length === 0
      ? "  (none)"
      : formatTable(
          ["  ID", "NAME", "USERS", "GROUPS", "TOKENS", "LAST USED"],
          s.directories.map((d) => [
            `  ${d.id}`,
            d.name,
            d.users,
            d.groups,
            d.activeTokens,
            d.lastUsedAt ? relative(Date.parse(d.lastUsedAt), now) : "never",
          ]),
        ),
    ...s.directories.filter((d) => d.scimBaseUrl).map((d) => `  ${d.id}: ${d.scimBaseUrl}`),
    "",
    `Users: ${u.total} (${u.active} active, ${u.inactive} inactive)`,
    formatTable(
      ["  SYNC STATE", "USERS"],
      [
        ["  synced", u.synced],
        ["  pending", u.pending],
        ["  failed", u.failed],
        ["  awaiting first login", u.awaitingFirstLogin],
        ["  not synced", u.notSynced],
      ],
    ),
    "",
    "Queue",
    formatTable(
      ["  LANE", "PENDING", "RUNNING", "DEAD"],
      Object.entries(s.queue).map(([lane, q]) => [`  ${lane}`, q.pending, q.running, q.dead]),
    ),
  ];
  if (s.oldestDeprovisionWaitingSince)
    lines.push(`  oldest deprovision waiting since ${relative(Date.parse(s.oldestDeprovisionWaitingSince), now)}`);
  if (s.deadJobs > 0) lines.push(`  ${s.deadJobs} dead job(s): scim-bridge jobs --org ${o.slug} --state dead`);
  if (s.failedUsers.length > 0) {
    lines.push(
      "",
      `Sync errors (latest ${Math.min(5, s.failedUsers.length)} of ${u.failed}${u.failed > 5 ? "; --json lists " + failedShown : ""})`,
    );
    for (const f of s.failedUsers.slice(0, 5)) lines.push(`  ${clip(f.userName, 40)}: ${clip(f.lastError, 100)}`);
  }
  return lines.join("\n");
}

function parseLimit(value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError("a limit is a positive whole number");
  return Number(value);
}

/**
 * Registers `jobs` and `status`. `publicUrl`, when given, adds each directory's SCIM base URL.
 */
export function registerStatusCommands(program: Command, openStore: OpenStore, publicUrl?: () => string): void {
  const jobsCommand = program
    .command("jobs")
    .description("list queued, running and dead sync jobs (lane, attempts, last error)")
    .option("--org <slug>", "only this organization's jobs")
    .addOption(new Option("--state <state>", "only jobs in this state (default: all three)").choices(jobStates))
    .option("--limit <n>", "show at most this many", parseLimit, 50)
    .option("--json", "machine-readable output")
    .action(async (opts: JobsOptions) => {
      const now = Date.now();
      const listing = await withStore(openStore, (store) => store.read(listJobs(opts)));
      if (listing === null) return unknownOrganization(opts.org!);
      const { org, ...result } = listing;
      if (opts.json) return console.log(JSON.stringify(result, null, 2));
      if (result.jobs.length === 0)
        return console.log(`no ${opts.state ?? "queued, running or dead"} jobs${org ? ` for ${org.slug}` : ""}`);
      const table = formatTable(
        ["ID", "ORG", "KIND", "SUBJECT", "LANE", "STATE", "ATTEMPTS", "NEXT RUN", "LAST ERROR"],
        result.jobs.map((j) => [
          j.id,
          j.organization,
          j.kind,
          clip(j.userName ?? j.subjectId, 36),
          j.lane,
          j.state,
          j.attempts,
          j.state !== "pending" || !j.runAfter
            ? ""
            : Date.parse(j.runAfter) <= now
              ? "due"
              : relative(Date.parse(j.runAfter), now),
          clip(j.lastError, 60),
        ]),
      );
      console.log(table);
      if (result.total > result.jobs.length)
        console.log(`… ${result.total - result.jobs.length} more (--limit, or --json)`);
    });

  jobsCommand
    .command("retry [job-id]")
    .description(
      "retry a dead (or waiting) job now, attempts reset; --dead retries every dead job (--org <slug>: of one organization; --json)",
    )
    .option("--dead", "retry every dead job")
    .option("--actor <name>", "who (default: the OS user), for the audit log")
    // --org and --json are the `jobs` command's own options, which commander hands to it.
    .action(async (jobId: string | undefined, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ dead?: boolean; org?: string; actor?: string; json?: boolean }>();
      if ((jobId === undefined) === (opts.dead !== true) || (opts.org !== undefined && !opts.dead)) {
        console.error("give one job id, or --dead [--org <slug>] (scim-bridge jobs --state dead lists them)");
        process.exitCode = exitUnknown;
        return;
      }
      if (jobId !== undefined && !/^[1-9]\d*$/.test(jobId)) {
        console.error(`"${jobId}" is not a job id (a positive whole number; see scim-bridge jobs)`);
        process.exitCode = exitUnknown;
        return;
      }
      const change = changeBy(cliOperator(opts.actor));
      await withStore(openStore, async (store) => {
        const ids = jobId !== undefined ? [Number(jobId)] : await store.read(deadJobIds(opts.org));
        if (ids === null) return unknownOrganization(opts.org!);
        const results: { id: number; state?: string; mergedInto?: number | null; error?: string }[] = [];
        // One write per job: a job that cannot be retried is reported and the others still are.
        for (const id of ids) {
          try {
            const r = await store.write(retryJob(id, change));
            results.push({ id, state: r.job.state, mergedInto: r.mergedInto });
          } catch (e) {
            if (!isBridgeError(e)) throw e;
            results.push({ id, error: e.message });
          }
        }
        if (opts.json)
          console.log(JSON.stringify({ retried: results.filter((r) => !r.error).length, results }, null, 2));
        else if (ids.length === 0) console.log(`no dead jobs${opts.org ? ` for ${opts.org}` : ""}`);
        else
          for (const r of results) {
            if (r.error) console.error(r.error);
            else
              console.log(
                r.mergedInto
                  ? `job ${r.id}: merged into pending job ${r.mergedInto}, due now`
                  : `job ${r.id}: pending, due now (attempts reset)`,
              );
          }
        if (results.some((r) => r.error)) process.exitCode = exitUnknown;
        // A running `serve` polls the queue, so the retried jobs run there within a moment.
      });
    });

  program
    .command("status <org>")
    .description("an organization's sync health: directories, users by sync state, queue by lane, dead jobs, guard")
    .option("--json", "machine-readable output")
    .action(async (slug: string, opts: { json?: boolean }) => {
      const now = Date.now();
      const status = await withStore(openStore, (store) => store.read(statusOf(slug, publicUrl?.(), now)));
      if (!status) return unknownOrganization(slug);
      console.log(opts.json ? JSON.stringify(status, null, 2) : statusText(status, now));
    });
}
