import { describe, expect, it } from 'vitest';
import type { ConversationEvent, EventFrame } from '@jamuna/protocol';
import { Assignees, type NotifyContext, type Rule, alertFor, isMine, parseSettings, settingsKey } from './notify';

const frame = (event: ConversationEvent, conversation_id = 'c1'): EventFrame => ({ type: 'event', conversation_id, version: 3, occurred_at: '2026-01-01T00:00:00Z', event });
const customerSays = (text: string): ConversationEvent => ({ type: 'MessagePosted', author: { kind: 'customer' }, text, client_message_id: 'm1' });

function ctx(over: Partial<NotifyContext> = {}): NotifyContext {
  return { me: 'ann', assigneeOf: () => undefined, onScreen: () => false, ...over };
}

describe('desktop notification rules', () => {
  it('a handoff raises one, unless a colleague took the conversation over', () => {
    expect(alertFor(frame({ type: 'HandoffRequested', reason: 'low_confidence' }), ctx())).toMatchObject({ title: 'Waiting for a human', conversationId: 'c1' });
    expect(alertFor(frame({ type: 'HandoffRequested', reason: 'agent_took_over' }), ctx())).toBeNull();
  });

  it('a customer message raises one only in a conversation assigned to me', () => {
    const mine = ctx({ assigneeOf: (id) => (id === 'c1' ? 'ann' : 'bob') });
    expect(alertFor(frame(customerSays('Where is my card?')), mine)).toMatchObject({ title: 'New message from a customer', body: 'Where is my card?' });
    expect(alertFor(frame(customerSays('Hello'), 'c2'), mine)).toBeNull();
    expect(alertFor(frame(customerSays('Hello')), ctx())).toBeNull();
  });

  it('never for my own actions, nor for the conversation on screen in a focused tab', () => {
    const mine = ctx({ assigneeOf: () => 'ann' });
    const ownReply = frame({ type: 'MessagePosted', author: { kind: 'agent', id: 'ann' }, text: 'Hi', client_message_id: 'a1' });
    expect(isMine(ownReply, 'ann')).toBe(true);
    expect(alertFor(ownReply, mine, [() => ({ title: 't', body: 'b', conversationId: 'c1', tag: 't' })])).toBeNull();
    expect(alertFor(frame(customerSays('Hi')), { ...mine, onScreen: (id) => id === 'c1' })).toBeNull();
    expect(alertFor(frame({ type: 'HandoffRequested', reason: 'customer_asked' }), ctx({ onScreen: () => true }))).toBeNull();
  });

  it('a note mentioning me raises one; a note mentioning others or written by me does not', () => {
    const note = (author: string, mentions: string[]): ConversationEvent => ({ type: 'NoteAdded', author, text: 'Can you check the refund?', mentions });
    expect(alertFor(frame(note('bob', ['ann'])), ctx())).toMatchObject({ title: 'You were mentioned in a note', body: 'Can you check the refund?', conversationId: 'c1' });
    expect(alertFor(frame(note('bob', ['cid'])), ctx())).toBeNull();
    expect(alertFor(frame(note('ann', ['ann'])), ctx())).toBeNull();
  });

  it('an unassigned conversation is nobody\'s: its messages stop raising mine', () => {
    const a = new Assignees();
    a.seed([{ id: 'c1', assignee: 'ann' }]);
    a.follow(frame({ type: 'AgentUnassigned', by: 'bob' }));
    expect(alertFor(frame(customerSays('Still there?')), ctx({ assigneeOf: (id) => a.of(id) }))).toBeNull();
  });

  it('one more rule is one more entry: the first that answers wins', () => {
    const mentioned: Rule = (f) => (f.event.type === 'TagsChanged' ? { title: 'Mentioned', body: '', conversationId: f.conversation_id, tag: 'm' } : null);
    expect(alertFor(frame({ type: 'TagsChanged', added: ['x'], removed: [] }), ctx())).toBeNull();
    expect(alertFor(frame({ type: 'TagsChanged', added: ['x'], removed: [] }), ctx(), [mentioned])).toMatchObject({ title: 'Mentioned' });
  });

  it('assignees follow the list and live assignments', () => {
    const a = new Assignees();
    a.seed([{ id: 'c1', assignee: null }]);
    expect([a.of('c1'), a.of('c2')]).toEqual([null, undefined]);
    a.follow(frame({ type: 'AgentAssigned', agent: 'ann' }));
    expect(a.of('c1')).toBe('ann');
  });

  it('settings are per user and fall back to on', () => {
    expect(settingsKey('ann')).not.toBe(settingsKey('bob'));
    expect(parseSettings(null)).toEqual({ desktop: true, sound: true });
    expect(parseSettings('{"desktop":false,"sound":true}')).toEqual({ desktop: false, sound: true });
    expect(parseSettings('not json')).toEqual({ desktop: true, sound: true });
  });
});
