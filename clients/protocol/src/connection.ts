/**
 * The WebSocket half of the protocol: one connection per signed-in user that
 *
 * - authenticates with an `auth` frame (refreshing the token when the server
 *   closes with 4001, 4002 or 4004), and before its token expires sends a
 *   fresh one over the open socket (another `auth` frame), so the server does
 *   not close it (4002),
 * - reconnects with jittered exponential back-off (at once when the browser
 *   says it is back online), and notices dead sockets with a ping heartbeat,
 * - resubscribes every conversation from the last version it delivered, so
 *   nothing is missed across a drop, and drops any event at or below that
 *   version, so nothing is shown twice,
 * - sends messages through an {@link Outbox}: a message is stored first, sent
 *   when the socket is ready, removed on `ack`, and sent again with the same
 *   client message id after a reconnect (the server stores it once).
 */
import { backoffDelay, type BackoffOptions } from './backoff';
import { Emitter } from './emitter';
import type { OutboxItem } from './outbox';
import { Outbox } from './outbox';
import { ApiError } from './rest';
import { newId } from './storage';
import type { AckFrame, ClientFrame, ErrorFrame, EventFrame, MessageAck, ReadyFrame, ServerFrame, TypingFrame } from './types';

/** A message not yet seen as an event: in the outbox, or acknowledged and on its way. */
export type PendingMessage = OutboxItem & { acked?: boolean };

export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'offline' | 'closed';

/** What the connection needs of a WebSocket (the browser's, or a fake in tests). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type SocketFactory = (url: string) => SocketLike;

export interface ConnectionOptions {
  url: string;
  /** A valid access token; `force` asks for a refreshed one (the server refused the last). */
  token: (force: boolean) => Promise<string>;
  outbox: Outbox;
  /** Posts a message over REST: used to settle sends the socket answered with an error. */
  post?: (conversationId: string, clientMessageId: string, text: string) => Promise<MessageAck>;
  socket?: SocketFactory;
  backoff?: BackoffOptions;
  /** How often to ping (ms); 0 disables the heartbeat. */
  heartbeatMs?: number;
  /** How long to wait for any frame after a ping before the socket is taken for dead. */
  pongTimeoutMs?: number;
  random?: () => number;
  /** Where `online`/`offline` events come from (the window); null for none. */
  network?: EventTarget | null;
  isOnline?: () => boolean;
}

export interface ConnectionEvents {
  status: ConnectionStatus;
  ready: ReadyFrame;
  event: EventFrame;
  ack: AckFrame;
  typing: TypingFrame;
  error: ErrorFrame;
  outbox: readonly PendingMessage[];
  /** The session cannot be renewed (refresh refused): sign in again. */
  unauthorized: ApiError;
}

const OPEN = 1;

export class Connection extends Emitter<ConnectionEvents> {
  private ws: SocketLike | null = null;
  private started = false;
  private _status: ConnectionStatus = 'idle';
  private attempt = 0;
  private forceRefresh = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private reauthTimer: ReturnType<typeof setTimeout> | null = null;
  /** Conversations followed, with the last version delivered. */
  private readonly subs = new Map<string, number>();
  /** Inbox pushes of conversations not followed: last version delivered. */
  private readonly inboxSeen = new Map<string, number>();
  private inbox = false;
  /** Client message ids sent on the current socket and not acknowledged yet. */
  private inflight: string[] = [];
  private readonly unlisten: (() => void)[] = [];
  /** Acknowledged messages whose event has not arrived yet (shown as "sent", not lost in between). */
  private readonly ackedUnseen = new Map<string, PendingMessage>();
  private generation = 0;
  readonly outbox: Outbox;

  constructor(private readonly opts: ConnectionOptions) {
    super();
    this.outbox = opts.outbox;
    this.outbox.onChange(() => this.emit('outbox', this.pending()));
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  private setStatus(s: ConnectionStatus): void {
    if (s === this._status) return;
    this._status = s;
    this.emit('status', s);
  }

  private isOnline(): boolean {
    if (this.opts.isOnline) return this.opts.isOnline();
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    return nav?.onLine ?? true;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const net = this.opts.network === undefined ? (globalThis as { window?: EventTarget }).window ?? null : this.opts.network;
    // React Native has a `window` without addEventListener: it says when the app returns through wake().
    if (net && typeof net.addEventListener === 'function') {
      const online = (): void => this.onOnline();
      const offline = (): void => this.onOffline();
      net.addEventListener('online', online);
      net.addEventListener('offline', offline);
      this.unlisten.push(() => net.removeEventListener('online', online), () => net.removeEventListener('offline', offline));
    }
    void this.connect();
  }

  stop(): void {
    this.started = false;
    this.clearTimers();
    for (const u of this.unlisten.splice(0)) u();
    this.drop();
    this.setStatus('closed');
  }

  /**
   * The app is in front again (React Native's AppState "active", a page made
   * visible): a socket that is down reconnects now instead of after its
   * back-off, and an open one is pinged so a socket that died in the
   * background is noticed within the pong timeout rather than the next heartbeat.
   */
  wake(): void {
    if (!this.started) return;
    if (this._status !== 'open' || !this.ws) {
      // Waiting out a back-off: go now. (A socket being opened is left to finish.)
      if (this.reconnectTimer) this.onOnline();
      return;
    }
    this.frame({ type: 'ping' });
    if (!this.pongTimer) {
      const ws = this.ws;
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        if (ws === this.ws) this.drop();
      }, this.opts.pongTimeoutMs ?? 10_000);
    }
  }

  /** Follows a conversation from `afterVersion` (or from where it was, if followed already). */
  subscribe(conversationId: string, afterVersion = 0): void {
    const known = this.subs.get(conversationId);
    const from = known === undefined ? afterVersion : Math.max(known, afterVersion);
    this.subs.set(conversationId, from);
    if (known === undefined) this.frame({ type: 'subscribe', conversation_id: conversationId, after_version: from });
  }

  unsubscribe(conversationId: string): void {
    if (!this.subs.delete(conversationId)) return;
    this.frame({ type: 'unsubscribe', conversation_id: conversationId });
  }

  isSubscribed(conversationId: string): boolean {
    return this.subs.has(conversationId);
  }

  /** Staff: every event of every conversation of the tenant. */
  subscribeInbox(): void {
    if (this.inbox) return;
    this.inbox = true;
    this.frame({ type: 'subscribe_inbox' });
  }

  /** The last version delivered for a followed conversation. */
  lastVersion(conversationId: string): number {
    return this.subs.get(conversationId) ?? 0;
  }

  /** Messages not seen as events yet, oldest first: unsent, failed, or acknowledged and on their way. */
  pending(conversationId?: string): PendingMessage[] {
    const all: PendingMessage[] = [...this.outbox.items, ...this.ackedUnseen.values()];
    return all.filter((m) => conversationId === undefined || m.conversation_id === conversationId).sort((a, b) => a.created_at - b.created_at);
  }

  /** Queues a message (kept in storage until acknowledged) and sends it when the socket is ready. */
  send(conversationId: string, text: string, clientMessageId: string = newId()): OutboxItem {
    // Strictly increasing, so messages typed in one millisecond keep their order.
    const newest = this.outbox.items.reduce((m, i) => Math.max(m, i.created_at), 0);
    const item: OutboxItem = { conversation_id: conversationId, client_message_id: clientMessageId, text, created_at: Math.max(Date.now(), newest + 1) };
    this.outbox.add(item);
    this.transmit(item);
    return item;
  }

  /** Sends a failed message again. */
  retry(clientMessageId: string): void {
    const item = this.outbox.retry(clientMessageId);
    if (item) this.transmit(item);
  }

  /** Drops a message that failed for good. */
  discard(clientMessageId: string): void {
    this.outbox.remove(clientMessageId);
  }

  typing(conversationId: string, typing: boolean): void {
    if (this.subs.has(conversationId)) this.frame({ type: 'typing', conversation_id: conversationId, typing });
  }

  // --- the socket -----------------------------------------------------------

  private async connect(): Promise<void> {
    if (!this.started) return;
    this.reconnectTimer = null;
    const generation = ++this.generation;
    this.setStatus(this.isOnline() ? 'connecting' : 'offline');
    let token: string;
    try {
      token = await this.opts.token(this.forceRefresh);
      this.forceRefresh = false;
    } catch (e) {
      if (e instanceof ApiError && !e.transient) {
        this.emit('unauthorized', e);
        this.started = false;
        this.setStatus('closed');
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (!this.started || generation !== this.generation) return;
    let ws: SocketLike;
    try {
      ws = (this.opts.socket ?? ((url) => new WebSocket(url) as unknown as SocketLike))(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token } satisfies ClientFrame));
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') this.receive(ev.data);
    };
    ws.onclose = (ev) => this.closed(ws, ev.code);
    ws.onerror = () => undefined;
  }

  private receive(data: string): void {
    this.clearPongTimer();
    let frame: ServerFrame;
    try {
      frame = JSON.parse(data) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case 'ready':
        this.opened(frame);
        this.scheduleReauth(frame.expires_at);
        break;
      case 'authenticated':
        this.scheduleReauth(frame.expires_at);
        break;
      case 'event':
        this.deliver(frame);
        break;
      case 'ack':
        this.acked(frame);
        break;
      case 'typing':
        this.emit('typing', frame);
        break;
      case 'error':
        this.emit('error', frame);
        void this.settleInflight();
        break;
      default:
        break;
    }
  }

  private opened(ready: ReadyFrame): void {
    this.attempt = 0;
    this.inflight = [];
    this.setStatus('open');
    this.emit('ready', ready);
    for (const [id, after] of this.subs) this.frame({ type: 'subscribe', conversation_id: id, after_version: after });
    if (this.inbox) this.frame({ type: 'subscribe_inbox' });
    for (const item of this.outbox.pending()) this.transmit(item);
    this.startHeartbeat();
  }

  private deliver(frame: EventFrame): void {
    const id = frame.conversation_id;
    const followed = this.subs.get(id);
    if (followed !== undefined) {
      if (frame.version <= followed) return;
      this.subs.set(id, frame.version);
    } else {
      const seen = this.inboxSeen.get(id) ?? 0;
      if (frame.version <= seen) return;
      this.inboxSeen.set(id, frame.version);
    }
    const e = frame.event;
    if (e.type === 'MessagePosted' && e.client_message_id) {
      const cmid = e.client_message_id;
      const wasPending = this.ackedUnseen.delete(cmid);
      // An event can overtake its ack (another tab, a REST resend): the message is stored.
      if (this.outbox.remove(cmid) || wasPending) this.emit('outbox', this.pending());
      this.inflight = this.inflight.filter((c) => c !== cmid);
    }
    this.emit('event', frame);
  }

  private acked(frame: AckFrame): void {
    const cmid = frame.client_message_id;
    this.inflight = this.inflight.filter((c) => c !== cmid);
    const item = this.outbox.items.find((i) => i.client_message_id === cmid);
    const seen = (this.subs.get(frame.conversation_id) ?? 0) >= frame.version;
    if (item && !seen && this.subs.has(frame.conversation_id)) this.ackedUnseen.set(cmid, { ...item, acked: true });
    this.outbox.remove(cmid);
    this.emit('ack', frame);
  }

  /**
   * An error frame does not say which frame it answers. Sends still waiting
   * are settled over REST (idempotent by client message id): stored → acked,
   * refused → marked failed, unreachable → left for the next attempt.
   */
  private async settleInflight(): Promise<void> {
    const post = this.opts.post;
    if (!post || this.inflight.length === 0) return;
    const waiting = this.inflight.splice(0);
    for (const cmid of waiting) {
      const item = this.outbox.items.find((i) => i.client_message_id === cmid);
      if (!item) continue;
      try {
        const ack = await post(item.conversation_id, item.client_message_id, item.text);
        this.acked({ type: 'ack', conversation_id: ack.conversation_id, client_message_id: ack.client_message_id, version: ack.version, duplicate: ack.duplicate });
      } catch (e) {
        if (e instanceof ApiError && !e.transient && e.status !== 401) this.outbox.markFailed(cmid, e.message);
        else break;
      }
    }
  }

  private transmit(item: OutboxItem): void {
    if (this._status !== 'open' || !this.ws || item.failed) return;
    if (this.inflight.includes(item.client_message_id)) return;
    this.inflight.push(item.client_message_id);
    this.frame({ type: 'send', conversation_id: item.conversation_id, client_message_id: item.client_message_id, text: item.text });
  }

  private frame(f: ClientFrame): void {
    if (this._status !== 'open' || !this.ws || this.ws.readyState !== OPEN) return;
    try {
      this.ws.send(JSON.stringify(f));
    } catch {
      // The close event follows and the reconnect resends what matters.
    }
  }

  private closed(ws: SocketLike, code: number): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.stopHeartbeat();
    this.clearReauth();
    this.inflight = [];
    if (!this.started) return;
    if (code === 4003) {
      this.started = false;
      this.emit('error', { type: 'error', code: 'origin_not_allowed', message: 'This site may not open the chat (origin not allowed).' });
      this.setStatus('closed');
      return;
    }
    // Unauthenticated, token expired, session ended: a fresh token is needed.
    if (code === 4001 || code === 4002 || code === 4004) this.forceRefresh = true;
    this.scheduleReconnect();
  }

  /**
   * Sends a fresh token over the open socket a while before `expiresAt`
   * (Unix seconds): a minute before, or half way for shorter tokens.
   */
  private scheduleReauth(expiresAt: number | undefined): void {
    this.clearReauth();
    if (expiresAt === undefined) return;
    const left = expiresAt * 1000 - Date.now();
    const delay = Math.max(0, left - Math.min(60_000, left / 2));
    const ws = this.ws;
    this.reauthTimer = setTimeout(() => {
      this.reauthTimer = null;
      void this.reauthenticate(ws);
    }, delay);
  }

  private async reauthenticate(ws: SocketLike | null): Promise<void> {
    let token: string;
    try {
      token = await this.opts.token(true);
    } catch {
      // The socket closes at expiry and the reconnect deals with it.
      return;
    }
    if (ws !== this.ws || this._status !== 'open') return;
    this.frame({ type: 'auth', token });
  }

  private clearReauth(): void {
    if (this.reauthTimer) clearTimeout(this.reauthTimer);
    this.reauthTimer = null;
  }

  /** Forgets the current socket at once (a dead socket's close event may come much later). */
  private drop(): void {
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000, 'bye');
    } catch {
      // already closed
    }
    this.closed(ws, 1006);
    this.ws = null;
  }

  private scheduleReconnect(): void {
    if (!this.started || this.reconnectTimer) return;
    this.generation++;
    this.setStatus(this.isOnline() ? 'connecting' : 'offline');
    const delay = backoffDelay(this.attempt++, this.opts.backoff, this.opts.random);
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  private onOnline(): void {
    if (!this.started || this._status === 'open') return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attempt = 0;
    void this.connect();
  }

  private onOffline(): void {
    if (!this.started) return;
    // The socket is as good as dead; go straight to waiting for the network.
    if (this.ws) {
      const ws = this.ws;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, 'offline');
      } catch {
        // ignore
      }
      this.closed(ws, 1006);
    }
    this.setStatus('offline');
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = this.opts.heartbeatMs ?? 20_000;
    if (every <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      if (!this.ws) return;
      this.frame({ type: 'ping' });
      if (!this.pongTimer) {
        const ws = this.ws;
        this.pongTimer = setTimeout(() => {
          this.pongTimer = null;
          if (ws === this.ws) this.drop();
        }, this.opts.pongTimeoutMs ?? 10_000);
      }
    }, every);
  }

  private clearPongTimer(): void {
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.clearPongTimer();
  }

  private clearTimers(): void {
    this.stopHeartbeat();
    this.clearReauth();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}
