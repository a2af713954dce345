/**
 * The REST half of the protocol: one typed method per endpoint of
 * `/api/v1`, bearer authentication with a transparent refresh on 401, and
 * errors as {@link ApiError} carrying the server's `{error: {code, message}}`.
 */
import type {
  Analytics,
  Article,
  Channel,
  Colleague,
  ConversationDetail,
  ConversationQuery,
  ConversationSummary,
  Feedback,
  ImportResult,
  Me,
  MentionPage,
  MessageAck,
  UploadedAttachment,
  Page,
  Role,
  Tenant,
  TokenResponse,
  UserItem,
  ContactPanel,
  Identity,
} from './types';
import { Session } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  /** True when retrying later may succeed (network, overload, server error). */
  get transient(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

export interface RequestOptions {
  auth?: boolean;
  body?: unknown;
  /** A raw body (e.g. a file to import or upload) with its content type. */
  raw?: { body: string | Blob; contentType: string };
  signal?: AbortSignal;
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;

  constructor(
    baseUrl: string,
    readonly session: Session,
    fetchImpl?: typeof fetch,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.fetchImpl = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** The WebSocket URL of this server. */
  get socketUrl(): string {
    const base = this.baseUrl || globalThis.location.origin;
    return base.replace(/^http/, 'ws') + '/api/v1/ws';
  }

  /** A valid access token (refreshing when needed). */
  token(force = false): Promise<string> {
    return this.session.accessToken((rt) => this.refreshTokens(rt), force);
  }

  private async refreshTokens(refreshToken: string): Promise<TokenResponse> {
    return this.request<TokenResponse>('POST', '/api/v1/auth/refresh', { auth: false, body: { refresh_token: refreshToken } });
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const auth = opts.auth ?? true;
    const attempt = async (force: boolean): Promise<Response> => {
      const headers: Record<string, string> = { Accept: 'application/json' };
      let body: string | Blob | undefined;
      if (opts.raw) {
        headers['Content-Type'] = opts.raw.contentType;
        body = opts.raw.body;
      } else if (opts.body !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(opts.body);
      }
      if (auth) headers.Authorization = `Bearer ${await this.token(force)}`;
      try {
        return await this.fetchImpl(this.baseUrl + path, { method, headers, body, signal: opts.signal });
      } catch (e) {
        if ((e as { name?: unknown } | null)?.name === 'AbortError') throw e;
        throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection.');
      }
    };
    let res = await attempt(false);
    if (res.status === 401 && auth) res = await attempt(true);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? (res.statusText || `HTTP ${res.status}`));
    }
    return json as T;
  }

  // --- auth ---------------------------------------------------------------

  async visitor(widgetKey: string): Promise<TokenResponse> {
    const t = await this.request<TokenResponse>('POST', '/api/v1/auth/visitor', { auth: false, body: { widget_key: widgetKey } });
    this.session.set(t);
    return t;
  }

  async login(tenant: string, email: string, password: string): Promise<TokenResponse> {
    const t = await this.request<TokenResponse>('POST', '/api/v1/auth/login', { auth: false, body: { tenant, email, password } });
    this.session.set(t);
    return t;
  }

  async logout(): Promise<void> {
    const rt = this.session.current?.refresh_token;
    this.session.clear();
    if (rt) await this.request<void>('POST', '/api/v1/auth/logout', { auth: false, body: { refresh_token: rt } }).catch(() => undefined);
  }

  me(): Promise<Me> {
    return this.request('GET', '/api/v1/users/me');
  }

  // --- conversations ------------------------------------------------------

  startConversation(channel: Channel = 'web'): Promise<{ id: string }> {
    return this.request('POST', '/api/v1/conversations', { body: { channel } });
  }

  conversations(query: ConversationQuery = {}, signal?: AbortSignal): Promise<Page<ConversationSummary>> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '' && v !== null) params.set(k, String(v));
    const qs = params.toString();
    return this.request('GET', `/api/v1/conversations${qs ? `?${qs}` : ''}`, { signal });
  }

  conversation(id: string): Promise<ConversationDetail> {
    return this.request('GET', `/api/v1/conversations/${encodeURIComponent(id)}`);
  }

  /** Posts a message; with `attachments` (ids of the caller's uploads) the text may be empty. */
  postMessage(id: string, clientMessageId: string, text: string, attachments: string[] = []): Promise<MessageAck> {
    const body: Record<string, unknown> = { client_message_id: clientMessageId };
    if (text.trim() || attachments.length === 0) body.text = text;
    if (attachments.length > 0) body.attachments = attachments;
    return this.request('POST', `/api/v1/conversations/${encodeURIComponent(id)}/messages`, { body });
  }

  /**
   * Uploads a file to a conversation (its type is found by the server in its bytes).
   * Errors: 413 `payload_too_large`, 415 `unsupported_media_type`, 429 `rate_limited`.
   */
  uploadAttachment(conversationId: string, file: Blob, name: string): Promise<UploadedAttachment> {
    const path = `/api/v1/conversations/${encodeURIComponent(conversationId)}/attachments?name=${encodeURIComponent(name)}`;
    return this.request('POST', path, { raw: { body: file, contentType: 'application/octet-stream' } });
  }

  /** An attachment's bytes (with the bearer token, so not a plain link); 410 `gone` once its uploader is erased. */
  async downloadAttachment(conversationId: string, attachmentId: string): Promise<Blob> {
    const path = `/api/v1/conversations/${encodeURIComponent(conversationId)}/attachments/${encodeURIComponent(attachmentId)}`;
    const get = async (force: boolean): Promise<Response> => {
      try {
        return await this.fetchImpl(this.baseUrl + path, { headers: { Authorization: `Bearer ${await this.token(force)}` } });
      } catch {
        throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection.');
      }
    };
    let res = await get(false);
    if (res.status === 401) res = await get(true);
    if (!res.ok) {
      const err = ((await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `HTTP ${res.status}`);
    }
    return res.blob();
  }

  private action(id: string, name: string, body: unknown = {}): Promise<unknown> {
    return this.request('POST', `/api/v1/conversations/${encodeURIComponent(id)}/${name}`, { body });
  }

  assign(id: string, agentId?: string): Promise<unknown> {
    return this.action(id, 'assign', agentId ? { agent_id: agentId } : {});
  }
  handoff(id: string): Promise<unknown> {
    return this.action(id, 'handoff');
  }
  resolve(id: string): Promise<unknown> {
    return this.action(id, 'resolve');
  }
  reopen(id: string): Promise<unknown> {
    return this.action(id, 'reopen');
  }
  tags(id: string, add: string[], remove: string[] = []): Promise<unknown> {
    return this.action(id, 'tags', { add, remove });
  }
  feedback(id: string, feedback: Feedback | { kind: 'csat'; score: number; comment?: string }): Promise<unknown> {
    return this.action(id, 'feedback', feedback);
  }
  /** Staff: a private note naming colleagues (user ids), seen by staff only. */
  addNote(id: string, text: string, mentions: string[] = []): Promise<{ id: string; version: number; mentions: string[] }> {
    return this.request('POST', `/api/v1/conversations/${encodeURIComponent(id)}/notes`, { body: { text, mentions } });
  }
  /** Staff: the tenant's agents and admins (ids, names, roles), whom a note may mention. */
  colleagues(): Promise<{ items: Colleague[] }> {
    return this.request('GET', '/api/v1/colleagues');
  }
  /** Staff: the notes that name the caller, newest first. */
  mentions(query: { before?: number; limit?: number } = {}, signal?: AbortSignal): Promise<MentionPage> {
    const params = new URLSearchParams();
    if (query.before !== undefined) params.set('before', String(query.before));
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const qs = params.toString();
    return this.request('GET', `/api/v1/mentions${qs ? `?${qs}` : ''}`, { signal });
  }

  // --- tenant and users ---------------------------------------------------

  tenant(): Promise<Tenant> {
    return this.request('GET', '/api/v1/tenant');
  }
  updateSettings(settings: { allowed_origins: string[]; self_signup: boolean }): Promise<unknown> {
    return this.request('PUT', '/api/v1/tenant/settings', { body: settings });
  }
  users(role?: Role): Promise<Page<UserItem>> {
    return this.request('GET', `/api/v1/users${role ? `?role=${role}` : ''}`);
  }
  createUser(u: { email: string; password: string; name: string; role: Role }): Promise<{ id: string; role: Role }> {
    return this.request('POST', '/api/v1/users', { body: u });
  }
  changeRole(id: string, role: Role): Promise<unknown> {
    return this.request('PATCH', `/api/v1/users/${encodeURIComponent(id)}/role`, { body: { role } });
  }
  eraseUser(id: string): Promise<void> {
    return this.request('DELETE', `/api/v1/users/${encodeURIComponent(id)}`);
  }

  // --- knowledge base and analytics --------------------------------------

  articles(): Promise<Page<Article>> {
    return this.request('GET', '/api/v1/kb/articles');
  }
  addArticle(a: { title: string; body: string; id?: string }): Promise<{ id: string }> {
    return this.request('POST', '/api/v1/kb/articles', { body: a });
  }
  updateArticle(id: string, a: { title: string; body: string }): Promise<unknown> {
    return this.request('PUT', `/api/v1/kb/articles/${encodeURIComponent(id)}`, { body: a });
  }
  removeArticle(id: string): Promise<unknown> {
    return this.request('DELETE', `/api/v1/kb/articles/${encodeURIComponent(id)}`);
  }
  importArticles(body: string, contentType: 'text/markdown' | 'text/csv' | 'application/json'): Promise<ImportResult> {
    return this.request('POST', '/api/v1/kb/import', { raw: { body, contentType } });
  }
  analytics(from: string, to: string): Promise<Analytics> {
    return this.request('GET', `/api/v1/analytics?from=${from}&to=${to}`);
  }

  // --- who the customer is ------------------------------------------------

  /** Identifies the host site's signed-in customer; the session becomes theirs (the current visitor's, if it was anonymous). */
  async identify(widgetKey: string, identity: Identity): Promise<TokenResponse> {
    const auth = this.session.current !== null;
    const t = await this.request<TokenResponse>('POST', '/api/v1/auth/identify', { auth, body: { widget_key: widgetKey, ...identity } });
    this.session.set(t);
    return t;
  }
  /** The pre-chat form: the customer's name and e-mail address (unverified). */
  giveDetails(name: string, email: string): Promise<void> {
    return this.request('POST', '/api/v1/customers/me/details', { body: { name, email } });
  }
  /** Staff: who a customer is, and their past conversations. */
  contact(customerId: string): Promise<ContactPanel> {
    return this.request('GET', `/api/v1/customers/${encodeURIComponent(customerId)}`);
  }
  /** Admins: a new identity secret (shown once); the old one verifies for `graceSecs` more. */
  rotateIdentitySecret(graceSecs: number): Promise<{ secret: string; key_id: string; previous_valid_until: string | null; version: number }> {
    return this.request('POST', '/api/v1/tenant/identity-secret', { body: { grace_secs: graceSecs } });
  }
}
