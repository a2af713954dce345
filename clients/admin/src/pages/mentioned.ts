/**
 * Private notes and @mentions in the dashboard, as pure functions: which
 * pushed event mentions whom ({@link isMentionOf}, for the Mentions view and
 * for desktop notifications), and the `@` picker of the note box (the word
 * being typed, the agents it matches, the text after picking one, the ids a
 * note names).
 */
import type { EventFrame, Mention, UserItem } from '@jamuna/protocol';

/**
 * Is this pushed event a private note that mentions `user` (written by someone else)?
 * The predicate desktop notifications hook on (issue 19, item 5).
 */
export function isMentionOf(frame: EventFrame, user: string): boolean {
  const e = frame.event;
  return e.type === 'NoteAdded' && e.author !== user && e.mentions.includes(user);
}

/** The `@word` being typed just before the caret: where its `@` is, and the word so far. */
export interface MentionQuery {
  start: number;
  query: string;
}

export function mentionAt(text: string, caret: number): MentionQuery | null {
  const m = /(^|\s)@([^\s@]{0,32})$/.exec(text.slice(0, caret));
  if (!m) return null;
  const query = m[2] ?? '';
  return { start: caret - query.length - 1, query };
}

/** How an agent is written after `@`: their name, else their e-mail address's local part, else their id. */
export function mentionLabel(agent: Pick<UserItem, 'id' | 'name' | 'email'>): string {
  return (agent.name?.trim() || agent.email?.split('@')[0] || agent.id).replace(/\s+/g, ' ');
}

/** The agents whose name or e-mail address starts a word with `query` (case-insensitive), at most `max`. */
export function matchAgents(agents: readonly UserItem[], query: string, max = 8): UserItem[] {
  const q = query.toLowerCase();
  const words = (a: UserItem): string[] => [mentionLabel(a), a.email ?? ''].flatMap((s) => s.toLowerCase().split(/[\s.@_-]+/)).concat(mentionLabel(a).toLowerCase());
  return agents.filter((a) => !a.erased && (q === '' || words(a).some((w) => w.startsWith(q)))).slice(0, max);
}

/** `text` with the `@word` at `q` replaced by `@label ` (and where the caret goes). */
export function insertMention(text: string, q: MentionQuery, caret: number, label: string): { text: string; caret: number } {
  const inserted = `@${label} `;
  return { text: text.slice(0, q.start) + inserted + text.slice(caret), caret: q.start + inserted.length };
}

/** The ids of the `picked` agents whose `@label` is still in `text`, each once. */
export function mentionedIds(text: string, picked: readonly { id: string; label: string }[]): string[] {
  const ids: string[] = [];
  for (const p of picked) {
    const at = `@${p.label}`;
    let i = text.indexOf(at);
    let found = false;
    while (i >= 0 && !found) {
      const before = i === 0 ? ' ' : text[i - 1];
      const after = text[i + at.length] ?? ' ';
      found = /\s/.test(before ?? ' ') && !/[\p{L}\p{N}_-]/u.test(after);
      i = text.indexOf(at, i + 1);
    }
    if (found && !ids.includes(p.id)) ids.push(p.id);
  }
  return ids;
}

/** One conversation of the Mentions view: its latest mention of me, and how many there are. */
export interface MentionedConversation {
  conversation_id: string;
  latest: Mention;
  count: number;
}

/** Mentions (newest first) grouped by conversation, newest conversation first. */
export function byConversation(mentions: readonly Mention[]): MentionedConversation[] {
  const out: MentionedConversation[] = [];
  for (const m of mentions) {
    const c = out.find((o) => o.conversation_id === m.conversation_id);
    if (c) c.count += 1;
    else out.push({ conversation_id: m.conversation_id, latest: m, count: 1 });
  }
  return out;
}
