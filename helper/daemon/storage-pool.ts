import { DirectStorage, type OpenOptions } from '../storage/index.js';

/**
 * One DirectStorage (one I/O worker) per lease file or device, shared by the
 * lockspaces and leases that live on it, counted so it closes with its last
 * user. Keyed by the kernel's identity of what was opened, so two paths to
 * one file share a worker and its record of writes still in flight.
 */
export class StoragePool {
  private readonly open = new Map<string, { storage: DirectStorage; users: number }>();

  constructor(private readonly ioTimeoutMs: number) {}

  async acquire(path: string, options: Pick<OpenOptions, 'noFollow'> = {}): Promise<DirectStorage> {
    const storage = await DirectStorage.open(path, { writable: true, ioTimeoutMs: this.ioTimeoutMs, ...options });
    const shared = this.open.get(storage.info.identity);
    if (shared) {
      await storage.close();
      shared.users += 1;
      return shared.storage;
    }
    this.open.set(storage.info.identity, { storage, users: 1 });
    return storage;
  }

  async release(storage: DirectStorage): Promise<void> {
    const entry = this.open.get(storage.info.identity);
    if (!entry || entry.storage !== storage) return;
    entry.users -= 1;
    if (entry.users > 0) return;
    this.open.delete(storage.info.identity);
    if (storage.stats.overdue > 0) storage.abandon();
    else await storage.close();
  }

  async closeAll(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all(entries.map(({ storage }) => (storage.stats.overdue > 0 ? Promise.resolve(storage.abandon()) : storage.close())));
  }
}
