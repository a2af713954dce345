/**
 * The shapes of Jamuna's REST and WebSocket protocol, as the gateway sends them.
 * Field names follow the wire (snake_case) so nothing is renamed in between.
 */

export type Role = 'customer' | 'agent' | 'admin';
export type Channel = 'web' | 'mobile' | 'api';
export type Status = 'open' | 'pending' | 'resolved';
export type HandoffReason = 'low_confidence' | 'customer_asked' | 'repeated_failure' | 'negative_feedback' | 'agent_took_over' | 'out_of_scope';

/** Personal text: plain once opened by the server; erased (crypto-shredded) data reads as "[erased]". */
export type PersonalText = string | { erased: true } | { sealed: string };

/** A file attached to a message (its bytes: `ApiClient.downloadAttachment`). */
export interface Attachment {
  id: string;
  /** The uploader's file name (personal: `{erased: true}` once they are erased). */
  name: PersonalText;
  /** Found in the bytes: image/png, image/jpeg, image/gif, image/webp, application/pdf or text/plain. */
  content_type: string;
  size: number;
}

/** `POST /api/v1/conversations/{id}/attachments`: an upload, ready to be attached to a message. */
export interface UploadedAttachment {
  id: string;
  name: string;
  content_type: string;
  size: number;
}

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  user_id: string;
  tenant: string;
  role: Role;
}

export interface Me {
  id: string;
  tenant: string;
  role: Role;
  visitor: boolean;
  name: string | null;
  email: string | null;
}

/** An agent's `id` is their user id for staff; a customer gets an alias, stable within the conversation. */
export type Author = { kind: 'customer' } | { kind: 'agent'; id: string } | { kind: 'bot' };

export interface Source {
  article_id: string;
  title: string;
  passage: string;
  /** Staff only. */
  score?: number;
}

/** Which score decided a bot answer or a bot handoff (staff only). */
export type DecisionBasis = 'customer_asked' | 'small_talk' | 'retrieval' | 'intent_head' | 'out_of_scope_distance' | 'low_confidence' | 'clarify' | 'context' | 'out_of_scope_example';

/** The numbers behind a bot decision, each present only where it mattered (staff only). */
export interface DecisionScores {
  confidence?: number;
  threshold?: number;
  head_probability?: number;
  nearest_similarity?: number;
  mean_similarity?: number;
  mahalanobis?: number;
  confidence_if_head_certain?: number;
  passage_score?: number;
  passage_minimum?: number;
  phrase_similarity?: number;
}

/** Why the bot decided (staff only; absent on older events and on handoffs people asked for). */
export interface DecisionWhy {
  basis: DecisionBasis;
  scores?: DecisionScores;
}

export type Feedback =
  | { kind: 'csat'; score: number; comment?: PersonalText | null }
  | { kind: 'answer'; answer_version: number; helpful: boolean };

/**
 * A conversation event. A customer gets the customer view: no `TagsChanged`
 * and no `NoteAdded` (staff-only: a customer's versions have gaps), no intent, confidence, why or handoff
 * reason, and staff user ids replaced by aliases.
 */
export type ConversationEvent =
  | { type: 'ConversationStarted'; tenant: string; conversation_id: string; customer: string; channel: Channel }
  | { type: 'MessagePosted'; author: Author; text: PersonalText; client_message_id: string | null; attachments?: Attachment[] }
  | { type: 'BotAnswered'; in_reply_to: number; text: PersonalText; intent?: string | null; confidence?: number; sources: Source[]; why?: DecisionWhy }
  | { type: 'HandoffRequested'; reason?: HandoffReason; why?: DecisionWhy }
  | { type: 'AgentAssigned'; agent: string }
  | { type: 'ConversationResolved'; by: string | null }
  | { type: 'ConversationReopened'; by: string | null }
  | { type: 'FeedbackGiven'; feedback: Feedback }
  | { type: 'TagsChanged'; added: string[]; removed: string[] }
  /** Staff only: an e-mail notification about the event at `about_version` was recorded (and sent). */
  | { type: 'NotificationSent'; kind: 'unanswered' | 'reply'; recipient: string; about_version: number }
  /** A private note (staff only), naming colleagues by user id. */
  | { type: 'NoteAdded'; author: string; text: PersonalText; mentions: string[] }
  /** Staff only: the team the conversation is given to (null: none). */
  | { type: 'TeamAssigned'; team: string | null }
  /** Nobody has the conversation any more (`by`: staff only; null when the router took it from an absent agent). */
  | { type: 'AgentUnassigned'; by?: string | null };

/**
 * One stored event of a conversation, as pushed over the socket and listed in a conversation's detail.
 * Versions increase but may skip (events a customer may not see): resume from the last one seen.
 */
export interface EventFrame {
  type: 'event';
  conversation_id: string;
  version: number;
  /** The event's log position: staff only. */
  position?: number;
  occurred_at: string;
  event: ConversationEvent;
}

export interface AckFrame {
  type: 'ack';
  conversation_id: string;
  client_message_id: string;
  version: number;
  duplicate: boolean;
}

export interface TypingFrame {
  type: 'typing';
  conversation_id: string;
  user_id: string;
  role: Role;
  typing: boolean;
}

export interface ReadyFrame {
  type: 'ready';
  user_id: string;
  tenant: string;
  role: Role;
  /** When the socket's token expires (Unix seconds): re-authenticate before, or the socket closes with 4002. */
  expires_at?: number;
}

/** The answer to a re-authentication: the session's new expiry (Unix seconds). */
export interface AuthenticatedFrame {
  type: 'authenticated';
  expires_at: number;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
}

export type ServerFrame = EventFrame | AckFrame | TypingFrame | ReadyFrame | AuthenticatedFrame | ErrorFrame | { type: 'pong' } | { type: 'presence'; [k: string]: unknown };

export type ClientFrame =
  | { type: 'auth'; token: string }
  | { type: 'subscribe'; conversation_id: string; after_version: number }
  | { type: 'unsubscribe'; conversation_id: string }
  | { type: 'send'; conversation_id: string; client_message_id: string; text: string }
  | { type: 'typing'; conversation_id: string; typing: boolean }
  | { type: 'subscribe_inbox' }
  | { type: 'ping' };

export interface LastMessage {
  author: Author | string;
  text: PersonalText;
  at: string;
}

export interface ConversationSummary {
  tenant: string;
  id: string;
  customer: string;
  channel: Channel;
  status: Status;
  assignee: string | null;
  /** Staff only (as are `tags`, `first_response_at` and `position`). */
  handoff_reason?: HandoffReason | null;
  human_involved: boolean;
  tags?: string[];
  created_at: string;
  updated_at: string;
  first_response_at?: string | null;
  resolved_at: string | null;
  last_message: LastMessage | null;
  message_count: number;
  csat: number | null;
  version: number;
  position?: number;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export interface ConversationDetail {
  id: string;
  customer: string;
  channel: Channel;
  status: Status;
  assignee: string | null;
  human_involved: boolean;
  /** Staff only. */
  tags?: string[];
  csat: number | null;
  version: number;
  /** The staff who were assigned or wrote, with the display name a customer may see (`id` is an alias for a customer). */
  agents: AgentName[];
  events: EventFrame[];
}

export interface AgentName {
  id: string;
  name: string | null;
}

/** A private note that names the caller (`GET /api/v1/mentions`): a reference to the note. */
export interface Mention {
  conversation_id: string;
  /** The note's version in the conversation. */
  version: number;
  /** Who wrote the note. */
  author: string;
  at: string;
  position: number;
}

/** A member of staff as colleagues see them (`GET /api/v1/colleagues`): no e-mail address. */
export interface Colleague {
  id: string;
  name: string | null;
  role: Role;
}

export interface MentionPage {
  items: Mention[];
  /** Pass as `before` for the next page; null on the last. */
  next_before: number | null;
}

export interface MessageAck {
  conversation_id: string;
  client_message_id: string;
  version: number;
  position?: number;
  duplicate: boolean;
}

export interface Tenant {
  id: string;
  name: string;
  widget_key?: string;
  settings?: { allowed_origins: string[]; self_signup: boolean };
  /** The widget's pre-chat form (servers before issue 19 leave it out: off). */
  prechat?: PrechatMode;
}

export interface UserItem {
  id: string;
  role: Role;
  name: string | null;
  email: string | null;
  erased: boolean;
  registered_at: string | null;
  visitor?: boolean;
}

export interface Article {
  id: string;
  title: string;
  body: string;
  source: string | null;
  created_at?: string | null;
  updated_at: string | null;
  /** How many bot answers cited the article (absent on servers that do not count them). */
  citations?: number;
}

export interface ImportResult {
  added: number;
  updated: number;
  unchanged: number;
}

export interface AnalyticsDay {
  date: string;
  conversations_started: number;
  messages_customer: number;
  messages_bot: number;
  messages_agent: number;
  bot_answers: number;
  handoffs: number;
  resolved: number;
  resolved_without_human: number;
  containment_rate: number | null;
  first_response_p50_s: number | null;
  first_response_p90_s: number | null;
  resolution_p50_s: number | null;
  resolution_p90_s: number | null;
  csat_avg: number | null;
  csat_count: number;
}

export interface Analytics {
  from?: string;
  to?: string;
  days: AnalyticsDay[];
  /** The whole range as one (percentiles over the range, not averages of days). */
  total?: AnalyticsDay;
  intents: { intent: string; count: number }[];
}

export type InboxView = 'all' | 'unassigned' | 'mine' | 'pending' | 'resolved';

export interface ConversationQuery {
  view?: InboxView;
  status?: Status;
  tag?: string;
  /** Staff only: conversations given to this team. */
  team?: string;
  channel?: Channel;
  q?: string;
  cursor?: string;
  limit?: number;
}

/** Shown inline as a picture (the rest are offered as downloads). */
export function isImage(contentType: string): boolean {
  return contentType.startsWith('image/');
}

/** A file size for people: `812 B`, `14.2 KB`, `3.1 MB`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** The text of a personal field, "[erased]" when it was shredded. */
export function textOf(p: PersonalText | null | undefined): string {
  if (typeof p === 'string') return p;
  if (p && 'erased' in p) return '[erased]';
  if (p && 'sealed' in p) return '[sealed]';
  return '';
}

// --- who the customer is (issue 19, item 6) --------------------------------

/** The widget's pre-chat form: none, one that may be skipped, or one required before the first message. */
export type PrechatMode = 'off' | 'optional' | 'required';

/** What the host page passes to `Jamuna.identify(...)`: its signed-in customer, signed by its server. */
export interface Identity {
  /** The site's own id of the customer. */
  id: string;
  /** `hex(HMAC-SHA256(identity secret, id))`, computed on the site's server (never in the browser). */
  signature: string;
  name?: string;
  email?: string;
  attributes?: Record<string, string>;
}

/** `GET /api/v1/customers/{id}`: the contact panel (staff only). */
export interface ContactPanel {
  id: string;
  name: string | null;
  email: string | null;
  external_id: string | null;
  attributes: Record<string, string>;
  verified: boolean;
  identified: boolean;
  erased: boolean;
  conversations: ConversationSummary[];
}
