/** The dashboard's one API client and socket, shared by every page. */
import { ApiClient, AttachmentUrls, Connection, Outbox, Session, browserStore, type PrechatMode } from '@jamuna/protocol';

const store = browserStore();
export const api = new ApiClient(location.origin, new Session(store, 'jamuna.admin.session'));
/** Attachments' object URLs, fetched with the signed-in user's token. */
export const files = new AttachmentUrls(api);

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
  state: 'untrained' | 'training' | 'trained' | 'stale' | 'failed';
  requested_at: string | null;
  /** Why the last training failed (`state: 'failed'`); an older server leaves it out. */
  failure?: { reason: string; failed_at: string } | null;
  /** The last model trained, with its held-out trade-off (`operating_points`). */
  trained: { threshold: number; retention?: number; operating_points?: OperatingPoint[] } | null;
}

/** One labelled example: a customer's question and the intent it expresses. */
export interface LabelledExample {
  text: string;
  intent: string;
}

/** What `GET /api/v1/kb/examples` filters by and which page it answers. */
export interface ExamplesQuery {
  /** Only this intent (its exact name). */
  intent?: string;
  /** Only texts containing this, ignoring case (at most 200 characters). */
  q?: string;
  /** 0 to 100,000 (default 0). */
  offset?: number;
  /** 1 to 200 (default 50). */
  limit?: number;
}

/** A page of labelled examples, by intent then text. */
export interface ExamplePage {
  items: LabelledExample[];
  /** How many examples match the filters. */
  total: number;
  /** Every intent with examples and how many it has, whatever the filters. */
  intents: Record<string, number>;
}

/** Teaching the bot: the gaps report, labelled examples, the model's training. */
export const kb = {
  gaps: (): Promise<{ groups: GapGroup[] }> => api.request('GET', '/api/v1/analytics/gaps'),
  /** Adds one labelled example (the intent must be known); the bot retrains in the background. */
  addExample: (text: string, intent: string): Promise<{ added: boolean; training: boolean }> =>
    api.request('POST', '/api/v1/kb/examples', { body: { text, intent } }),
  /** A page of the labelled examples (admins only). */
  examples: (query: ExamplesQuery = {}): Promise<ExamplePage> => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
    const qs = params.toString();
    return api.request('GET', `/api/v1/kb/examples${qs ? `?${qs}` : ''}`);
  },
  /** Removes one labelled example (the exact pair); the bot retrains in the background. */
  removeExample: (text: string, intent: string): Promise<void> => api.request('DELETE', '/api/v1/kb/examples', { body: { text, intent } }),
  model: (): Promise<ModelStatus> => kbModel(),
  /** Asks for a model of the current examples (nothing new if one is asked for already). */
  train: (): Promise<ModelStatus> => api.request('POST', '/api/v1/kb/train', { body: {} }),
};
/** The tenant's settings as `PUT /api/v1/tenant/settings` takes them (every field: a left-out
 * `handoff_retention` would go back to its default). */
export interface TenantSettings {
  allowed_origins: string[];
  self_signup: boolean;
  /** The share of answerable questions the bot answers (0.80 to 0.995). */
  handoff_retention: number;
  /** The widget's pre-chat form (name, e-mail). */
  prechat: PrechatMode;
}

/** The retention a tenant has until it chooses another. */
export const DEFAULT_RETENTION = 0.95;

/** The settings of `GET /api/v1/tenant`, with the defaults of fields an older server leaves out. */
export function settingsOf(t: { settings?: Partial<TenantSettings> }): TenantSettings {
  return {
    allowed_origins: t.settings?.allowed_origins ?? [],
    self_signup: t.settings?.self_signup ?? true,
    handoff_retention: t.settings?.handoff_retention ?? DEFAULT_RETENTION,
    prechat: t.settings?.prechat ?? 'off',
  };
}

export function saveSettings(settings: TenantSettings): Promise<unknown> {
  return api.request('PUT', '/api/v1/tenant/settings', { body: settings });
}

/** One threshold of the trained intent model and what it gave on held-out examples (shares 0–1). */
export interface OperatingPoint {
  threshold: number;
  in_scope_retention: number;
  in_scope_accuracy: number;
  oos_recall: number;
}

/** `GET /api/v1/kb/model`. */
export function kbModel(): Promise<ModelStatus> {
  return api.request('GET', '/api/v1/kb/model');
}

/** The point the bot uses for `retention`: the highest threshold that keeps at least that share
 * (the server's rule, `threshold_for_retention`); `null` when no point does. */
export function pointFor(points: OperatingPoint[], retention: number): OperatingPoint | null {
  let best: OperatingPoint | null = null;
  for (const p of points) {
    if (p.in_scope_retention >= retention - 1e-6 && (!best || p.threshold > best.threshold)) best = p;
  }
  return best;
}
