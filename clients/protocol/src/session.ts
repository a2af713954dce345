/**
 * Tokens of one signed-in user (or anonymous visitor), kept in storage so a
 * reload continues the same session. Access tokens live 15 minutes; a refresh
 * token is used once (rotation). Refreshes are single-flight, and another tab
 * that refreshed first is noticed by re-reading the storage.
 */
import type { Role, TokenResponse } from './types';
import { type KeyValueStore, readJson, writeJson } from './storage';

export interface StoredTokens {
  access_token: string;
  refresh_token: string;
  /** Epoch milliseconds. */
  expires_at: number;
  user_id: string;
  tenant: string;
  role: Role;
}

/** Refresh this long before the access token expires. */
const EARLY_MS = 30_000;

export type Refresher = (refreshToken: string) => Promise<TokenResponse>;

export class Session {
  private tokens: StoredTokens | null;
  private inflight: Promise<string> | null = null;
  private readonly listeners = new Set<(t: StoredTokens | null) => void>();

  constructor(
    private readonly store: KeyValueStore,
    private readonly key: string,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = readJson<StoredTokens>(store, key);
  }

  get current(): StoredTokens | null {
    return this.tokens;
  }

  set(t: TokenResponse): StoredTokens {
    const stored: StoredTokens = {
      access_token: t.access_token,
      refresh_token: t.refresh_token,
      expires_at: this.now() + t.expires_in * 1000,
      user_id: t.user_id,
      tenant: t.tenant,
      role: t.role,
    };
    this.tokens = stored;
    writeJson(this.store, this.key, stored);
    this.emit();
    return stored;
  }

  clear(): void {
    this.tokens = null;
    this.store.removeItem(this.key);
    this.emit();
  }

  onChange(cb: (t: StoredTokens | null) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private emit(): void {
    for (const l of this.listeners) l(this.tokens);
  }

  /** A valid access token, refreshed when it is (nearly) expired or when `force` says the server refused it. */
  async accessToken(refresh: Refresher, force = false): Promise<string> {
    const fresh = readJson<StoredTokens>(this.store, this.key);
    if (fresh && this.tokens && fresh.refresh_token !== this.tokens.refresh_token) {
      // Another tab refreshed: adopt its pair instead of spending a used refresh token.
      this.tokens = fresh;
      force = false;
    }
    const t = this.tokens;
    if (!t) throw new Error('not signed in');
    if (!force && t.expires_at - EARLY_MS > this.now()) return t.access_token;
    if (!this.inflight) {
      const used = t.refresh_token;
      this.inflight = refresh(used)
        .then((r) => this.set(r).access_token)
        .finally(() => {
          this.inflight = null;
        });
    }
    return this.inflight;
  }
}
