import { Auth0CallError } from "../auth0/errors.js";
import { MEMBERS_PER_CALL } from "../auth0/gateway.js";

export interface MembershipPort {
  addMembers(orgId: string, userIds: string[], lane: number): Promise<void>;
  removeMembers(orgId: string, userIds: string[], lane: number): Promise<void>;
}

type Action = "add" | "remove";

interface Pending {
  userId: string;
  lane: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Gathers membership changes of different users of one organization into calls of up to 10 users,
 * the most Auth0 takes per call, so that a 10,000-user push costs 1,000 membership calls, not 10,000.
 * A change waits at most `maxWaitMs` for company; a deprovision-lane change flushes its batch at once.
 */
export class MembershipBatcher {
  private readonly queues = new Map<
    string,
    { orgId: string; action: Action; items: Pending[]; timer?: NodeJS.Timeout }
  >();

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
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { orgId, action, items: [] };
      this.queues.set(key, queue);
    }
    const q = queue;
    return new Promise<void>((resolve, reject) => {
      q.items.push({ userId, lane, resolve, reject });
      if (q.items.length >= MEMBERS_PER_CALL || lane === 0) this.flush(key);
      else if (!q.timer) q.timer = setTimeout(() => this.flush(key), this.maxWaitMs);
    });
  }

  private flush(key: string): void {
    const queue = this.queues.get(key);
    if (!queue || queue.items.length === 0) return;
    clearTimeout(queue.timer);
    queue.timer = undefined;
    while (queue.items.length > 0) {
      const batch = queue.items.splice(0, MEMBERS_PER_CALL);
      void this.send(queue.orgId, queue.action, batch);
    }
    this.queues.delete(key);
  }

  private async send(orgId: string, action: Action, batch: Pending[]): Promise<void> {
    const lane = Math.min(...batch.map((p) => p.lane));
    const ids = [...new Set(batch.map((p) => p.userId))];
    const call = (userIds: string[]) =>
      action === "add" ? this.port.addMembers(orgId, userIds, lane) : this.port.removeMembers(orgId, userIds, lane);
    try {
      await call(ids);
      for (const p of batch) p.resolve();
    } catch (err) {
      // A permanent failure of a batch may be caused by one user (e.g. deleted meanwhile): retry each
      // alone so the others are not held back by it. Transient failures fail the whole batch; each
      // job retries on its own schedule.
      if (batch.length > 1 && err instanceof Auth0CallError && err.kind !== "retryable") {
        await Promise.all(batch.map((p) => call([p.userId]).then(p.resolve, p.reject)));
        return;
      }
      for (const p of batch) p.reject(err);
    }
  }
}
