/**
 * COPY's file copies in flight on the thread pool: one round trip per file (open, copy, close in
 * one libuv request) and several at once, where the synchronous form waits for each in turn.
 */
/** Copies running on the thread pool at once: enough to keep its 4 threads busy. */
const COPY_WINDOW = 8;

/**
 * File copies in flight, by destination. A failure is kept and thrown by the next call, after
 * which the caller drains the rest: no copy is left running when applyCopy returns or throws.
 */
export class CopyWindow {
  private readonly running = new Map<string, Promise<void>>();
  private failure: { e: unknown } | undefined;

  /** Adds the copy to `host`; resolves once there is room for another. */
  async start(host: string, copy: Promise<void>): Promise<void> {
    const tracked = copy.then(() => {}, (e: unknown) => {
      this.failure ??= { e };
    }).finally(() => this.running.delete(host));
    this.running.set(host, tracked);
    while (this.running.size >= COPY_WINDOW) await Promise.race(this.running.values());
    this.check();
  }

  /** Waits for the copy to `host`, if one runs. */
  async done(host: string): Promise<void> {
    await this.running.get(host);
    this.check();
  }

  async drain(): Promise<void> {
    await Promise.all(this.running.values());
    this.check();
  }

  private check(): void {
    if (this.failure) throw this.failure.e;
  }
}
