/**
 * Desktop notifications of the dashboard: which live events deserve one.
 *
 * Pure: a list of rules, each turning an event frame into an alert or
 * nothing, and the two checks that come before any rule — never for the
 * user's own actions, never for a conversation already on screen in a
 * focused tab. A new kind of notification (e.g. "mentioned me") is one more
 * entry in the list handed to {@link alertFor}.
 *
 * The settings are the user's own, kept in this browser's localStorage
 * under a key with their user id ({@link settingsKey}).
 */
import { type EventFrame, textOf } from '@jamuna/protocol';
import { isMentionOf } from './pages/mentioned';

/** What a rule may ask about the dashboard's state. */
export interface NotifyContext {
  /** The signed-in user's id. */
  me: string;
  /** Who the conversation is assigned to, as far as the dashboard knows (`undefined`: unknown). */
  assigneeOf(conversationId: string): string | null | undefined;
  /** The conversation is open and the tab has the focus. */
  onScreen(conversationId: string): boolean;
}

/** A notification to show. */
export interface Alert {
  title: string;
  body: string;
  conversationId: string;
  /** Notifications with the same tag replace each other (one per conversation and reason). */
  tag: string;
}

export type Rule = (frame: EventFrame, ctx: NotifyContext) => Alert | null;

const snippet = (s: string, max = 140): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** A conversation now waits for a human (not when a colleague took it over from the bot). */
export const handoff: Rule = (f) => {
  const e = f.event;
  if (e.type !== 'HandoffRequested' || e.reason === 'agent_took_over') return null;
  return { title: 'Waiting for a human', body: 'A conversation was handed over to the team.', conversationId: f.conversation_id, tag: `handoff-${f.conversation_id}` };
};

/** A customer wrote in a conversation assigned to me. */
export const messageInMine: Rule = (f, ctx) => {
  const e = f.event;
  if (e.type !== 'MessagePosted' || e.author.kind !== 'customer' || ctx.assigneeOf(f.conversation_id) !== ctx.me) return null;
  return { title: 'New message from a customer', body: snippet(textOf(e.text)), conversationId: f.conversation_id, tag: `message-${f.conversation_id}` };
};

/** A colleague mentioned me in a private note. */
export const mentionOfMe: Rule = (f, ctx) => {
  const e = f.event;
  if (e.type !== 'NoteAdded' || !isMentionOf(f, ctx.me)) return null;
  return { title: 'You were mentioned in a note', body: snippet(textOf(e.text)), conversationId: f.conversation_id, tag: `mention-${f.conversation_id}-${f.version}` };
};

/** The rules in use, in order: the first that answers gives the alert. */
export const RULES: Rule[] = [handoff, mentionOfMe, messageInMine];

/** Whether the signed-in user caused the event. */
export function isMine(f: EventFrame, me: string): boolean {
  const e = f.event;
  switch (e.type) {
    case 'MessagePosted':
      return e.author.kind === 'agent' && e.author.id === me;
    case 'ConversationResolved':
    case 'ConversationReopened':
      return e.by === me;
    default:
      return false;
  }
}

/** The alert for a live event, if any: the first rule that answers. */
export function alertFor(f: EventFrame, ctx: NotifyContext, rules: Rule[] = RULES): Alert | null {
  if (isMine(f, ctx.me) || ctx.onScreen(f.conversation_id)) return null;
  for (const rule of rules) {
    const a = rule(f, ctx);
    if (a) return a;
  }
  return null;
}

/** Who each conversation is assigned to, from a list and from live `AgentAssigned` events. */
export class Assignees {
  private readonly map = new Map<string, string | null>();

  seed(items: { id: string; assignee: string | null }[]): void {
    for (const i of items) this.map.set(i.id, i.assignee);
  }

  /** Follows an event; call it before {@link alertFor} for the same frame. */
  follow(f: EventFrame): void {
    if (f.event.type === 'AgentAssigned') this.map.set(f.conversation_id, f.event.agent);
    if (f.event.type === 'AgentUnassigned') this.map.set(f.conversation_id, null);
  }

  of(id: string): string | null | undefined {
    return this.map.get(id);
  }
}

/** The user's choices. */
export interface NotifySettings {
  /** Desktop notifications (with the browser's permission). */
  desktop: boolean;
  sound: boolean;
}

export const DEFAULT_SETTINGS: NotifySettings = { desktop: true, sound: true };

export function settingsKey(userId: string): string {
  return `jamuna.admin.notify.${userId}`;
}

/** Reads the settings stored as JSON; anything unreadable is the default. */
export function parseSettings(raw: string | null): NotifySettings {
  if (!raw) return DEFAULT_SETTINGS;
  try {
    const v = JSON.parse(raw) as Partial<NotifySettings>;
    return { desktop: typeof v.desktop === 'boolean' ? v.desktop : true, sound: typeof v.sound === 'boolean' ? v.sound : true };
  } catch {
    return DEFAULT_SETTINGS;
  }
}
