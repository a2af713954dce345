import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, type SocketLike } from './connection';
import { Outbox } from './outbox';
import { MemoryStore } from './storage';
import { backoffDelay } from './backoff';
import { ApiError } from './rest';
import type { ClientFrame, EventFrame } from './types';

/** A socket whose "server" is the test: it records frames and lets the test push frames or close. */
class FakeSocket implements SocketLike {
  readyState = 0;
  sent: ClientFrame[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closedByClient = false;
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(): void {
    this.closedByClient = true;
    this.readyState = 3;
  }
  push(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  serverClose(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  ofType<T extends ClientFrame['type']>(t: T): Extract<ClientFrame, { type: T }>[] {
    return this.sent.filter((f): f is Extract<ClientFrame, { type: T }> => f.type === t);
  }
}

function message(conversation: string, version: number, cmid: string | null, text: string): EventFrame {
  return {
    type: 'event',
    conversation_id: conversation,
    version,
    position: version * 10,
    occurred_at: new Date(0).toISOString(),
    event: { type: 'MessagePosted', author: { kind: 'customer' }, text, client_message_id: cmid },
  };
}

describe('Connection', () => {
  let sockets: FakeSocket[];
  let store: MemoryStore;
  let online: boolean;
  let network: EventTarget;
  let tokenCalls: boolean[];

  const make = (overrides: Partial<ConstructorParameters<typeof Connection>[0]> = {}): Connection =>
    new Connection({
      url: 'ws://test/api/v1/ws',
      token: async (force) => {
        tokenCalls.push(force);
        return force ? 'fresh' : 'token';
      },
      outbox: new Outbox(store, 'outbox'),
      socket: () => {
        const s = new FakeSocket();
        sockets.push(s);
        return s;
      },
      random: () => 0.5,
      heartbeatMs: 0,
      network,
      isOnline: () => online,
      ...overrides,
    });

  const last = (): FakeSocket => {
    const s = sockets[sockets.length - 1];
    if (!s) throw new Error('no socket yet');
    return s;
  };

  /** Lets the async connect (token fetch) run, opens the socket, answers auth with ready. */
  const accept = async (): Promise<FakeSocket> => {
    await vi.advanceTimersByTimeAsync(0);
    const s = last();
    s.open();
    s.push({ type: 'ready', user_id: 'u1', tenant: 't', role: 'customer' });
    return s;
  };

  beforeEach(() => {
    vi.useFakeTimers();
    sockets = [];
    store = new MemoryStore();
    online = true;
    network = new EventTarget();
    tokenCalls = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('authenticates with the first frame, then subscribes from the given version', async () => {
    const c = make();
    const statuses: string[] = [];
    c.on('status', (s) => statuses.push(s));
    c.subscribe('c1', 4);
    c.start();
    const s = await accept();
    expect(s.sent[0]).toEqual({ type: 'auth', token: 'token' });
    expect(s.ofType('subscribe')).toEqual([{ type: 'subscribe', conversation_id: 'c1', after_version: 4 }]);
    expect(statuses).toEqual(['connecting', 'open']);
    c.stop();
  });

  it('takes versions with gaps (events a customer may not see) and resumes exactly after the last one seen', async () => {
    const c = make();
    const got: number[] = [];
    c.on('event', (e) => got.push(e.version));
    c.subscribe('c1');
    c.start();
    let s = await accept();
    s.push(message('c1', 1, 'a', 'one'));
    s.push(message('c1', 2, 'b', 'two'));
    // Version 3 (staff tags) is never sent to the customer.
    s.push(message('c1', 4, 'c', 'four'));
    expect(got).toEqual([1, 2, 4]);
    s.serverClose(1012);
    await vi.advanceTimersByTimeAsync(backoffDelay(0, {}, () => 0.5));
    s = await accept();
    expect(s.ofType('subscribe')).toEqual([{ type: 'subscribe', conversation_id: 'c1', after_version: 4 }]);
    s.push(message('c1', 4, 'c', 'four')); // already seen: ignored
    // Versions 5 and 6 were staff-only; 7 follows.
    s.push(message('c1', 7, 'd', 'seven'));
    expect(got).toEqual([1, 2, 4, 7]);
    expect(c.lastVersion('c1')).toBe(7);
    c.stop();
  });

  it('drops events at or below the last version delivered, and resumes after a drop from there', async () => {
    const c = make();
    const got: number[] = [];
    c.on('event', (e) => got.push(e.version));
    c.subscribe('c1');
    c.start();
    let s = await accept();
    s.push(message('c1', 1, 'a', 'one'));
    s.push(message('c1', 2, 'b', 'two'));
    s.push(message('c1', 2, 'b', 'two')); // doubled
    s.push(message('c1', 1, 'a', 'one')); // late
    s.serverClose(1012);
    expect(c.status).toBe('connecting');
    await vi.advanceTimersByTimeAsync(backoffDelay(0, {}, () => 0.5));
    s = await accept();
    expect(s.ofType('subscribe')).toEqual([{ type: 'subscribe', conversation_id: 'c1', after_version: 2 }]);
    s.push(message('c1', 2, 'b', 'two')); // the server resends what we have: ignored
    s.push(message('c1', 3, 'c', 'three'));
    expect(got).toEqual([1, 2, 3]);
    expect(c.lastVersion('c1')).toBe(3);
    c.stop();
  });

  it('keeps unsent messages in storage and sends them again, same ids, in order, after reconnecting', async () => {
    const c = make();
    c.subscribe('c1');
    c.start();
    let s = await accept();
    const a = c.send('c1', 'first');
    s.serverClose(1006); // dropped before the ack
    const b = c.send('c1', 'second'); // sent while disconnected
    expect(new Outbox(store, 'outbox').pending().map((i) => i.text)).toEqual(['first', 'second']);
    expect(c.pending('c1').map((m) => m.text)).toEqual(['first', 'second']);
    await vi.advanceTimersByTimeAsync(60_000);
    s = await accept();
    const sends = s.ofType('send');
    expect(sends.map((f) => [f.client_message_id, f.text])).toEqual([
      [a.client_message_id, 'first'],
      [b.client_message_id, 'second'],
    ]);
    s.push({ type: 'ack', conversation_id: 'c1', client_message_id: a.client_message_id, version: 2, duplicate: true });
    // Acknowledged but its event not seen yet: still shown, as sent.
    expect(c.pending('c1').map((m) => [m.text, m.acked ?? false])).toEqual([
      ['first', true],
      ['second', false],
    ]);
    s.push({ type: 'ack', conversation_id: 'c1', client_message_id: b.client_message_id, version: 3, duplicate: false });
    expect(new Outbox(store, 'outbox').pending()).toEqual([]);
    s.push(message('c1', 2, a.client_message_id, 'first'));
    s.push(message('c1', 3, b.client_message_id, 'second'));
    expect(c.pending('c1')).toEqual([]);
    c.stop();
  });

  it('a new connection (a reload) sends what the last page left in the outbox', async () => {
    new Outbox(store, 'outbox').add({ conversation_id: 'c9', client_message_id: 'left-over', text: 'hello?', created_at: 1 });
    const c = make();
    c.start();
    const s = await accept();
    expect(s.ofType('send')).toEqual([{ type: 'send', conversation_id: 'c9', client_message_id: 'left-over', text: 'hello?' }]);
    c.stop();
  });

  it('wake() (back in the foreground) reconnects at once from a back-off, and pings an open socket to find it dead', async () => {
    const c = make({ network: null, pongTimeoutMs: 5_000 });
    c.subscribe('c1');
    c.start();
    let s = await accept();
    // Open: a ping, and no answer within the pong timeout drops the socket and reconnects.
    c.wake();
    expect(s.ofType('ping')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(c.status).toBe('connecting');
    s = last();
    expect(s.closedByClient).toBe(true);
    // Several failures in: the next try is far off, but wake() tries now.
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(60_000);
      last().serverClose(1006);
    }
    const before = sockets.length;
    c.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets).toHaveLength(before + 1);
    s = await accept();
    expect(s.ofType('subscribe')).toEqual([{ type: 'subscribe', conversation_id: 'c1', after_version: 0 }]);
    // A socket that answers the wake-up ping stays.
    c.wake();
    s.push({ type: 'pong' });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(c.status).toBe('open');
    expect(s.closedByClient).toBe(false);
    c.stop();
  });

  it('works where the global window has no addEventListener (React Native)', async () => {
    const c = make({ network: {} as EventTarget });
    c.start();
    await accept();
    expect(c.status).toBe('open');
    c.stop();
  });

  it('backs off exponentially while the server is unreachable, and retries at once when back online', async () => {
    const c = make();
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets).toHaveLength(1);
    last().serverClose(1006);
    await vi.advanceTimersByTimeAsync(backoffDelay(0, {}, () => 0.5) - 1);
    expect(sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets).toHaveLength(2);
    last().serverClose(1006);
    await vi.advanceTimersByTimeAsync(backoffDelay(1, {}, () => 0.5) - 1);
    expect(sockets).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets).toHaveLength(3);
    // Offline: the socket is dropped at once; online: reconnect without waiting.
    await accept();
    online = false;
    network.dispatchEvent(new Event('offline'));
    expect(c.status).toBe('offline');
    expect(last().closedByClient).toBe(true);
    online = true;
    network.dispatchEvent(new Event('online'));
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets).toHaveLength(4);
    c.stop();
  });

  it('delays grow, are capped, and are jittered', () => {
    expect(backoffDelay(0, { initialMs: 1000 }, () => 0)).toBe(500);
    expect(backoffDelay(0, { initialMs: 1000 }, () => 1)).toBe(1000);
    expect(backoffDelay(3, { initialMs: 1000 }, () => 1)).toBe(8000);
    expect(backoffDelay(30, { initialMs: 1000, maxMs: 30_000 }, () => 1)).toBe(30_000);
  });

  it('refreshes the token when the server closes with 4001', async () => {
    const c = make();
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    last().open();
    last().serverClose(4001);
    await vi.advanceTimersByTimeAsync(60_000);
    const s = await accept();
    expect(s.sent[0]).toEqual({ type: 'auth', token: 'fresh' });
    expect(tokenCalls).toEqual([false, true]);
    c.stop();
  });

  it('refreshes the token when the server closes with 4002 (expired) or 4004 (session ended)', async () => {
    for (const code of [4002, 4004]) {
      tokenCalls = [];
      const c = make();
      c.start();
      await vi.advanceTimersByTimeAsync(0);
      last().open();
      last().serverClose(code);
      await vi.advanceTimersByTimeAsync(60_000);
      const s = await accept();
      expect(s.sent[0]).toEqual({ type: 'auth', token: 'fresh' });
      expect(tokenCalls).toEqual([false, true]);
      c.stop();
    }
  });

  it('re-authenticates over the open socket before the token expires', async () => {
    const c = make();
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    const s = last();
    s.open();
    const now = Math.floor(Date.now() / 1000);
    s.push({ type: 'ready', user_id: 'u', tenant: 't', role: 'customer', expires_at: now + 900 });
    await vi.advanceTimersByTimeAsync(839_000);
    expect(s.ofType('auth')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(s.ofType('auth')).toEqual([
      { type: 'auth', token: 'token' },
      { type: 'auth', token: 'fresh' },
    ]);
    // The server's answer sets the next renewal; the socket stays the same.
    s.push({ type: 'authenticated', expires_at: now + 1800 });
    await vi.advanceTimersByTimeAsync(900_000);
    expect(s.ofType('auth')).toHaveLength(3);
    expect(sockets).toHaveLength(1);
    c.stop();
  });

  it('stops and says so when the session cannot be renewed', async () => {
    const c = make({ token: async () => Promise.reject(new ApiError(401, 'unauthorized', 'expired')) });
    const lost: string[] = [];
    c.on('unauthorized', (e) => lost.push(e.code));
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(lost).toEqual(['unauthorized']);
    expect(c.status).toBe('closed');
  });

  it('takes a socket that stops answering pings for dead and reconnects', async () => {
    const c = make({ heartbeatMs: 1000, pongTimeoutMs: 500 });
    c.start();
    const s = await accept();
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.ofType('ping')).toHaveLength(1);
    s.push({ type: 'pong' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.ofType('ping')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(500); // no pong
    expect(s.closedByClient).toBe(true);
    expect(c.status).toBe('connecting');
    c.stop();
  });

  it('settles a send the server answered with an error over REST: refused → failed, and retry sends it again', async () => {
    const post = vi.fn(async () => Promise.reject(new ApiError(422, 'invalid_text', 'too long')));
    const c = make({ post });
    c.start();
    const s = await accept();
    const item = c.send('c1', 'x'.repeat(5000));
    s.push({ type: 'error', code: 'invalid_text', message: 'too long' });
    await vi.advanceTimersByTimeAsync(0);
    expect(post).toHaveBeenCalledWith('c1', item.client_message_id, item.text);
    expect(c.pending()[0]?.failed).toBe('too long');
    c.retry(item.client_message_id);
    expect(s.ofType('send')).toHaveLength(2);
    c.discard(item.client_message_id);
    expect(c.pending()).toEqual([]);
    c.stop();
  });

  it('closes for good when the origin is not allowed', async () => {
    const c = make();
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.code));
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    last().open();
    last().serverClose(4003);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sockets).toHaveLength(1);
    expect(errors).toEqual(['origin_not_allowed']);
    expect(c.status).toBe('closed');
  });

  it('dedupes inbox pushes separately from followed conversations', async () => {
    const c = make();
    const got: string[] = [];
    c.on('event', (e) => got.push(`${e.conversation_id}@${e.version}`));
    c.subscribeInbox();
    c.start();
    const s = await accept();
    expect(s.ofType('subscribe_inbox')).toHaveLength(1);
    s.push(message('c2', 5, null, 'hi'));
    s.push(message('c2', 5, null, 'hi'));
    // Opening c2 later starts from its beginning, not from what the inbox showed.
    c.subscribe('c2', 0);
    expect(s.ofType('subscribe').at(-1)).toEqual({ type: 'subscribe', conversation_id: 'c2', after_version: 0 });
    s.push(message('c2', 1, null, 'first'));
    expect(got).toEqual(['c2@5', 'c2@1']);
    c.stop();
  });
});
