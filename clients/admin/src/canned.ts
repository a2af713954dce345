/**
 * Canned replies in the dashboard, as pure functions: filling in a reply's
 * placeholders, finding the `/word` being typed in the reply box, filtering
 * the picker, and what a key does to it. The components (the picker in the
 * reply box, the settings section) only wire these to the page.
 */
import type { UserItem } from '@jamuna/protocol';
import { api } from './client';

/** One saved reply, as `GET /api/v1/canned-replies` lists it. */
export interface CannedReply {
  id: string;
  shortcut: string;
  /** With its placeholders unfilled. */
  text: string;
}

export const canned = {
  list: (): Promise<{ items: CannedReply[] }> => api.request('GET', '/api/v1/canned-replies'),
  add: (shortcut: string, text: string): Promise<CannedReply> => api.request('POST', '/api/v1/canned-replies', { body: { shortcut, text } }),
  change: (id: string, shortcut: string, text: string): Promise<CannedReply> =>
    api.request('PUT', `/api/v1/canned-replies/${encodeURIComponent(id)}`, { body: { shortcut, text } }),
  remove: (id: string): Promise<void> => api.request('DELETE', `/api/v1/canned-replies/${encodeURIComponent(id)}`),
};

/** The placeholders the server accepts (`jamuna_domain::canned_reply::PLACEHOLDERS`). */
export const PLACEHOLDERS = ['customer.name', 'agent.name', 'conversation.id'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/** What a placeholder becomes when its value is not known: words that read well in a sentence. */
export const FALLBACKS: Record<Placeholder, string> = {
  'customer.name': 'there',
  'agent.name': 'our team',
  'conversation.id': 'this conversation',
};

/** The values of one conversation's placeholders; a missing one renders as its {@link FALLBACKS}. */
export type PlaceholderValues = Partial<Record<Placeholder, string | null | undefined>>;

/** `{{` then no brace up to `}}`: the server reads placeholders the same way (`canned_reply::placeholders`). */
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

const isPlaceholder = (name: string): name is Placeholder => (PLACEHOLDERS as readonly string[]).includes(name);

/** A reply's text with its placeholders filled in. Never leaves braces: an unknown name (which the server refuses
 * to save) renders as nothing. */
export function renderCanned(text: string, values: PlaceholderValues): string {
  return text.replace(PLACEHOLDER, (_, raw: string) => {
    const name = raw.trim();
    if (!isPlaceholder(name)) return '';
    const v = values[name]?.trim();
    return v ? v : FALLBACKS[name];
  });
}

/** The placeholders in `text` that the server would refuse, in order, each once. */
export function unknownPlaceholders(text: string): string[] {
  const found = [...text.matchAll(PLACEHOLDER)].map((m) => (m[1] ?? '').trim()).filter((n) => !isPlaceholder(n));
  return [...new Set(found)];
}

/** The `{{customer.name}}` of a conversation: the one place the customer's name comes from. Today it is the name
 * on the customer's user record, if the dashboard knows one (anonymous visitors have none). Identified customers
 * (issue 19, item 6) are wired in here. */
export function customerNameOf(customerId: string | null | undefined, users: Map<string, UserItem>): string | null {
  if (!customerId) return null;
  const u = users.get(customerId);
  return u && !u.erased && u.name ? u.name : null;
}

/** The `/word` typed up to the caret: where its slash is and what follows it. A slash counts only at the start
 * of a word (after a space, a line break or nothing), so `and/or` and URLs do not open the picker. */
export function slashQuery(value: string, caret: number): { start: number; query: string } | null {
  let start = caret;
  while (start > 0 && !/\s/.test(value.charAt(start - 1))) start--;
  if (value[start] !== '/') return null;
  return { start, query: value.slice(start + 1, caret) };
}

/** The most replies the picker shows. */
export const PICKER_SIZE = 8;

/** The replies that match `query`, best first: shortcuts that start with it, then shortcuts that contain it, then
 * texts that contain it (case-insensitive). An empty query lists every reply by shortcut. */
export function filterReplies(replies: CannedReply[], query: string, limit = PICKER_SIZE): CannedReply[] {
  const q = query.toLowerCase();
  const byShortcut = [...replies].sort((a, b) => a.shortcut.localeCompare(b.shortcut));
  const rank = (r: CannedReply): number => {
    if (r.shortcut.startsWith(q)) return 0;
    if (r.shortcut.includes(q)) return 1;
    if (r.text.toLowerCase().includes(q)) return 2;
    return 3;
  };
  return byShortcut
    .map((r) => ({ r, rank: rank(r) }))
    .filter((x) => x.rank < 3)
    .sort((a, b) => a.rank - b.rank)
    .slice(0, limit)
    .map((x) => x.r);
}

/** `value` with the `/word` from `start` to `caret` replaced by `text`, and where the caret goes after it. */
export function insertAt(value: string, start: number, caret: number, text: string): { value: string; caret: number } {
  const after = value.slice(caret);
  const spaced = after.length === 0 || /^\s/.test(after) ? text : `${text} `;
  return { value: value.slice(0, start) + spaced + after, caret: start + spaced.length };
}

/** What a key does while the picker shows `count` replies with `index` highlighted. */
export type PickerAction = { kind: 'move'; index: number } | { kind: 'choose'; index: number } | { kind: 'close' } | null;

export function pickerKey(key: string, index: number, count: number): PickerAction {
  if (key === 'Escape') return { kind: 'close' };
  if (count === 0) return null;
  switch (key) {
    case 'ArrowDown':
      return { kind: 'move', index: (index + 1) % count };
    case 'ArrowUp':
      return { kind: 'move', index: (index - 1 + count) % count };
    case 'Enter':
    case 'Tab':
      return { kind: 'choose', index: Math.min(Math.max(index, 0), count - 1) };
    default:
      return null;
  }
}
