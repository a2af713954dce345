/** The little of `Storage` the client needs; `localStorage` in a browser, a map in tests. */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A store in memory: for tests, and when localStorage is unavailable (private mode, sandboxed iframes). */
export class MemoryStore implements KeyValueStore {
  private readonly map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.map.set(key, value);
  }
  removeItem(key: string): void {
    this.map.delete(key);
  }
}

/**
 * An asynchronous key-value store: React Native's AsyncStorage has this shape
 * (and `getAllKeys`), as do IndexedDB wrappers.
 */
export interface AsyncKeyValueStore {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
  getAllKeys(): Promise<readonly string[]>;
}

/**
 * A {@link KeyValueStore} backed by an asynchronous store (AsyncStorage on
 * mobile), so that the session, the outbox and the resume state use the same
 * code on every platform. {@link PersistentStore.open} reads every key under a
 * prefix once; after that, reads come from memory and writes go to memory at
 * once and to the backing store in the background, in the order they were
 * made. {@link PersistentStore.flush} waits until all of them are stored.
 */
export class PersistentStore implements KeyValueStore {
  private readonly map = new Map<string, string>();
  private writing: Promise<void> = Promise.resolve();
  private lastError: unknown = null;

  private constructor(
    private readonly backing: AsyncKeyValueStore,
    readonly prefix: string,
  ) {}

  /** Loads every key that starts with `prefix` (the only keys this store may be used for). */
  static async open(backing: AsyncKeyValueStore, prefix: string): Promise<PersistentStore> {
    const store = new PersistentStore(backing, prefix);
    const keys = (await backing.getAllKeys()).filter((k) => k.startsWith(prefix));
    const values = await Promise.all(keys.map(async (k) => [k, await backing.getItem(k)] as const));
    for (const [k, v] of values) if (v != null) store.map.set(k, v);
    return store;
  }

  getItem(key: string): string | null {
    this.check(key);
    return this.map.get(key) ?? null;
  }

  setItem(key: string, value: string): void {
    this.check(key);
    this.map.set(key, value);
    this.queue(() => this.backing.setItem(key, value));
  }

  removeItem(key: string): void {
    this.check(key);
    this.map.delete(key);
    this.queue(() => this.backing.removeItem(key));
  }

  /** Resolves when every write made so far has reached the backing store; rejects with the last failure, if any. */
  async flush(): Promise<void> {
    await this.writing;
    const e = this.lastError;
    this.lastError = null;
    if (e) throw e;
  }

  private queue(write: () => Promise<void>): void {
    this.writing = this.writing.then(write).catch((e: unknown) => {
      // Kept in memory for this run; the next write of the key tries again.
      this.lastError = e;
    });
  }

  private check(key: string): void {
    if (!key.startsWith(this.prefix)) throw new Error(`PersistentStore: key ${key} is outside its prefix ${this.prefix}`);
  }
}

/** `localStorage` when it works, else memory. */
export function browserStore(): KeyValueStore {
  try {
    const s = globalThis.localStorage;
    const probe = '__jamuna_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    return new MemoryStore();
  }
}

export function readJson<T>(store: KeyValueStore, key: string): T | null {
  const raw = store.getItem(key);
  if (raw == null) return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return null;
  }
}

export function writeJson(store: KeyValueStore, key: string, value: unknown): void {
  try {
    store.setItem(key, JSON.stringify(value));
  } catch {
    // Quota exceeded: the data stays in memory for this page.
  }
}

/** A new client message id: 32 hex digits (a random UUID without dashes). */
export function newId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID().replace(/-/g, '');
  let s = '';
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}
