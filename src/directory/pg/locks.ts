import pg from "pg";
import { pgTransaction } from "../sql.js";

/*
 * Cross-instance exclusion on PostgreSQL advisory locks (PostgreSQL documentation, "Advisory
 * Locks"). Keys are text, hashed to the lock's bigint with hashtextextended; a hash collision between
 * two keys only serialises them needlessly. Each use gets a prefix so that a list key can never
 * collide with a leadership name or the migrations' lock.
 */

/**
 * Runs `fn` while holding a transaction-scoped advisory lock on `key`, so that instances sharing the
 * database run it one at a time: a read-modify-write of a whole list on Auth0's side (organization
 * membership, member roles) per list. `fn` gets the transaction's client, for store reads and writes
 * that should commit with it. The lock ends with the transaction, on success, failure, or a dropped
 * connection, so it can never be left behind; while `fn` runs, it holds one pool connection.
 */
export async function withAdvisoryLock<T>(
  pool: pg.Pool,
  key: string,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return pgTransaction(pool, "BEGIN", async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`scim-bridge list:${key}`]);
    return fn(client);
  });
}

/**
 * `withAdvisoryLock` for callers that do more I/O on the same pool while they hold the lock (a list
 * rewrite's Auth0 calls claim rate tokens through the shared budget, which takes a connection of
 * its own): at most `max` holders at once in this process, so that holders can never take every
 * connection and then wait for one another's (the pool would be deadlocked until its connect
 * timeout, and SCIM requests and logins starved with it). Keep `max` well below the pool size.
 */
export function boundedAdvisoryLocks(
  pool: pg.Pool,
  max: number,
): <T>(key: string, fn: (client: pg.PoolClient) => Promise<T>) => Promise<T> {
  let held = 0;
  const waiting: (() => void)[] = [];
  return async (key, fn) => {
    if (held >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    else held++;
    try {
      return await withAdvisoryLock(pool, key, fn);
    } finally {
      // The slot passes straight to the next waiter, if any.
      const next = waiting.shift();
      if (next) next();
      else held--;
    }
  };
}

/**
 * Runs `fn` only if no other transaction holds the advisory lock on `key` (pg_try_advisory_xact_lock),
 * holding it until `fn` settles; answers `{ ran: false }` at once otherwise. For periodic upkeep that
 * every instance schedules but that should run on one at a time (pruning finished jobs): an instance
 * that finds it under way elsewhere skips its turn instead of queueing behind it. `fn` gets the
 * locking transaction's client, and may as well use other connections: the lock lasts until it settles.
 */
export async function tryWithAdvisoryLock<T>(
  pool: pg.Pool,
  key: string,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<{ ran: true; value: T } | { ran: false }> {
  return pgTransaction(pool, "BEGIN", async (client) => {
    const { rows } = await client.query<{ locked: boolean }>(
      "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked",
      [`scim-bridge upkeep:${key}`],
    );
    if (!rows[0]?.locked) return { ran: false as const };
    return { ran: true as const, value: await fn(client) };
  });
}

export interface LeaderOptions {
  /**
   * How often a follower tries to take the lead, and a leader checks its session (default 1 s).
   * Keep it to a few seconds: a partitioned leader must give up before the server drops its lock.
   */
  retryMs?: number;
  /** A connection or lock attempt failed (it is retried after `retryMs`). */
  onError?: (err: unknown) => void;
}

export interface Leadership {
  /** True while this instance holds the lead. */
  readonly leading: boolean;
  /** Stops competing: ends the current term (its signal aborts and its work is awaited), releases the lock. */
  stop(): Promise<void>;
}

/**
 * Makes one instance of those sharing the database run `lead` (periodic work: drift scans, pruning),
 * elected by a session-level advisory lock on `name` held on a dedicated connection, not a pool's:
 * the lock lives exactly as long as that session, so an instance that dies or loses its connection
 * hands the lead over at the next attempt of another, without waiting for a lease to expire.
 *
 * `lead(signal)` runs once per term; `signal` aborts when the term ends (stop, or the session
 * failed). The leader checks its session every `retryMs`; a leader cut off from the database may
 * not notice before another instance takes over, so the work must be safe to run twice (a drift scan
 * is). Followers try `pg_try_advisory_lock` every `retryMs`.
 */
export function runAsLeader(
  name: string,
  connection: string | pg.ClientConfig,
  lead: (signal: AbortSignal) => void | Promise<void>,
  options: LeaderOptions = {},
): Leadership {
  const retryMs = options.retryMs ?? 1000;
  const key = `scim-bridge leader:${name}`;
  const config: pg.ClientConfig = {
    ...(typeof connection === "string" ? { connectionString: connection } : connection),
    // node-postgres waits forever for a connection by default; a dead host must fail an attempt, not hang it.
    connectionTimeoutMillis:
      (typeof connection === "string" ? undefined : connection.connectionTimeoutMillis) ?? 10_000,
    // A leader cut off without a reset (a partition) must find out in seconds, not at the OS's
    // two-hour keepalive: probe the socket early, and give up on a check that gets no answer.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    query_timeout: Math.max(5_000, 3 * retryMs),
    application_name: `scim-bridge leader ${name}`,
  };
  let stopped = false;
  let leading = false;
  let client: pg.Client | undefined;
  let term: { controller: AbortController; work: Promise<void> } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let attempt: Promise<void> = Promise.resolve();

  const endTerm = async (): Promise<void> => {
    const current = term;
    term = undefined;
    leading = false;
    if (!current) return;
    current.controller.abort();
    await current.work;
  };

  /** Drops the session (which ends a held lock) after an error; the next attempt connects afresh. */
  const dropSession = (err: unknown): void => {
    const c = client;
    client = undefined;
    if (!stopped) options.onError?.(err);
    void endTerm();
    c?.end().catch(() => undefined);
  };

  const tryOnce = async (): Promise<void> => {
    if (stopped) return;
    try {
      if (!client) {
        const c = new pg.Client(config);
        // An error event without a listener would crash the process; a failed session ends the term.
        c.on("error", (err) => {
          if (client === c) dropSession(err);
        });
        c.on("end", () => {
          if (client === c) dropSession(new Error("the leader session ended"));
        });
        client = c;
        await c.connect();
        // The session sits idle between checks: no server-wide idle timeout may end the term (it has
        // none before PostgreSQL 14). And the server drops, with its lock, a session whose client
        // vanished within about 25 s (PostgreSQL documentation, "Connection Settings"), later than a
        // leader checking every few seconds gives up (its check times out), so that a partitioned
        // leader's lock passes on without two leaders.
        await c.query("SET idle_session_timeout = 0").catch(() => undefined);
        await c.query("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3");
      }
      const c = client;
      if (leading) {
        // The lock lives as long as the session: a session that still answers still holds it.
        await c.query("SELECT 1");
        return;
      }
      const { rows } = await c.query<{ locked: boolean }>(
        "SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked",
        [key],
      );
      if (!rows[0]?.locked || stopped || client !== c) return;
      leading = true;
      const controller = new AbortController();
      term = {
        controller,
        work: (async () => lead(controller.signal))().catch((err: unknown) => options.onError?.(err)),
      };
    } catch (err) {
      // Unless the session's error event already dropped it (and reported the error).
      if (client) dropSession(err);
    }
  };

  const schedule = (): void => {
    if (stopped) return;
    attempt = tryOnce().finally(() => {
      if (!stopped) timer = setTimeout(schedule, retryMs);
    });
  };
  schedule();

  return {
    get leading() {
      return leading;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      await attempt;
      const wasLeading = leading;
      await endTerm();
      const c = client;
      client = undefined;
      if (!c) return;
      try {
        if (wasLeading) await c.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key]);
      } catch {
        // Ending the session below releases the lock anyway.
      }
      await c.end().catch(() => undefined);
    },
  };
}
