/**
 * The chat screen with the real protocol client: the socket is a fake whose
 * "server" is the test, so what the screen shows follows from real frames
 * (history on subscribe, acks, pushed events), and what it sends is checked.
 */
import { act, fireEvent, render, screen } from '@testing-library/react-native';
import { ApiClient, type ClientFrame, Connection, type EventFrame, MemoryStore, Outbox, Session, type SocketLike } from '@jamuna/protocol';
import * as DocumentPicker from 'expo-document-picker';
import * as Sharing from 'expo-sharing';
import { ChatScreen } from './ChatScreen';

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
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  ofType<T extends ClientFrame['type']>(t: T): Extract<ClientFrame, { type: T }>[] {
    return this.sent.filter((f): f is Extract<ClientFrame, { type: T }> => f.type === t);
  }
}

const CONV = 'c0ffee00c0ffee00c0ffee00c0ffee00';
const ME = 'cust-1';
const AGENT = 'agent-0000-7f3a';
let version = 0;
function frame(event: EventFrame['event']): EventFrame {
  version += 1;
  return { type: 'event', conversation_id: CONV, version, position: version, occurred_at: new Date(Date.UTC(2026, 0, 1, 12, version)).toISOString(), event };
}

interface Setup {
  socket: () => FakeSocket;
  sockets: FakeSocket[];
  requests: { method: string; url: string; body: unknown }[];
  conn: Connection;
}

/** A test's own answer to a request (else the defaults below). */
type Route = (method: string, url: string) => Response | undefined;

async function setup(route: Route = () => undefined): Promise<Setup> {
  version = 0;
  const sockets: FakeSocket[] = [];
  const requests: Setup['requests'] = [];
  const fakeFetch = (async (url: string, init?: { method?: string; body?: string | Blob }) => {
    const method = init?.method ?? 'GET';
    requests.push({ method, url, body: typeof init?.body === 'string' ? JSON.parse(init.body) : init?.body });
    const answer = route(method, url);
    if (answer) return answer;
    // The detail names the agents; every action answers with a version.
    const body = method === 'GET' && url.endsWith(`/conversations/${CONV}`) ? { id: CONV, agents: [{ id: AGENT, name: 'Priya Raman' }], events: [] } : { version: 99 };
    return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
  }) as unknown as typeof fetch;
  const store = new MemoryStore();
  const api = new ApiClient('http://jamuna.test', new Session(store, 'jamuna.session'), fakeFetch);
  api.session.set({ access_token: 'at', refresh_token: 'rt', token_type: 'Bearer', expires_in: 900, user_id: ME, tenant: 'demo', role: 'customer' });
  const conn = new Connection({
    url: api.socketUrl,
    token: async () => 'at',
    outbox: new Outbox(store, 'jamuna.outbox'),
    post: (id, cmid, text) => api.postMessage(id, cmid, text),
    network: null,
    heartbeatMs: 0,
    socket: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
  });
  conn.start();
  render(<ChatScreen api={api} conn={conn} conversationId={CONV} me={ME} />);
  // GiftedChat lays itself out before it shows messages.
  fireEvent(screen.getByTestId('GC_WRAPPER'), 'layout', { nativeEvent: { layout: { x: 0, y: 0, width: 390, height: 800 } } });
  const socket = (): FakeSocket => {
    const s = sockets[sockets.length - 1];
    if (!s) throw new Error('no socket');
    return s;
  };
  await act(async () => {
    await Promise.resolve();
    socket().open();
    socket().push({ type: 'ready', user_id: ME, tenant: 'demo', role: 'customer' });
  });
  return { socket, sockets, requests, conn };
}

const history = (): EventFrame[] => [
  frame({ type: 'ConversationStarted', tenant: 'demo', conversation_id: CONV, customer: ME, channel: 'mobile' }),
  frame({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'How do I reset my password?', client_message_id: 'aaaa' }),
  frame({
    type: 'BotAnswered',
    in_reply_to: 2,
    text: 'Open Settings, then Security, and choose Reset password.',
    intent: 'password_reset',
    confidence: 0.82,
    sources: [{ article_id: 'kb-reset', title: 'Resetting your password', passage: '…', score: 0.82 }],
  }),
];

describe('ChatScreen', () => {
  it('renders GiftedChat with the history the socket replays, and a bot answer with its sources', async () => {
    const { socket, conn } = await setup();
    expect(socket().ofType('subscribe')).toEqual([{ type: 'subscribe', conversation_id: CONV, after_version: 0 }]);
    await act(async () => {
      for (const f of history()) socket().push(f);
    });
    expect(screen.getByTestId('GC_WRAPPER')).toBeTruthy();
    expect(screen.getByText('How do I reset my password?')).toBeTruthy();
    expect(screen.getByText('Open Settings, then Security, and choose Reset password.')).toBeTruthy();
    expect(screen.getByLabelText('Sources')).toBeTruthy();
    expect(screen.getByText(/Resetting your password/)).toBeTruthy();
    expect(screen.getByText('This helped')).toBeTruthy();
    expect(screen.getByText('Talk to a human')).toBeTruthy();
    // The history message came from the server: shown as sent.
    expect(screen.getByTestId('state-m-aaaa').props.accessibilityLabel).toBe('Sent');
    conn.stop();
  });

  it('sends a message: pending at once, sent on ack, shown once when its event arrives', async () => {
    const { socket, conn } = await setup();
    await act(async () => {
      for (const f of history()) socket().push(f);
    });
    fireEvent.changeText(screen.getByLabelText('Your message'), 'Is there a fee?');
    await act(async () => {
      fireEvent.press(screen.getByTestId('GC_SEND_TOUCHABLE'));
    });
    const sends = socket().ofType('send');
    expect(sends).toHaveLength(1);
    expect(sends[0]).toMatchObject({ conversation_id: CONV, text: 'Is there a fee?' });
    const cmid = sends[0]!.client_message_id;
    expect(screen.getByTestId(`state-m-${cmid}`).props.accessibilityLabel).toBe('Sending');

    await act(async () => {
      socket().push({ type: 'ack', conversation_id: CONV, client_message_id: cmid, version: 4, duplicate: false });
    });
    expect(screen.getByTestId(`state-m-${cmid}`).props.accessibilityLabel).toBe('Sent');
    await act(async () => {
      socket().push(frame({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'Is there a fee?', client_message_id: cmid }));
    });
    expect(screen.getAllByText('Is there a fee?')).toHaveLength(1);
    expect(screen.getByTestId(`state-m-${cmid}`).props.accessibilityLabel).toBe('Sent');
    expect(conn.pending(CONV)).toEqual([]);
    conn.stop();
  });

  it('a message typed while the socket is down stays pending and goes out once on reconnect', async () => {
    const { socket, sockets, conn } = await setup();
    await act(async () => {
      for (const f of history()) socket().push(f);
    });
    await act(async () => {
      socket().readyState = 3;
      socket().onclose?.({ code: 1006 });
    });
    expect(screen.getByTestId('connection')).toBeTruthy();
    fireEvent.changeText(screen.getByLabelText('Your message'), 'Typed in a tunnel');
    await act(async () => {
      fireEvent.press(screen.getByTestId('GC_SEND_TOUCHABLE'));
    });
    const [pending] = conn.pending(CONV);
    expect(pending?.text).toBe('Typed in a tunnel');
    expect(screen.getByTestId(`state-m-${pending!.client_message_id}`).props.accessibilityLabel).toBe('Sending');
    const before = sockets.length;
    // Back in the foreground: no waiting for the back-off.
    await act(async () => {
      conn.wake();
      await Promise.resolve();
    });
    expect(sockets.length).toBe(before + 1);
    await act(async () => {
      socket().open();
      socket().push({ type: 'ready', user_id: ME, tenant: 'demo', role: 'customer' });
    });
    expect(socket().ofType('subscribe')).toEqual([{ type: 'subscribe', conversation_id: CONV, after_version: 3 }]);
    expect(socket().ofType('send').map((f) => f.text)).toEqual(['Typed in a tunnel']);
    await act(async () => {
      socket().push({ type: 'ack', conversation_id: CONV, client_message_id: pending!.client_message_id, version: 4, duplicate: false });
    });
    expect(screen.getByTestId(`state-m-${pending!.client_message_id}`).props.accessibilityLabel).toBe('Sent');
    conn.stop();
  });

  it('quick replies: "This helped" rates the answer, "Talk to a human" asks for a person', async () => {
    const { socket, requests, conn } = await setup();
    await act(async () => {
      for (const f of history()) socket().push(f);
    });
    await act(async () => {
      fireEvent.press(screen.getByText('This helped'));
    });
    expect(requests).toContainEqual({ method: 'POST', url: `http://jamuna.test/api/v1/conversations/${CONV}/feedback`, body: { kind: 'answer', answer_version: 3, helpful: true } });
    await act(async () => {
      socket().push(frame({ type: 'FeedbackGiven', feedback: { kind: 'answer', answer_version: 3, helpful: true } }));
    });
    expect(screen.queryByText('This helped')).toBeNull();

    await act(async () => {
      socket().push(frame({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'And my e-mail?', client_message_id: 'bbbb' }));
      socket().push(frame({ type: 'BotAnswered', in_reply_to: 5, text: 'Change it under Profile.', intent: null, confidence: 0.4, sources: [] }));
    });
    await act(async () => {
      fireEvent.press(screen.getByText('Talk to a human'));
    });
    expect(requests).toContainEqual({ method: 'POST', url: `http://jamuna.test/api/v1/conversations/${CONV}/handoff`, body: {} });
    conn.stop();
  });

  it('shows an agent joining (name, avatar, typing, their message), then the CSAT prompt on resolve', async () => {
    const { socket, requests, conn } = await setup();
    await act(async () => {
      for (const f of history()) socket().push(f);
      socket().push(frame({ type: 'HandoffRequested', reason: 'customer_asked' }));
    });
    expect(screen.getByTestId('chat-subtitle').props.children).toBe('Waiting for a person from the team');
    expect(screen.queryByTestId('agent-avatar')).toBeNull();
    await act(async () => {
      socket().push(frame({ type: 'AgentAssigned', agent: AGENT }));
    });
    // The name comes from the conversation's detail (the events carry only the agent's id).
    expect(requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/conversations/${CONV}`))).toHaveLength(1);
    expect(screen.getByTestId('chat-title').props.children).toBe('Priya Raman');
    expect(screen.getByTestId('agent-avatar')).toHaveTextContent('PR');
    expect(screen.getByText('Priya Raman joined the conversation')).toBeTruthy();
    await act(async () => {
      socket().push({ type: 'typing', conversation_id: CONV, user_id: AGENT, role: 'agent', typing: true });
    });
    expect(screen.getByTestId('chat-subtitle').props.children).toBe('typing…');
    await act(async () => {
      socket().push(frame({ type: 'MessagePosted', author: { kind: 'agent', id: AGENT }, text: 'Hi, I can help with that.', client_message_id: null }));
    });
    expect(screen.getByText('Hi, I can help with that.')).toBeTruthy();
    expect(screen.getByTestId('chat-subtitle').props.children).toBe('from the support team');
    expect(screen.queryByTestId('csat')).toBeNull();

    await act(async () => {
      socket().push(frame({ type: 'ConversationResolved', by: AGENT }));
    });
    expect(screen.getByTestId('csat')).toBeTruthy();
    await act(async () => {
      fireEvent.press(screen.getByLabelText('5 of 5'));
    });
    expect(requests).toContainEqual({ method: 'POST', url: `http://jamuna.test/api/v1/conversations/${CONV}/feedback`, body: { kind: 'csat', score: 5 } });
    await act(async () => {
      socket().push(frame({ type: 'FeedbackGiven', feedback: { kind: 'csat', score: 5 } }));
    });
    expect(screen.queryByTestId('csat')).toBeNull();
    expect(screen.getByText('Thanks for your rating!')).toBeTruthy();
    conn.stop();
  });
});

describe('ChatScreen attachments', () => {
  const json = (status: number, body: unknown): Response => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const UPLOADS = `http://jamuna.test/api/v1/conversations/${CONV}/attachments`;
  const picked = { name: 'receipt.pdf', uri: 'file:///cache/DocumentPicker/receipt.pdf', mimeType: 'application/pdf', size: 8, lastModified: 0 };
  const realFetch = global.fetch;

  beforeEach(() => {
    jest.mocked(DocumentPicker.getDocumentAsync).mockResolvedValue({ canceled: false, assets: [picked] });
    // The picked file's copy in the cache, read as on the phone: fetch(uri).blob().
    global.fetch = jest.fn(async () => new Response(new Blob(['%PDF-1.7']))) as unknown as typeof fetch;
    jest.mocked(Sharing.shareAsync).mockClear();
  });
  afterEach(() => {
    global.fetch = realFetch;
  });

  it('the paperclip picks a file, uploads it and posts it with the typed text', async () => {
    const { socket, requests, conn } = await setup((method, url) => (method === 'POST' && url.startsWith(`${UPLOADS}?`) ? json(201, { id: 'att-1', name: 'receipt.pdf', content_type: 'application/pdf', size: 8 }) : undefined));
    await act(async () => {
      for (const f of history()) socket().push(f);
    });
    fireEvent.changeText(screen.getByLabelText('Your message'), 'Here is the receipt');
    await act(async () => {
      fireEvent.press(screen.getByLabelText('Attach a file'));
    });
    expect(DocumentPicker.getDocumentAsync).toHaveBeenCalledWith(expect.objectContaining({ type: expect.arrayContaining(['image/png', 'application/pdf', 'text/plain']), copyToCacheDirectory: true }));
    expect(global.fetch).toHaveBeenCalledWith(picked.uri);
    const upload = requests.find((r) => r.method === 'POST' && r.url.startsWith(UPLOADS));
    expect(upload?.url).toBe(`${UPLOADS}?name=receipt.pdf`);
    expect(await (upload?.body as Blob).text()).toBe('%PDF-1.7');
    const posts = requests.filter((r) => r.method === 'POST' && r.url.endsWith(`/conversations/${CONV}/messages`));
    expect(posts).toEqual([{ method: 'POST', url: expect.any(String), body: { client_message_id: expect.stringMatching(/^[0-9a-f]{32}$/), text: 'Here is the receipt', attachments: ['att-1'] } }]);
    // Sent with the file: the composer is empty again, and nothing went through the socket.
    expect(screen.getByLabelText('Your message').props.value).toBe('');
    expect(socket().ofType('send')).toEqual([]);
    expect(screen.queryByTestId('chat-error')).toBeNull();
    conn.stop();
  });

  it('a file alone goes without text; cancelling the picker sends nothing', async () => {
    const { requests, conn } = await setup((method, url) => (method === 'POST' && url.startsWith(`${UPLOADS}?`) ? json(201, { id: 'att-2', name: 'receipt.pdf', content_type: 'application/pdf', size: 8 }) : undefined));
    jest.mocked(DocumentPicker.getDocumentAsync).mockResolvedValueOnce({ canceled: true, assets: null });
    await act(async () => {
      fireEvent.press(screen.getByLabelText('Attach a file'));
    });
    expect(requests.filter((r) => r.method === 'POST')).toEqual([]);
    await act(async () => {
      fireEvent.press(screen.getByLabelText('Attach a file'));
    });
    const post = requests.find((r) => r.url.endsWith('/messages'));
    expect(post?.body).toEqual({ client_message_id: expect.any(String), attachments: ['att-2'] });
    conn.stop();
  });

  it.each([
    [415, 'unsupported_media_type', 'That kind of file cannot be sent: images, PDF and text files can.'],
    [413, 'payload_too_large', 'That file is too large.'],
    [429, 'rate_limited', 'Too many files for now. Try again later.'],
  ])('an upload refused with %i says why, posts nothing and keeps the text', async (status, code, said) => {
    const { requests, conn } = await setup((method, url) => (method === 'POST' && url.startsWith(`${UPLOADS}?`) ? json(status, { error: { code, message: code } }) : undefined));
    fireEvent.changeText(screen.getByLabelText('Your message'), 'See this');
    await act(async () => {
      fireEvent.press(screen.getByLabelText('Attach a file'));
    });
    expect(screen.getByTestId('chat-error')).toHaveTextContent(said);
    expect(requests.filter((r) => r.url.endsWith('/messages'))).toEqual([]);
    expect(screen.getByLabelText('Your message').props.value).toBe('See this');
    conn.stop();
  });

  it('a picture shows as a thumbnail from its authenticated download (a data URI on the phone)', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2]);
    const { socket, requests, conn } = await setup((method, url) => (method === 'GET' && url === `${UPLOADS}/img-1` ? new Response(new Blob([png])) : undefined));
    await act(async () => {
      socket().push(frame({ type: 'ConversationStarted', tenant: 'demo', conversation_id: CONV, customer: ME, channel: 'mobile' }));
      socket().push(
        frame({ type: 'MessagePosted', author: { kind: 'agent', id: AGENT }, text: 'Is this the screen?', client_message_id: null, attachments: [{ id: 'img-1', name: 'screen.png', content_type: 'image/png', size: 10 }] }),
      );
    });
    const thumb = await screen.findByTestId('thumb-img-1');
    expect(thumb.props.source).toEqual({ uri: `data:image/png;base64,${Buffer.from(png).toString('base64')}` });
    expect(screen.getByLabelText('Picture screen.png: open')).toBeTruthy();
    expect(requests.filter((r) => r.url === `${UPLOADS}/img-1`)).toHaveLength(1);
    conn.stop();
  });

  it('another file is a row with its name and size, which opens it from the cache in the share sheet', async () => {
    const { socket, conn } = await setup((method, url) => (method === 'GET' && url === `${UPLOADS}/pdf-1` ? new Response(new Blob(['%PDF-1.7'])) : undefined));
    await act(async () => {
      socket().push(frame({ type: 'ConversationStarted', tenant: 'demo', conversation_id: CONV, customer: ME, channel: 'mobile' }));
      socket().push(
        frame({ type: 'MessagePosted', author: { kind: 'agent', id: AGENT }, text: 'The form', client_message_id: null, attachments: [{ id: 'pdf-1', name: 'form.pdf', content_type: 'application/pdf', size: 14540 }] }),
      );
    });
    const row = screen.getByTestId('file-pdf-1');
    expect(row).toHaveTextContent(/form\.pdf/);
    expect(row).toHaveTextContent(/14\.2 KB/);
    expect(row.props.accessibilityLabel).toBe('File form.pdf, 14.2 KB: open');
    await act(async () => {
      fireEvent.press(row);
    });
    const uri = 'file:///cache/pdf-1-form.pdf';
    expect(Sharing.shareAsync).toHaveBeenCalledWith(uri, { mimeType: 'application/pdf', dialogTitle: 'form.pdf' });
    const { __written } = jest.requireMock<{ __written: Map<string, string> }>('expo-file-system');
    expect(__written.get(uri)).toBe(Buffer.from('%PDF-1.7').toString('base64'));
    conn.stop();
  });
});
