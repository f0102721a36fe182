import pg from "pg";
import { JOBS_CHANNEL } from "./outbox.js";

/** Why the listener woke its owner: a NOTIFY (its payload), the fallback poll, or a (re)connection. */
export type WakeReason = { source: "notify"; payload: string } | { source: "poll" } | { source: "connected" };

export interface JobListenerOptions {
  /**
   * Connection settings of the listener's own client. It must reach PostgreSQL directly or through
   * session pooling: a transaction-pooling PgBouncer does not support LISTEN (PgBouncer
   * documentation, "Features").
   */
  connection: pg.ClientConfig;
  onWake: (reason: WakeReason) => void;
  channel?: string;
  /**
   * Wakes the owner this often whatever happens (default 2 s): a notification lost while the
   * connection was down, or a retry falling due, then waits at most this long.
   */
  pollMs?: number;
  /** Reconnection delay: doubles from base up to cap, with jitter (defaults 250 ms and 15 s). */
  reconnectBaseMs?: number;
  reconnectCapMs?: number;
  /** The connection failed or dropped; the listener carries on reconnecting. */
  onError?: (err: unknown) => void;
  random?: () => number;
}

/**
 * One dedicated connection per instance doing LISTEN on the job channel, so that a job enqueued by
 * any instance starts at once rather than at the next poll. NOTIFY is delivered only to sessions
 * listening at commit time (PostgreSQL documentation, "NOTIFY"), so after every (re)connection the
 * owner is woken once to claim whatever was enqueued meanwhile, and the poll covers the rest: a
 * missed notification only delays work.
 */
export class JobListener {
  private readonly channel: string;
  private readonly pollMs: number;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;
  private running = false;
  private client: pg.Client | undefined;
  private listening = false;
  private loop: Promise<void> | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private sleeper: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  /** Connections that reached LISTEN so far (a reconnection adds one). */
  connections = 0;

  constructor(private readonly options: JobListenerOptions) {
    this.channel = options.channel ?? JOBS_CHANNEL;
    this.pollMs = options.pollMs ?? 2000;
    this.baseMs = options.reconnectBaseMs ?? 250;
    this.capMs = options.reconnectCapMs ?? 15_000;
    this.random = options.random ?? Math.random;
  }

  /** True while the connection is up and listening. */
  get connected(): boolean {
    return this.listening;
  }

  /** Starts connecting (in the background: a database that is down delays wake-ups, not start-up) and polling. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.pollTimer = setInterval(() => this.wake({ source: "poll" }), this.pollMs);
    this.pollTimer.unref();
    this.loop = this.connectLoop();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.pollTimer);
    if (this.sleeper) {
      clearTimeout(this.sleeper.timer);
      this.sleeper.resolve();
    }
    await this.client?.end().catch(() => undefined);
    await this.loop;
  }

  private wake(reason: WakeReason): void {
    if (!this.running) return;
    try {
      this.options.onWake(reason);
    } catch (err) {
      this.options.onError?.(err);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeper = undefined;
        resolve();
      }, ms);
      this.sleeper = { timer, resolve };
    });
  }

  /** Equal jitter: at least half the doubled delay, so a server refusing connections is not hammered. */
  private delay(failures: number): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(failures, 20));
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  private async connectLoop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      const client = new pg.Client({
        connectionTimeoutMillis: 10_000,
        application_name: "scim-bridge job listener",
        ...this.options.connection,
        // A peer that vanished without closing the connection is noticed by TCP keepalives.
        keepAlive: true,
      });
      this.client = client;
      let lost!: () => void;
      const closed = new Promise<void>((resolve) => (lost = resolve));
      client.on("error", (err) => {
        this.options.onError?.(err);
        lost();
      });
      client.on("end", () => lost());
      client.on("notification", (message) => {
        if (message.channel === this.channel) this.wake({ source: "notify", payload: message.payload ?? "" });
      });
      try {
        // node-postgres never settles connect() when end() (stop) closes the socket mid-handshake:
        // the close ends the wait instead, so stop() does not hang on a listener still connecting.
        const connected = await Promise.race([client.connect().then(() => true), closed.then(() => false)]);
        if (!connected) throw new Error("the job listener's connection closed while connecting");
        await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
      } catch (err) {
        if (this.running) this.options.onError?.(err);
        await client.end().catch(() => undefined);
        if (this.running) await this.sleep(this.delay(failures++));
        continue;
      }
      failures = 0;
      this.connections++;
      this.listening = true;
      this.wake({ source: "connected" });
      await closed;
      this.listening = false;
      await client.end().catch(() => undefined);
      // A dropped connection is retried after a short delay, growing while it keeps failing.
      if (this.running) await this.sleep(this.delay(failures++));
    }
    this.client = undefined;
  }
}
