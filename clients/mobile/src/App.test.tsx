/**
 * The whole app with its device storage (an AsyncStorage look-alike), HTTP
 * and sockets faked at the edges: a visitor signs in, starts a conversation,
 * writes while the socket is down (pending, kept in storage), and the app
 * sends it once when it returns to the foreground; a restart replays what
 * was left unsent.
 */
import { AppState, type AppStateStatus } from 'react-native';
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react-native';
import type { AsyncKeyValueStore, ClientFrame, SocketLike } from '@jamuna/protocol';
import { App } from './App';
import type { AppConfig } from './config';

class DeviceStorage implements AsyncKeyValueStore {
  readonly data = new Map<string, string>();
  async getItem(k: string): Promise<string | null> {
    return this.data.get(k) ?? null;
  }
  async setItem(k: string, v: string): Promise<void> {
    this.data.set(k, v);
  }
  async removeItem(k: string): Promise<void> {
    this.data.delete(k);
  }
  async getAllKeys(): Promise<readonly string[]> {
    return [...this.data.keys()];
  }
}

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: ClientFrame[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  send(data: string): void {
    this.sent.push(JSON.parse(data) as ClientFrame);
  }
  close(): void {
    this.readyState = 3;
  }
  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
    this.onmessage?.({ data: JSON.stringify({ type: 'ready', user_id: VISITOR, tenant: 'demo', role: 'customer' }) });
  }
  push(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
  sends(): string[] {
    return this.sent.flatMap((f) => (f.type === 'send' ? [f.text] : []));
  }
}

const CONV = 'c0ffee00c0ffee00c0ffee00c0ffee00';
const VISITOR = 'visitor-1';
const config: AppConfig = { serverUrl: 'http://jamuna.test', tenantKey: 'wk_test', tenant: 'demo' };

function fakeServer() {
  const calls: string[] = [];
  const fetchImpl = (async (url: string, init?: { method?: string }) => {
    const method = init?.method ?? 'GET';
    const path = url.replace(config.serverUrl, '');
    calls.push(`${method} ${path}`);
    const json = (body: unknown): Response => new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
    if (method === 'POST' && path === '/api/v1/auth/visitor')
      return json({ access_token: 'at', refresh_token: 'rt', token_type: 'Bearer', expires_in: 900, user_id: VISITOR, tenant: 'demo', role: 'customer' });
    if (method === 'GET' && path.startsWith('/api/v1/conversations?')) return json({ items: [] });
    if (method === 'POST' && path === '/api/v1/conversations') return json({ id: CONV });
    return json({});
  }) as unknown as typeof fetch;
  const sockets: FakeSocket[] = [];
  const socket = (): FakeSocket => {
    const s = new FakeSocket();
    sockets.push(s);
    return s;
  };
  return { calls, fetchImpl, sockets, socket, last: () => sockets[sockets.length - 1]! };
}

describe('App', () => {
  let appStateHandlers: ((s: AppStateStatus) => void)[];
  beforeEach(() => {
    appStateHandlers = [];
    jest.spyOn(AppState, 'addEventListener').mockImplementation((type, handler) => {
      if (type === 'change') appStateHandlers.push(handler as (s: AppStateStatus) => void);
      return { remove: () => undefined } as ReturnType<typeof AppState.addEventListener>;
    });
  });
  afterEach(() => jest.restoreAllMocks());

  it('visitor → new conversation → offline message pending and stored → foreground → sent once; a restart replays the rest', async () => {
    const storage = new DeviceStorage();
    const server = fakeServer();
    const platform = { storage, fetch: server.fetchImpl, socket: server.socket };
    const first = render(<App config={config} platform={platform} />);

    fireEvent.press(await screen.findByText('Continue as a visitor'));
    await screen.findByText('Your conversations');
    expect(server.calls).toContain('POST /api/v1/auth/visitor');
    await waitFor(() => expect(server.sockets).toHaveLength(1));
    await act(async () => server.last().accept());

    fireEvent.press(screen.getByText('New conversation'));
    fireEvent(await screen.findByTestId('GC_WRAPPER'), 'layout', { nativeEvent: { layout: { x: 0, y: 0, width: 390, height: 800 } } });
    expect(server.calls).toContain('POST /api/v1/conversations');
    await waitFor(() => expect(server.last().sent).toContainEqual({ type: 'subscribe', conversation_id: CONV, after_version: 0 }));

    // The network goes; the customer writes anyway.
    await act(async () => server.last().drop());
    fireEvent.changeText(screen.getByLabelText('Your message'), 'Sent from the lift');
    await act(async () => {
      fireEvent.press(screen.getByTestId('GC_SEND_TOUCHABLE'));
    });
    expect(screen.getByLabelText('Sending')).toBeTruthy();
    await waitFor(() => expect([...storage.data.entries()].find(([k]) => k.startsWith('jamuna.outbox.'))?.[1]).toContain('Sent from the lift'));
    expect(storage.data.get('jamuna.session')).toContain(VISITOR);

    // Back in the foreground: a new socket at once (not after the back-off), and the message goes out once.
    const before = server.sockets.length;
    await act(async () => {
      for (const h of appStateHandlers) h('background');
      for (const h of appStateHandlers) h('active');
    });
    expect(server.sockets.length).toBe(before + 1);
    await act(async () => server.last().accept());
    expect(server.last().sends()).toEqual(['Sent from the lift']);
    const cmid = (server.last().sent.find((f) => f.type === 'send') as Extract<ClientFrame, { type: 'send' }>).client_message_id;
    await act(async () => server.last().push({ type: 'ack', conversation_id: CONV, client_message_id: cmid, version: 2, duplicate: false }));
    expect(screen.getByLabelText('Sent')).toBeTruthy();
    await waitFor(() => expect([...storage.data.keys()].some((k) => k.startsWith('jamuna.outbox.'))).toBe(false));

    // Offline again, another message, then the app is killed before the network returns.
    await act(async () => server.last().drop());
    fireEvent.changeText(screen.getByLabelText('Your message'), 'Still there?');
    await act(async () => {
      fireEvent.press(screen.getByTestId('GC_SEND_TOUCHABLE'));
    });
    await waitFor(() => expect([...storage.data.entries()].find(([k]) => k.startsWith('jamuna.outbox.'))?.[1]).toContain('Still there?'));
    first.unmount();

    // The next start: still signed in (no sign-in screen), and the outbox goes out on the first socket.
    const server2 = fakeServer();
    render(<App config={config} platform={{ storage, fetch: server2.fetchImpl, socket: server2.socket }} />);
    await screen.findByText('Your conversations');
    expect(screen.queryByText('Continue as a visitor')).toBeNull();
    expect(server2.calls).not.toContain('POST /api/v1/auth/visitor');
    await waitFor(() => expect(server2.sockets).toHaveLength(1));
    await act(async () => server2.last().accept());
    expect(server2.last().sends()).toEqual(['Still there?']);
  });

  it('takes versions with gaps (staff-only notes and tags) and resumes exactly after the last one seen', async () => {
    const server = fakeServer();
    render(<App config={config} platform={{ storage: new DeviceStorage(), fetch: server.fetchImpl, socket: server.socket }} />);
    fireEvent.press(await screen.findByText('Continue as a visitor'));
    await screen.findByText('Your conversations');
    await waitFor(() => expect(server.sockets).toHaveLength(1));
    await act(async () => server.last().accept());
    fireEvent.press(screen.getByText('New conversation'));
    fireEvent(await screen.findByTestId('GC_WRAPPER'), 'layout', { nativeEvent: { layout: { x: 0, y: 0, width: 390, height: 800 } } });
    await waitFor(() => expect(server.last().sent).toContainEqual({ type: 'subscribe', conversation_id: CONV, after_version: 0 }));
    const at = new Date().toISOString();
    const event = (version: number, e: object) => ({ type: 'event', conversation_id: CONV, version, occurred_at: at, event: e });
    await act(async () => {
      server.last().push(event(1, { type: 'ConversationStarted', tenant: 'demo', conversation_id: CONV, customer: VISITOR, channel: 'mobile' }));
      server.last().push(event(2, { type: 'MessagePosted', author: { kind: 'customer' }, text: 'Where is my refund?', client_message_id: 'm1' }));
      // Versions 3 (a private note) and 4 (tags) are staff-only: never sent to the customer.
      server.last().push(event(5, { type: 'MessagePosted', author: { kind: 'agent', id: 'agent-1a2b' }, text: 'It is on its way.', client_message_id: 'a1' }));
    });
    await screen.findByText('It is on its way.');

    // The socket drops; the next one asks for what follows version 5, and a repeat of 5 shows once.
    const before = server.sockets.length;
    await act(async () => server.last().drop());
    await act(async () => {
      for (const h of appStateHandlers) h('background');
      for (const h of appStateHandlers) h('active');
    });
    expect(server.sockets.length).toBe(before + 1);
    await act(async () => server.last().accept());
    expect(server.last().sent.filter((f) => f.type === 'subscribe')).toEqual([{ type: 'subscribe', conversation_id: CONV, after_version: 5 }]);
    await act(async () => {
      server.last().push(event(5, { type: 'MessagePosted', author: { kind: 'agent', id: 'agent-1a2b' }, text: 'It is on its way.', client_message_id: 'a1' }));
      server.last().push(event(7, { type: 'MessagePosted', author: { kind: 'agent', id: 'agent-1a2b' }, text: 'Anything else?', client_message_id: 'a2' }));
    });
    await screen.findByText('Anything else?');
    expect(screen.getAllByText('It is on its way.')).toHaveLength(1);
  });
});
