/** The dashboard's one API client and socket, shared by every page. */
import { ApiClient, Connection, Outbox, Session, browserStore } from '@jamuna/protocol';

const store = browserStore();
export const api = new ApiClient(location.origin, new Session(store, 'jamuna.admin.session'));

let connection: Connection | null = null;

/** The socket of the signed-in user, started on first use. */
export function socket(): Connection {
  if (!connection) {
    const user = api.session.current?.user_id ?? 'anon';
    connection = new Connection({
      url: api.socketUrl,
      token: (force) => api.token(force),
      outbox: new Outbox(store, `jamuna.admin.outbox.${user}`),
      post: (id, cmid, text) => api.postMessage(id, cmid, text),
    });
    connection.subscribeInbox();
    connection.start();
  }
  return connection;
}

export function closeSocket(): void {
  connection?.stop();
  connection = null;
}

export const storage = store;

/** One question the bot could not answer well, as `GET /api/v1/analytics/gaps` lists it. */
export interface GapExample {
  conversation_id: string;
  question: string;
  bot_answer: string | null;
  agent_reply: string | null;
  reason: string;
  at: string;
}

/** Similar questions the bot handed off or got a 👎 for. */
export interface GapGroup {
  id: string;
  count: number;
  reasons: Record<string, number>;
  question: string;
  last_at: string;
  examples: GapExample[];
}

/** Where the intent model stands (`GET /api/v1/kb/model`). */
export interface ModelStatus {
  examples: number;
  intents: string[];
  state: 'untrained' | 'training' | 'trained' | 'stale';
  requested_at: string | null;
  trained: Record<string, unknown> | null;
}

/** Teaching the bot: the gaps report, labelled examples, the model's training. */
export const kb = {
  gaps: (): Promise<{ groups: GapGroup[] }> => api.request('GET', '/api/v1/analytics/gaps'),
  /** Adds one labelled example (the intent must be known); the bot retrains in the background. */
  addExample: (text: string, intent: string): Promise<{ added: boolean; training: boolean }> =>
    api.request('POST', '/api/v1/kb/examples', { body: { text, intent } }),
  model: (): Promise<ModelStatus> => api.request('GET', '/api/v1/kb/model'),
  train: (): Promise<ModelStatus> => api.request('POST', '/api/v1/kb/train', { body: {} }),
};
