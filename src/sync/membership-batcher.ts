import { Auth0CallError } from "../auth0/errors.js";
import { MEMBERS_PER_CALL } from "../auth0/gateway.js";

/**
 * Membership calls. `userIds` may be a function: the gateway calls it once the rate limiter lets the
 * call go, so the batch stays open to more users for as long as the call waits for its bucket.
 */
export interface MembershipPort {
  addMembers(orgId: string, userIds: string[] | (() => string[]), lane: number): Promise<void>;
  removeMembers(orgId: string, userIds: string[] | (() => string[]), lane: number): Promise<void>;
}

type Action = "add" | "remove";

interface Pending {
  userId: string;
  lane: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Batch {
  orgId: string;
  action: Action;
  items: Pending[];
  /** Set when the call starts waiting for the rate limiter; the lane it waits in. */
  lane?: number;
  /** Set when the limiter let the call go: no one joins any more. */
  sealed: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Gathers membership changes of different users of one organization into calls of up to 10 users,
 * the most Auth0 takes per call, so that a 10,000-user push costs 1,000 membership calls, not 10,000.
 * A change waits at most `maxWaitMs` for company before its call asks the rate limiter to go; while
 * the call then waits for the Organization Members bucket, later changes still join it (up to 10).
 * So when that bucket is the bottleneck, calls fill up instead of spending it on one or two users each.
 * A deprovision-lane change starts its call at once and never joins a call waiting in a slower lane.
 */
export class MembershipBatcher {
  /** The batch each `action:orgId` may still join. */
  private readonly open = new Map<string, Batch>();

  constructor(
    private readonly port: MembershipPort,
    private readonly maxWaitMs = 20,
  ) {}

  add(orgId: string, userId: string, lane: number): Promise<void> {
    return this.enqueue("add", orgId, userId, lane);
  }

  remove(orgId: string, userId: string, lane: number): Promise<void> {
    return this.enqueue("remove", orgId, userId, lane);
  }

  private enqueue(action: Action, orgId: string, userId: string, lane: number): Promise<void> {
    const key = `${action}:${orgId}`;
    let batch = this.open.get(key);
    // A started call waits in its lane: a more urgent change does not join it and wait there.
    if (!batch || batch.sealed || (batch.lane !== undefined && lane < batch.lane)) {
      batch = { orgId, action, items: [], sealed: false };
      this.open.set(key, batch);
    }
    const b = batch;
    return new Promise<void>((resolve, reject) => {
      b.items.push({ userId, lane, resolve, reject });
      if (b.items.length >= MEMBERS_PER_CALL) this.close(key, b);
      if (b.lane !== undefined) return;
      if (b.items.length >= MEMBERS_PER_CALL || lane === 0) this.start(b);
      else b.timer ??= setTimeout(() => this.start(b), this.maxWaitMs);
    });
  }

  /** No one joins `batch` any more. */
  private close(key: string, batch: Batch): void {
    if (this.open.get(key) === batch) this.open.delete(key);
  }

  private start(batch: Batch): void {
    if (batch.lane !== undefined) return;
    clearTimeout(batch.timer);
    batch.timer = undefined;
    batch.lane = Math.min(...batch.items.map((p) => p.lane));
    void this.send(batch);
  }

  private async send(batch: Batch): Promise<void> {
    const { orgId, action } = batch;
    const key = `${action}:${orgId}`;
    const call = (userIds: string[] | (() => string[])) =>
      action === "add"
        ? this.port.addMembers(orgId, userIds, batch.lane!)
        : this.port.removeMembers(orgId, userIds, batch.lane!);
    const ids = () => {
      if (!batch.sealed) {
        batch.sealed = true;
        this.close(key, batch);
      }
      return [...new Set(batch.items.map((p) => p.userId))];
    };
    try {
      await call(ids);
      for (const p of batch.items) p.resolve();
    } catch (err) {
      ids(); // sealed, whether or not the call got as far as the limiter letting it go
      // A permanent failure of a batch may be caused by one user (e.g. deleted meanwhile): retry each
      // alone so the others are not held back by it. Transient failures fail the whole batch; each
      // job retries on its own schedule.
      if (batch.items.length > 1 && err instanceof Auth0CallError && err.kind !== "retryable") {
        await Promise.all(batch.items.map((p) => call([p.userId]).then(p.resolve, p.reject)));
        return;
      }
      for (const p of batch.items) p.reject(err);
    }
  }
}
