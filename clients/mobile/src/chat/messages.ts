/**
 * A conversation as GiftedChat wants it: newest first, one `user` per author
 * (the customer is "me"), bot answers carrying their sources, quick replies
 * on the latest answer, and delivery state as GiftedChat's `pending`/`sent`.
 */
import type { Attachment, ChatMessage, ConversationView, Source } from '@jamuna/protocol';
import type { IMessage, QuickReplies, User } from 'react-native-gifted-chat';

export interface JamunaMessage extends IMessage {
  role: ChatMessage['role'];
  /** The event's version (bot answers: what feedback refers to); null while pending. */
  version: number | null;
  sources?: Source[];
  helpful?: boolean | null;
  failed?: string;
  /** Files attached to the message (shown by name and size). */
  attachments?: Attachment[];
}

export const BOT: User = { _id: 'bot', name: 'Assistant' };

/**
 * An agent's name: their display name from the conversation's detail, else
 * (no name set, or not loaded yet) "Agent" with a short tag of their id.
 */
export function agentName(agentId: string, names: Record<string, string> = {}): string {
  const name = names[agentId]?.trim();
  if (name) return name;
  return `Agent ${agentId.replace(/[^a-zA-Z0-9]/g, '').slice(-4).toUpperCase()}`;
}

export function agentUser(agentId: string, names: Record<string, string> = {}): User {
  return { _id: `agent:${agentId}`, name: agentName(agentId, names) };
}

/** One or two initials for an avatar. */
export function initials(name: string): string {
  const words = name.split(/\s+/).filter(Boolean);
  return ((words[0]?.[0] ?? '') + (words.length > 1 ? (words[words.length - 1]?.[0] ?? '') : '')).toUpperCase() || '?';
}

export const QUICK_HELPED = 'helped';
export const QUICK_HUMAN = 'human';

const quickReplies = (): QuickReplies => ({
  type: 'radio',
  values: [
    { title: 'This helped', value: QUICK_HELPED },
    { title: 'Talk to a human', value: QUICK_HUMAN },
  ],
});

function systemText(m: ChatMessage, names: Record<string, string>): string {
  if (m.notice === 'AgentAssigned' && m.agentId) return `${agentName(m.agentId, names)} joined the conversation`;
  if (m.notice === 'HandoffRequested') return 'We are getting a person from the team to help you.';
  return m.text;
}

export function toGiftedMessages(view: ConversationView, me: string, names: Record<string, string> = {}): JamunaMessage[] {
  const out: JamunaMessage[] = [];
  for (const m of view.messages) {
    if (m.notice === 'FeedbackGiven') continue;
    const base = { _id: m.key, createdAt: new Date(m.at), version: m.version, role: m.role, ...(m.attachments?.length ? { attachments: m.attachments } : {}) };
    switch (m.role) {
      case 'customer':
        out.push({
          ...base,
          text: m.text,
          user: { _id: me },
          pending: m.state === 'sending',
          sent: m.state === 'sent',
          failed: m.failure ?? (m.state === 'failed' ? 'not sent' : undefined),
        });
        break;
      case 'bot':
        out.push({ ...base, text: m.text, user: BOT, sources: m.sources ?? [], helpful: m.helpful ?? null });
        break;
      case 'agent':
        out.push({ ...base, text: m.text, user: agentUser(m.agentId ?? 'agent', names) });
        break;
      default:
        out.push({ ...base, text: systemText(m, names), user: { _id: 'system' }, system: true });
        break;
    }
  }
  // The quick replies belong to the latest bot answer, while it is the last word and nobody human is in yet.
  const last = out[out.length - 1];
  if (last && last.role === 'bot' && last.helpful == null && !view.humanInvolved && view.status !== 'resolved') last.quickReplies = quickReplies();
  return out.reverse();
}
