import { describe, expect, it } from 'vitest';
import { type AsyncKeyValueStore, PersistentStore } from './storage';
import { Outbox } from './outbox';

/** An AsyncStorage look-alike whose writes complete only when the test says so. */
class SlowAsyncStore implements AsyncKeyValueStore {
  readonly data = new Map<string, string>();
  readonly log: string[] = [];
  private gates: (() => void)[] = [];
  failNext = false;
  held = false;
  private async gate(): Promise<void> {
    if (this.held) await new Promise<void>((res) => this.gates.push(res));
  }
  release(): void {
    this.held = false;
    for (const g of this.gates.splice(0)) g();
  }
  async getItem(key: string): Promise<string | null> {
    return this.data.get(key) ?? null;
  }
  async setItem(key: string, value: string): Promise<void> {
    await this.gate();
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk full');
    }
    this.log.push(`set ${key}=${value}`);
    this.data.set(key, value);
  }
  async removeItem(key: string): Promise<void> {
    await this.gate();
    this.log.push(`remove ${key}`);
    this.data.delete(key);
  }
  async getAllKeys(): Promise<readonly string[]> {
    return [...this.data.keys()];
  }
}

describe('PersistentStore', () => {
  it('loads the keys under its prefix, and only those', async () => {
    const backing = new SlowAsyncStore();
    backing.data.set('app.a', '1');
    backing.data.set('other.b', '2');
    const s = await PersistentStore.open(backing, 'app.');
    expect(s.getItem('app.a')).toBe('1');
    expect(s.getItem('app.missing')).toBeNull();
    expect(() => s.getItem('other.b')).toThrow(/outside its prefix/);
  });

  it('reads its own writes at once and stores them in order in the background', async () => {
    const backing = new SlowAsyncStore();
    const s = await PersistentStore.open(backing, 'app.');
    backing.held = true;
    s.setItem('app.k', 'one');
    s.setItem('app.k', 'two');
    s.removeItem('app.k');
    s.setItem('app.k', 'three');
    expect(s.getItem('app.k')).toBe('three');
    expect(backing.data.has('app.k')).toBe(false);
    backing.release();
    await s.flush();
    expect(backing.log).toEqual(['set app.k=one', 'set app.k=two', 'remove app.k', 'set app.k=three']);
    expect(backing.data.get('app.k')).toBe('three');
  });

  it('an outbox written through it is there for the next run', async () => {
    const backing = new SlowAsyncStore();
    const first = await PersistentStore.open(backing, 'app.');
    new Outbox(first, 'app.outbox').add({ conversation_id: 'c', client_message_id: 'm1', text: 'hi', created_at: 1 });
    await first.flush();
    const second = await PersistentStore.open(backing, 'app.');
    expect(new Outbox(second, 'app.outbox').pending().map((i) => i.client_message_id)).toEqual(['m1']);
  });

  it('reports a failed write from flush, keeps the value in memory, and goes on writing', async () => {
    const backing = new SlowAsyncStore();
    const s = await PersistentStore.open(backing, 'app.');
    backing.failNext = true;
    s.setItem('app.k', 'lost');
    s.setItem('app.j', 'kept');
    await expect(s.flush()).rejects.toThrow('disk full');
    expect(s.getItem('app.k')).toBe('lost');
    expect(backing.data.get('app.j')).toBe('kept');
    await expect(s.flush()).resolves.toBeUndefined();
  });
});
