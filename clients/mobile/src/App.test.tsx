/**
 * The whole app with its device storage (an AsyncStorage look-alike), HTTP
 * and sockets faked at the edges: a visitor signs in, starts a conversation,
 * writes while the socket is down (pending, kept in storage), and the app
 * sends it once when it returns to the foreground; a restart replays what
 * was left unsent. A host app's signed-in customer is identified first (and
 * a refused signature leaves an anonymous visitor, saying so).
 */
import { AppState, type AppStateStatus } from 'react-native';
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react-native';
import type { AsyncKeyValueStore, ClientFrame, Identity, SocketLike } from '@jamuna/protocol';
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

const CUSTOMER = 'customer-42';
const identity: Identity = { id: 'shop-user-7', signature: 'ab'.repeat(32), name: 'Ada Lovelace', email: 'ada@example.com', attributes: { plan: 'gold' } };
const tokens = (user: string, n = 1) => ({ access_token: `at${n}`, refresh_token: `rt${n}`, token_type: 'Bearer', expires_in: 900, user_id: user, tenant: 'demo', role: 'customer' });
const past = { id: 'f00d', status: 'resolved', updated_at: new Date().toISOString(), last_message: { text: 'Thanks, the parcel arrived', author: { kind: 'customer' } } };

interface Sent {
  method: string;
  path: string;
  body: unknown;
  auth: string | undefined;
}

function fakeServer(opts: { identify?: 'ok' | 'refuse' } = {}) {
  const calls: string[] = [];
  const requests: Sent[] = [];
  let refreshes = 0;
  const fetchImpl = (async (url: string, init?: { method?: string; body?: string; headers?: Record<string, string> }) => {
    const method = init?.method ?? 'GET';
    const path = url.replace(config.serverUrl, '');
    calls.push(`${method} ${path}`);
    requests.push({ method, path, body: init?.body ? JSON.parse(init.body) : undefined, auth: init?.headers?.Authorization });
    const json = (body: unknown, status = 200): Response => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
    if (method === 'POST' && path === '/api/v1/auth/visitor') return json(tokens(VISITOR));
    if (method === 'POST' && path === '/api/v1/auth/refresh') return json(tokens(VISITOR, 10 + ++refreshes));
    if (method === 'POST' && path === '/api/v1/auth/identify')
      return opts.identify === 'ok' ? json(tokens(CUSTOMER, 2)) : json({ error: { code: 'invalid_signature', message: 'the signature does not match' } }, 401);
    if (method === 'GET' && path.startsWith('/api/v1/conversations?')) return json({ items: opts.identify === 'ok' ? [past] : [] });
    if (method === 'POST' && path === '/api/v1/conversations') return json({ id: CONV });
    return json({});
  }) as unknown as typeof fetch;
  const sockets: FakeSocket[] = [];
  const socket = (): FakeSocket => {
    const s = new FakeSocket();
    sockets.push(s);
    return s;
  };
  return { calls, requests, fetchImpl, sockets, socket, last: () => sockets[sockets.length - 1]! };
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
    // No identity given: nobody is identified, and nothing says otherwise.
    expect(server.calls).not.toContain('POST /api/v1/auth/identify');
    expect(screen.queryByTestId('identity-notice')).toBeNull();
    expect(storage.data.has('jamuna.identity')).toBe(false);
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

  describe("a host app's signed-in customer", () => {
    it('is identified with the widget key and the identity before anything opens, and finds their past conversations', async () => {
      const storage = new DeviceStorage();
      const server = fakeServer({ identify: 'ok' });
      render(<App config={config} identity={identity} platform={{ storage, fetch: server.fetchImpl, socket: server.socket }} />);

      await screen.findByText('Your conversations');
      expect(screen.queryByText('Continue as a visitor')).toBeNull();
      const identify = server.requests.filter((r) => r.path === '/api/v1/auth/identify');
      expect(identify).toEqual([{ method: 'POST', path: '/api/v1/auth/identify', body: { widget_key: 'wk_test', ...identity }, auth: undefined }]);
      expect(server.calls).not.toContain('POST /api/v1/auth/visitor');
      // Identified before the list (and the socket) asked for anything.
      expect(server.calls.indexOf('POST /api/v1/auth/identify')).toBe(0);
      expect(await screen.findByText('Thanks, the parcel arrived')).toBeTruthy();
      expect(server.requests.find((r) => r.path.startsWith('/api/v1/conversations?'))?.auth).toBe('Bearer at2');
      expect(storage.data.get('jamuna.session')).toContain(CUSTOMER);
      expect(storage.data.get('jamuna.identity')).toBe('shop-user-7');
      expect(screen.queryByTestId('identity-notice')).toBeNull();
      await waitFor(() => expect(server.sockets).toHaveLength(1));
    });

    it('an anonymous visitor on this device is identified with their token (the server makes them the customer), also from config.identity', async () => {
      const storage = new DeviceStorage();
      const first = fakeServer();
      const view = render(<App config={config} platform={{ storage, fetch: first.fetchImpl, socket: first.socket }} />);
      fireEvent.press(await screen.findByText('Continue as a visitor'));
      await screen.findByText('No conversations yet.');
      view.unmount();

      const server = fakeServer({ identify: 'ok' });
      render(<App config={{ ...config, identity }} platform={{ storage, fetch: server.fetchImpl, socket: server.socket }} />);
      await screen.findByText('Thanks, the parcel arrived');
      expect(server.requests.find((r) => r.path === '/api/v1/auth/identify')?.auth).toBe('Bearer at1');
      expect(storage.data.get('jamuna.session')).toContain(CUSTOMER);
    });

    it('refused (401 invalid_signature): says so and carries on as a new anonymous visitor', async () => {
      const storage = new DeviceStorage();
      const server = fakeServer({ identify: 'refuse' });
      render(<App config={config} identity={identity} platform={{ storage, fetch: server.fetchImpl, socket: server.socket }} />);

      await screen.findByText('No conversations yet.');
      expect(screen.getByTestId('identity-notice').props.children).toMatch(/could not confirm who you are.*anonymous visitor/);
      expect(server.calls.filter((c) => c.includes('/auth/'))).toEqual(['POST /api/v1/auth/identify', 'POST /api/v1/auth/visitor']);
      expect(storage.data.get('jamuna.session')).toContain(VISITOR);
      expect(storage.data.has('jamuna.identity')).toBe(false);
      await waitFor(() => expect(server.sockets).toHaveLength(1));

      fireEvent.press(screen.getByLabelText('Dismiss'));
      expect(screen.queryByTestId('identity-notice')).toBeNull();
    });

    it('refused on a device that had them identified: that session ends (nothing proves it is still theirs)', async () => {
      const storage = new DeviceStorage();
      const ok = fakeServer({ identify: 'ok' });
      const view = render(<App config={config} identity={identity} platform={{ storage, fetch: ok.fetchImpl, socket: ok.socket }} />);
      await screen.findByText('Thanks, the parcel arrived');
      view.unmount();

      const server = fakeServer({ identify: 'refuse' });
      render(<App config={config} identity={identity} platform={{ storage, fetch: server.fetchImpl, socket: server.socket }} />);
      await screen.findByTestId('identity-notice');
      await screen.findByText('No conversations yet.');
      expect(server.calls).toContain('POST /api/v1/auth/logout');
      expect(server.calls).toContain('POST /api/v1/auth/visitor');
      await waitFor(() => expect(storage.data.get('jamuna.session')).toContain(VISITOR));
      expect(storage.data.has('jamuna.identity')).toBe(false);
      expect(screen.queryByText('Thanks, the parcel arrived')).toBeNull();
    });

    it('without an identity the next time (the host app signed them out): their session ends, the sign-in screen shows', async () => {
      const storage = new DeviceStorage();
      const ok = fakeServer({ identify: 'ok' });
      const view = render(<App config={config} identity={identity} platform={{ storage, fetch: ok.fetchImpl, socket: ok.socket }} />);
      await screen.findByText('Your conversations');
      view.unmount();

      const server = fakeServer();
      render(<App config={config} platform={{ storage, fetch: server.fetchImpl, socket: server.socket }} />);
      await screen.findByText('Continue as a visitor');
      expect(server.calls).toEqual(['POST /api/v1/auth/logout']);
      expect(storage.data.has('jamuna.session')).toBe(false);
      expect(storage.data.has('jamuna.identity')).toBe(false);
    });
  });
});
