/**
 * A conversation as a reader sees it, folded from its events (the same
 * frames the socket pushes and the REST detail lists) plus the messages
 * still in the outbox. Pure functions, shared by the widget and the dashboard.
 */
import type { PendingMessage } from './connection';
import type { Attachment, Channel, ConversationEvent, DecisionWhy, EventFrame, HandoffReason, Source, Status } from './types';
import { textOf } from './types';

/** `note`: a private note, staff only (a customer is never sent one). */
export type MessageRole = 'customer' | 'agent' | 'bot' | 'system' | 'note';
export type DeliveryState = 'sending' | 'sent' | 'failed';

export interface ChatMessage {
  /** Stable React key: the client message id when there is one, else the version. */
  key: string;
  version: number | null;
  at: string;
  role: MessageRole;
  text: string;
  /** Files attached to a message. */
  attachments?: Attachment[];
  agentId?: string;
  clientMessageId?: string | null;
  state?: DeliveryState;
  failure?: string;
  /** Bot answers. */
  intent?: string | null;
  confidence?: number;
  sources?: Source[];
  inReplyTo?: number;
  /** Feedback the customer gave on this bot answer. */
  helpful?: boolean | null;
  /** Bot answers and bot handoffs: which score decided (staff only). */
  why?: DecisionWhy;
  /** Private notes: the colleagues named (user ids). */
  mentions?: string[];
  /** System notices: the event type behind them. */
  notice?: ConversationEvent['type'];
}

export interface ConversationView {
  id: string;
  customer: string | null;
  channel: Channel | null;
  status: Status;
  assignee: string | null;
  /** Agents who have joined (assigned or written), in order. */
  agents: string[];
  humanInvolved: boolean;
  handoffReason: HandoffReason | null;
  tags: string[];
  /** Staff only: the team the conversation is given to. */
  team: string | null;
  csat: number | null;
  version: number;
  messages: ChatMessage[];
}

/** Merges event frames into a sorted list without duplicates (by version). */
export function mergeEvents(existing: readonly EventFrame[], incoming: readonly EventFrame[]): EventFrame[] {
  if (incoming.length === 0) return existing as EventFrame[];
  const byVersion = new Map<number, EventFrame>();
  for (const e of existing) byVersion.set(e.version, e);
  let changed = false;
  for (const e of incoming) {
    if (!byVersion.has(e.version)) {
      byVersion.set(e.version, e);
      changed = true;
    }
  }
  if (!changed) return existing as EventFrame[];
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

export const HANDOFF_REASONS: Record<HandoffReason, string> = {
  low_confidence: 'the bot was not sure',
  customer_asked: 'the customer asked for a human',
  repeated_failure: 'the bot could not help',
  negative_feedback: 'an answer did not help',
  agent_took_over: 'an agent took over',
  out_of_scope: 'a question the bot hands to a person',
};

/**
 * Folds events (sorted by version) and pending messages into a view.
 * `pendingRole` says who wrote the pending messages (the customer in the widget, an agent in the dashboard).
 */
export function foldConversation(id: string, events: readonly EventFrame[], pending: readonly PendingMessage[] = [], pendingRole: MessageRole = 'customer', me?: string): ConversationView {
  const view: ConversationView = {
    id,
    customer: null,
    channel: null,
    status: 'open',
    assignee: null,
    agents: [],
    humanInvolved: false,
    handoffReason: null,
    tags: [],
    team: null,
    csat: null,
    version: 0,
    messages: [],
  };
  const seen = new Set<string>();
  const botByVersion = new Map<number, ChatMessage>();
  const joined = (agent: string): void => {
    if (!view.agents.includes(agent)) view.agents.push(agent);
  };
  for (const f of events) {
    const e = f.event;
    view.version = Math.max(view.version, f.version);
    const base = { version: f.version, at: f.occurred_at };
    switch (e.type) {
      case 'ConversationStarted':
        view.customer = e.customer;
        view.channel = e.channel;
        break;
      case 'MessagePosted': {
        const role = e.author.kind;
        const cmid = e.client_message_id ?? null;
        if (cmid) seen.add(cmid);
        const m: ChatMessage = { ...base, key: cmid ? `m-${cmid}` : `v-${f.version}`, role, text: textOf(e.text), clientMessageId: cmid, state: 'sent' };
        if (e.attachments && e.attachments.length > 0) m.attachments = e.attachments;
        if (e.author.kind === 'agent') {
          m.agentId = e.author.id;
          view.humanInvolved = true;
          joined(e.author.id);
        }
        if (role === 'customer' && view.status === 'resolved') view.status = 'open';
        view.messages.push(m);
        break;
      }
      case 'BotAnswered': {
        const m: ChatMessage = { ...base, key: `v-${f.version}`, role: 'bot', text: textOf(e.text), intent: e.intent, confidence: e.confidence, sources: e.sources ?? [], inReplyTo: e.in_reply_to, helpful: null, why: e.why };
        botByVersion.set(f.version, m);
        view.messages.push(m);
        break;
      }
      case 'HandoffRequested':
        view.status = 'pending';
        // A customer's view of a handoff has no reason.
        view.handoffReason = e.reason ?? null;
        view.humanInvolved = true;
        view.messages.push({
          ...base,
          key: `v-${f.version}`,
          role: 'system',
          notice: e.type,
          text: e.reason ? `Handed over to a human: ${HANDOFF_REASONS[e.reason] ?? e.reason}` : 'Handed over to a human',
          why: e.why,
        });
        break;
      case 'AgentAssigned':
        view.assignee = e.agent;
        view.status = 'open';
        view.humanInvolved = true;
        joined(e.agent);
        view.messages.push({ ...base, key: `v-${f.version}`, role: 'system', notice: e.type, agentId: e.agent, text: 'An agent joined the conversation' });
        break;
      case 'ConversationResolved':
        view.status = 'resolved';
        view.messages.push({ ...base, key: `v-${f.version}`, role: 'system', notice: e.type, text: 'Conversation resolved' });
        break;
      case 'ConversationReopened':
        view.status = view.assignee ? 'open' : view.humanInvolved ? 'pending' : 'open';
        view.messages.push({ ...base, key: `v-${f.version}`, role: 'system', notice: e.type, text: 'Conversation reopened' });
        break;
      case 'FeedbackGiven':
        if (e.feedback.kind === 'csat') {
          view.csat = e.feedback.score;
          view.messages.push({ ...base, key: `v-${f.version}`, role: 'system', notice: e.type, text: `Rated ${e.feedback.score}/5${e.feedback.comment ? `: “${textOf(e.feedback.comment)}”` : ''}` });
        } else {
          const bot = botByVersion.get(e.feedback.answer_version);
          if (bot) bot.helpful = e.feedback.helpful;
        }
        break;
      case 'NotificationSent':
        // Staff only (a customer never receives it).
        view.messages.push({ ...base, key: `v-${f.version}`, role: 'system', notice: e.type, text: e.kind === 'reply' ? 'The reply was e-mailed to the customer (away from the chat)' : 'The assignee was e-mailed: no answer yet' });
        break;
      case 'TeamAssigned':
        view.team = e.team;
        break;
      case 'AgentUnassigned':
        view.assignee = null;
        if (view.humanInvolved && view.status === 'open') view.status = 'pending';
        view.messages.push({ ...base, key: `v-${f.version}`, role: 'system', notice: e.type, text: 'Waiting for an agent again' });
        break;
      case 'TagsChanged': {
        const tags = new Set(view.tags);
        for (const t of e.added) tags.add(t);
        for (const t of e.removed) tags.delete(t);
        view.tags = [...tags];
        break;
      }
      case 'NoteAdded':
        // Staff talking among themselves: no reply, so `humanInvolved` stays as it is.
        view.messages.push({ ...base, key: `v-${f.version}`, role: 'note', agentId: e.author, text: textOf(e.text), mentions: e.mentions });
        break;
      default:
        break;
    }
  }
  for (const p of pending) {
    if (p.conversation_id !== id || seen.has(p.client_message_id)) continue;
    view.messages.push({
      key: `m-${p.client_message_id}`,
      version: null,
      at: new Date(p.created_at).toISOString(),
      role: pendingRole,
      agentId: pendingRole === 'agent' ? me : undefined,
      text: p.text,
      clientMessageId: p.client_message_id,
      state: p.failed ? 'failed' : p.acked ? 'sent' : 'sending',
      failure: p.failed,
    });
  }
  return view;
}
