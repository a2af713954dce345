/**
 * Messages the user sent that the server has not acknowledged yet, kept in
 * storage so that they survive a dropped network, a closed tab or a reload,
 * and are sent again (with the same client message id, so the server stores
 * each once) when the connection is back.
 */
import { type KeyValueStore, readJson, writeJson } from './storage';

export interface OutboxItem {
  conversation_id: string;
  client_message_id: string;
  text: string;
  /** Epoch milliseconds, for ordering. */
  created_at: number;
  /** Set when the server refused the message for good (it will not be resent). */
  failed?: string;
}

export class Outbox {
  private list: OutboxItem[];
  private readonly listeners = new Set<(items: readonly OutboxItem[]) => void>();

  constructor(
    private readonly store: KeyValueStore,
    private readonly key: string,
  ) {
    const stored = readJson<OutboxItem[]>(store, key);
    this.list = Array.isArray(stored) ? stored.filter((i) => i && typeof i.client_message_id === 'string') : [];
  }

  get items(): readonly OutboxItem[] {
    return this.list;
  }

  /** Unsent, not failed, oldest first. */
  pending(): OutboxItem[] {
    return this.list.filter((i) => !i.failed);
  }

  forConversation(id: string): OutboxItem[] {
    return this.list.filter((i) => i.conversation_id === id);
  }

  add(item: OutboxItem): void {
    if (this.list.some((i) => i.client_message_id === item.client_message_id)) return;
    this.list = [...this.list, item];
    this.save();
  }

  remove(clientMessageId: string): boolean {
    const before = this.list.length;
    this.list = this.list.filter((i) => i.client_message_id !== clientMessageId);
    if (this.list.length === before) return false;
    this.save();
    return true;
  }

  markFailed(clientMessageId: string, reason: string): void {
    this.list = this.list.map((i) => (i.client_message_id === clientMessageId ? { ...i, failed: reason } : i));
    this.save();
  }

  /** Makes a failed message pending again (the user pressed "retry"). */
  retry(clientMessageId: string): OutboxItem | undefined {
    let found: OutboxItem | undefined;
    this.list = this.list.map((i) => {
      if (i.client_message_id !== clientMessageId) return i;
      found = { conversation_id: i.conversation_id, client_message_id: i.client_message_id, text: i.text, created_at: i.created_at };
      return found;
    });
    this.save();
    return found;
  }

  onChange(cb: (items: readonly OutboxItem[]) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private save(): void {
    if (this.list.length === 0) this.store.removeItem(this.key);
    else writeJson(this.store, this.key, this.list);
    for (const l of this.listeners) l(this.list);
  }
}
