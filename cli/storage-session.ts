import { DirectStorage, type OpenOptions } from '../helper/storage/index.js';

/**
 * Opens storage for one command and always lets it go: closes it when all
 * I/O finished, or abandons it (without waiting) when an I/O is past its
 * deadline, so the command reports the real error instead of a close timeout.
 * A close failure never replaces an error already on its way out.
 */
export async function withStorage<T>(path: string, options: OpenOptions, use: (storage: DirectStorage) => Promise<T>): Promise<T> {
  const storage = await DirectStorage.open(path, options);
  let result: T;
  try {
    result = await use(storage);
  } catch (error) {
    await letGo(storage).catch(() => undefined);
    throw error;
  }
  await letGo(storage);
  return result;
}

async function letGo(storage: DirectStorage): Promise<void> {
  if (storage.stats.overdue > 0) storage.abandon();
  else await storage.close();
}
