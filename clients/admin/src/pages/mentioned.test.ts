import { describe, expect, it } from 'vitest';
import type { EventFrame, UserItem } from '@jamuna/protocol';
import { byConversation, insertMention, isMentionOf, matchAgents, mentionAt, mentionLabel, mentionedIds } from './mentioned';

const frame = (event: EventFrame['event']): EventFrame => ({ type: 'event', conversation_id: 'c1', version: 3, occurred_at: '2026-01-01T00:00:00Z', event });
const user = (id: string, name: string | null, email: string | null, erased = false): UserItem => ({ id, role: 'agent', name, email, erased, registered_at: null });

describe('isMentionOf', () => {
  it('is true for a note naming the user, written by someone else', () => {
    const note = frame({ type: 'NoteAdded', author: 'ana', text: 'look', mentions: ['bo', 'cy'] });
    expect(isMentionOf(note, 'bo')).toBe(true);
    expect(isMentionOf(note, 'cy')).toBe(true);
    expect(isMentionOf(note, 'dee')).toBe(false);
    expect(isMentionOf(frame({ type: 'NoteAdded', author: 'bo', text: 'me', mentions: ['bo'] }), 'bo')).toBe(false);
    expect(isMentionOf(frame({ type: 'MessagePosted', author: { kind: 'agent', id: 'ana' }, text: '@bo', client_message_id: null }), 'bo')).toBe(false);
  });
});

describe('the @ picker', () => {
  const agents = [user('ana', 'Ana Lopez', 'ana@x.io'), user('bo', null, 'bo.berg@x.io'), user('cy', 'Cy', null, true), user('dan', 'Dan', 'd@x.io')];

  it('finds the word being typed after @, only at a word start', () => {
    expect(mentionAt('hi @an', 6)).toEqual({ start: 3, query: 'an' });
    expect(mentionAt('@', 1)).toEqual({ start: 0, query: '' });
    expect(mentionAt('hi @an and more', 6)).toEqual({ start: 3, query: 'an' });
    expect(mentionAt('mail me@an', 10)).toBeNull();
    expect(mentionAt('hi @ana done', 12)).toBeNull();
  });

  it('matches agents by the start of a name or address word, not erased ones', () => {
    expect(matchAgents(agents, '').map((a) => a.id)).toEqual(['ana', 'bo', 'dan']);
    expect(matchAgents(agents, 'lo').map((a) => a.id)).toEqual(['ana']);
    expect(matchAgents(agents, 'BERG').map((a) => a.id)).toEqual(['bo']);
    expect(matchAgents(agents, 'cy')).toEqual([]);
    expect(matchAgents(agents, '', 2)).toHaveLength(2);
  });

  it('inserts the label and names the picked agents still in the text', () => {
    expect(mentionLabel(agents[0]!)).toBe('Ana Lopez');
    expect(mentionLabel(agents[1]!)).toBe('bo.berg');
    const q = mentionAt('ask @an', 7)!;
    const done = insertMention('ask @an', q, 7, 'Ana Lopez');
    expect(done).toEqual({ text: 'ask @Ana Lopez ', caret: 15 });
    const picked = [
      { id: 'ana', label: 'Ana Lopez' },
      { id: 'bo', label: 'bo.berg' },
      { id: 'dan', label: 'Dan' },
    ];
    expect(mentionedIds('@Ana Lopez and @bo.berg, @Ana Lopez again', picked)).toEqual(['ana', 'bo']);
    expect(mentionedIds('@Danny is not @Dan? yes', picked)).toEqual(['dan']);
    expect(mentionedIds('mail@Dan', picked)).toEqual([]);
  });
});

describe('byConversation', () => {
  it('groups mentions by conversation, newest first', () => {
    const m = (conversation_id: string, position: number) => ({ conversation_id, version: position, author: 'ana', at: '2026-01-01T00:00:00Z', position });
    const grouped = byConversation([m('c2', 9), m('c1', 7), m('c2', 5)]);
    expect(grouped.map((g) => [g.conversation_id, g.latest.position, g.count])).toEqual([
      ['c2', 9, 2],
      ['c1', 7, 1],
    ]);
  });
});
