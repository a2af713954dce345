/**
 * The shared protocol client (`@jamuna/protocol`) against a real `jamuna
 * serve`, over Node's sockets (the `ws` package): what the widget, the
 * dashboard and the mobile app rely on — resume after drops, the outbox that
 * survives a restart, and idempotent resends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  ApiClient,
  type AsyncKeyValueStore,
  Connection,
  type EventFrame,
  Outbox,
  PersistentStore,
  Session,
  type SocketLike,
  newId,
} from '@jamuna/protocol';
import { type Server, startServer } from './harness';

/** AsyncStorage's shape over a map: what survives an app restart on a phone. */
class DeviceStorage implements AsyncKeyValueStore {
  readonly data = new Map<string, string>();
  async getItem(key: string): Promise<string | null> {
    return this.data.get(key) ?? null;
  }
  async setItem(key: string, value: string): Promise<void> {
    this.data.set(key, value);
  }
  async removeItem(key: string): Promise<void> {
    this.data.delete(key);
  }
  async getAllKeys(): Promise<readonly string[]> {
    return [...this.data.keys()];
  }
}

/** One app run: storage opened, a session, the socket with its outbox. */
interface Client {
  api: ApiClient;
  conn: Connection;
  store: PersistentStore;
  sockets: WebSocket[];
  events: EventFrame[];
  /** Set to refuse new sockets (no network). */
  offline: { value: boolean };
}

async function openClient(server: Server, device: DeviceStorage, opts: { offline?: boolean } = {}): Promise<Client> {
  const store = await PersistentStore.open(device, 'jamuna.');
  const api = new ApiClient(server.url, new Session(store, 'jamuna.session'));
  if (!api.session.current) await api.visitor(server.widgetKey);
  const user = api.session.current?.user_id ?? 'anon';
  const sockets: WebSocket[] = [];
  const offline = { value: opts.offline ?? false };
  const conn = new Connection({
    url: api.socketUrl,
    token: (force) => api.token(force),
    outbox: new Outbox(store, `jamuna.outbox.${user}`),
    post: (id, cmid, text) => api.postMessage(id, cmid, text),
    network: null,
    isOnline: () => !offline.value,
    backoff: { initialMs: 50, maxMs: 400 },
    socket: (url) => {
      if (offline.value) throw new Error('offline');
      const ws = new WebSocket(url);
      sockets.push(ws);
      return ws as unknown as SocketLike;
    },
  });
  const events: EventFrame[] = [];
  conn.on('event', (e) => events.push(e));
  return { api, conn, store, sockets, events, offline };
}

async function until<T>(what: string, f: () => T | Promise<T>, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await f();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

type Posted = Extract<EventFrame['event'], { type: 'MessagePosted' }>;
const customerTexts = (events: readonly EventFrame[]): string[] =>
  events.flatMap((f) => (f.event.type === 'MessagePosted' && f.event.author.kind === 'customer' ? [(f.event as Posted).text as string] : []));

describe('the protocol client against a real server', () => {
  let server: Server;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('reconnects and resumes through repeated socket drops: every message stored and delivered once, in order', async () => {
    const c = await openClient(server, new DeviceStorage());
    const { id } = await c.api.startConversation('mobile');
    c.conn.subscribe(id, 0);
    c.conn.start();
    await until('the socket', () => c.conn.status === 'open');

    const texts = Array.from({ length: 12 }, (_, i) => `resume message ${i + 1}`);
    for (const [i, t] of texts.entries()) {
      c.conn.send(id, t);
      // Cut the socket under the client every third message, without a close handshake.
      if (i % 3 === 1) c.sockets[c.sockets.length - 1]?.terminate();
      await new Promise((r) => setTimeout(r, 30));
    }
    // Events that happen while the client is away must come on resume. (The
    // socket's messages first: one still in the outbox would be stored after
    // the REST message, on reconnect, which is right but not this order.)
    await until('every socket message acknowledged', () => c.conn.pending(id).length === 0);
    c.sockets[c.sockets.length - 1]?.terminate();
    const other = await openClient(server, new DeviceStorage());
    await expect(other.api.postMessage(id, newId(), 'from elsewhere')).rejects.toThrow(); // not the visitor's conversation
    await c.api.postMessage(id, newId(), 'posted over REST while the socket was down');

    await until('every message acknowledged', () => c.conn.pending(id).length === 0);
    const detail = await until('the stored conversation with all messages', async () => {
      const d = await c.api.conversation(id);
      return customerTexts(d.events).length === texts.length + 1 ? d : null;
    });
    expect(customerTexts(detail.events)).toEqual([...texts, 'posted over REST while the socket was down']);
    await until('the socket to deliver every stored event', () => c.events.length >= detail.events.length);
    const versions = c.events.map((e) => e.version);
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(versions.slice(0, detail.events.length)).toEqual(detail.events.map((e) => e.version));
    expect(customerTexts(c.events)).toEqual(customerTexts(detail.events));
    expect(c.sockets.length).toBeGreaterThanOrEqual(5);
    c.conn.stop();
  });

  it('replays the outbox after an app restart (a new client on the same storage), each message once', async () => {
    const device = new DeviceStorage();
    // First run: no network. The messages are typed, shown as pending, kept.
    const first = await openClient(server, device, { offline: true });
    const { id } = await first.api.startConversation('mobile');
    first.conn.subscribe(id, 0);
    first.conn.start();
    const a = first.conn.send(id, 'typed offline 1');
    const b = first.conn.send(id, 'typed offline 2');
    const c3 = first.conn.send(id, 'typed offline 3');
    expect(first.conn.pending(id).map((m) => [m.text, m.acked ?? false])).toEqual([
      ['typed offline 1', false],
      ['typed offline 2', false],
      ['typed offline 3', false],
    ]);
    // The server did get the second one (say the app died between send and ack).
    await first.api.postMessage(id, b.client_message_id, b.text);
    first.conn.stop();
    await first.store.flush();
    expect([...device.data.keys()].some((k) => k.startsWith('jamuna.outbox.'))).toBe(true);

    // Second run: same storage, network back.
    const second = await openClient(server, device);
    expect(second.api.session.current?.user_id).toBe(first.api.session.current?.user_id);
    expect(second.conn.pending().map((m) => m.client_message_id)).toEqual([a.client_message_id, b.client_message_id, c3.client_message_id]);
    second.conn.subscribe(id, 0);
    second.conn.start();
    await until('the outbox to empty', () => second.conn.pending().length === 0);
    await second.store.flush();
    expect([...device.data.keys()].some((k) => k.startsWith('jamuna.outbox.'))).toBe(false);
    const detail = await until('three messages stored', async () => {
      const d = await second.api.conversation(id);
      return customerTexts(d.events).length >= 3 ? d : null;
    });
    // The second one reached the server in the first run; the replay adds the others after it, and not it again.
    expect(customerTexts(detail.events)).toEqual(['typed offline 2', 'typed offline 1', 'typed offline 3']);
    const cmids = detail.events.flatMap((f) => (f.event.type === 'MessagePosted' ? [f.event.client_message_id] : []));
    expect(cmids.filter((x) => x !== null && x !== undefined && [a, b, c3].some((m) => m.client_message_id === x))).toHaveLength(3);
    second.conn.stop();
  });

  it('stores a message resent with the same client message id once (socket, new client, and REST)', async () => {
    const device = new DeviceStorage();
    const c = await openClient(server, device);
    const { id } = await c.api.startConversation('mobile');
    const acks: { cmid: string; version: number; duplicate: boolean }[] = [];
    c.conn.on('ack', (f) => acks.push({ cmid: f.client_message_id, version: f.version, duplicate: f.duplicate }));
    c.conn.subscribe(id, 0);
    c.conn.start();
    const cmid = newId();
    c.conn.send(id, 'only once please', cmid);
    await until('the ack', () => acks.length === 1);
    expect(acks[0]).toMatchObject({ cmid, duplicate: false });
    c.conn.stop();

    // Another instance (a restart that lost the ack) sends it again over the socket.
    const again = await openClient(server, device);
    const acks2: { version: number; duplicate: boolean }[] = [];
    again.conn.on('ack', (f) => acks2.push({ version: f.version, duplicate: f.duplicate }));
    again.conn.subscribe(id, 0);
    again.conn.start();
    again.conn.send(id, 'only once please', cmid);
    await until('the second ack', () => acks2.length === 1);
    expect(acks2[0]).toEqual({ version: acks[0]!.version, duplicate: true });
    again.conn.stop();

    // And over REST.
    const rest = await c.api.postMessage(id, cmid, 'only once please');
    expect(rest).toMatchObject({ client_message_id: cmid, version: acks[0]!.version, duplicate: true });

    const detail = await c.api.conversation(id);
    const copies = detail.events.filter((f) => f.event.type === 'MessagePosted' && f.event.client_message_id === cmid);
    expect(copies).toHaveLength(1);
    expect(customerTexts(detail.events).filter((t) => t === 'only once please')).toHaveLength(1);
  });
});
