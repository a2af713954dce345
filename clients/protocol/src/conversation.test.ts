import { describe, expect, it } from 'vitest';
import { foldConversation, mergeEvents } from './conversation';
import type { ConversationEvent, EventFrame } from './types';

let v = 0;
const at = (event: ConversationEvent, version = ++v): EventFrame => ({ type: 'event', conversation_id: 'c1', version, position: version, occurred_at: '2025-01-01T00:00:00Z', event });

describe('foldConversation', () => {
  it('follows a team and an unassignment: the conversation waits for a human again', () => {
    v = 0;
    const events = [
      at({ type: 'ConversationStarted', tenant: 't', conversation_id: 'c1', customer: 'u1', channel: 'web' }),
      at({ type: 'TeamAssigned', team: 'billing' }),
      at({ type: 'HandoffRequested', reason: 'customer_asked' }),
      at({ type: 'AgentAssigned', agent: 'agent-1' }),
      at({ type: 'AgentUnassigned', by: null }),
    ];
    const view = foldConversation('c1', events);
    expect(view.team).toBe('billing');
    expect(view.assignee).toBeNull();
    expect(view.status).toBe('pending');
    expect(view.messages.at(-1)?.notice).toBe('AgentUnassigned');
    expect(foldConversation('c1', [...events, at({ type: 'TeamAssigned', team: null })]).team).toBeNull();
  });

  it('shows who said what, bot sources and feedback, handoff and agents', () => {
    v = 0;
    const events = [
      at({ type: 'ConversationStarted', tenant: 't', conversation_id: 'c1', customer: 'u1', channel: 'web' }),
      at({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'When will my card arrive?', client_message_id: 'm1' }),
      at({ type: 'BotAnswered', in_reply_to: 2, text: 'Within 5 days.', intent: 'card_arrival', confidence: 0.9, sources: [{ article_id: 'card-delivery', title: 'When will my new card arrive?', passage: '…', score: 0.8 }] }),
      at({ type: 'FeedbackGiven', feedback: { kind: 'answer', answer_version: 3, helpful: false } }),
      at({ type: 'HandoffRequested', reason: 'customer_asked' }),
      at({ type: 'AgentAssigned', agent: 'agent-1' }),
      at({ type: 'MessagePosted', author: { kind: 'agent', id: 'agent-1' }, text: 'Hi, I am here.', client_message_id: 'm2' }),
      at({ type: 'MessagePosted', author: { kind: 'customer' }, text: { erased: true }, client_message_id: 'm3' }),
      at({ type: 'TagsChanged', added: ['cards', 'late'], removed: [] }),
      at({ type: 'TagsChanged', added: [], removed: ['late'] }),
      at({ type: 'ConversationResolved', by: 'agent-1' }),
      at({ type: 'FeedbackGiven', feedback: { kind: 'csat', score: 5, comment: 'great' } }),
    ];
    const view = foldConversation('c1', events, [{ conversation_id: 'c1', client_message_id: 'm9', text: 'thanks', created_at: 5 }]);
    expect(view.customer).toBe('u1');
    expect(view.status).toBe('resolved');
    expect(view.assignee).toBe('agent-1');
    expect(view.agents).toEqual(['agent-1']);
    expect(view.humanInvolved).toBe(true);
    expect(view.tags).toEqual(['cards']);
    expect(view.csat).toBe(5);
    const bot = view.messages.find((m) => m.role === 'bot');
    expect(bot?.sources?.[0]?.article_id).toBe('card-delivery');
    expect(bot?.helpful).toBe(false);
    expect(view.messages.filter((m) => m.role !== 'system').map((m) => [m.role, m.text, m.state])).toEqual([
      ['customer', 'When will my card arrive?', 'sent'],
      ['bot', 'Within 5 days.', undefined],
      ['agent', 'Hi, I am here.', 'sent'],
      ['customer', '[erased]', 'sent'],
      ['customer', 'thanks', 'sending'],
    ]);
  });

  it('folds the customer view: no reason, intent or tags, and versions with gaps', () => {
    v = 0;
    const events = [
      at({ type: 'ConversationStarted', tenant: 't', conversation_id: 'c1', customer: 'u1', channel: 'web' }, 1),
      at({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'When will my card arrive?', client_message_id: 'm1' }, 2),
      at({ type: 'BotAnswered', in_reply_to: 2, text: 'Within 5 days.', sources: [{ article_id: 'card-delivery', title: 'Cards', passage: '…' }] }, 3),
      // Version 4 was the staff's tags: a customer never gets it.
      at({ type: 'HandoffRequested' }, 5),
      at({ type: 'AgentAssigned', agent: 'agent-3f2a' }, 6),
    ];
    const view = foldConversation('c1', events);
    expect(view.version).toBe(6);
    expect(view.status).toBe('open');
    expect(view.handoffReason).toBeNull();
    expect(view.agents).toEqual(['agent-3f2a']);
    expect(view.tags).toEqual([]);
    const bot = view.messages.find((m) => m.role === 'bot');
    expect([bot?.text, bot?.intent, bot?.sources?.[0]?.article_id]).toEqual(['Within 5 days.', undefined, 'card-delivery']);
    expect(view.messages.find((m) => m.notice === 'HandoffRequested')?.text).toBe('Handed over to a human');
  });

  it('shows a private note as a note (staff), naming colleagues, and it is no human reply', () => {
    v = 0;
    const events = [
      at({ type: 'ConversationStarted', tenant: 't', conversation_id: 'c1', customer: 'u1', channel: 'web' }),
      at({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'Where is my refund?', client_message_id: 'm1' }),
      at({ type: 'NoteAdded', author: 'agent-1', text: 'VIP: refund today', mentions: ['agent-2'] }),
      at({ type: 'NoteAdded', author: 'agent-2', text: { erased: true }, mentions: [] }),
    ];
    const view = foldConversation('c1', events);
    expect(view.humanInvolved).toBe(false);
    expect(view.agents).toEqual([]);
    expect(view.status).toBe('open');
    expect(view.version).toBe(4);
    expect(view.messages.filter((m) => m.role === 'note').map((m) => [m.agentId, m.text, m.mentions])).toEqual([
      ['agent-1', 'VIP: refund today', ['agent-2']],
      ['agent-2', '[erased]', []],
    ]);
  });

  it('keeps why the bot answered and why it handed off, for the dashboard', () => {
    v = 0;
    const answered = { basis: 'intent_head' as const, scores: { confidence: 0.91, threshold: 0.56 } };
    const handed = { basis: 'out_of_scope_distance' as const, scores: { mahalanobis: 3.1 } };
    const events = [
      at({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'When will my card arrive?', client_message_id: 'm1' }),
      at({ type: 'BotAnswered', in_reply_to: 1, text: 'Within 5 days.', intent: 'card_arrival', confidence: 0.91, sources: [], why: answered }),
      at({ type: 'HandoffRequested', reason: 'low_confidence', why: handed }),
    ];
    const view = foldConversation('c1', events);
    expect(view.messages.find((m) => m.role === 'bot')?.why).toEqual(answered);
    expect(view.messages.find((m) => m.notice === 'HandoffRequested')?.why).toEqual(handed);
    expect(view.messages.find((m) => m.role === 'customer')?.why).toBeUndefined();
  });

  it('says why staff see a question the tenant sends to a person handed over', () => {
    v = 0;
    const why = { basis: 'out_of_scope_example' as const, scores: { confidence: 0.82, threshold: 0.56 } };
    const view = foldConversation('c1', [at({ type: 'HandoffRequested', reason: 'out_of_scope', why })]);
    expect(view.handoffReason).toBe('out_of_scope');
    expect(view.messages.find((m) => m.notice === 'HandoffRequested')?.text).toBe('Handed over to a human: a question the bot hands to a person');
  });

  it('does not show a pending message twice once its event arrived', () => {
    v = 0;
    const events = [at({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'hi', client_message_id: 'm1' })];
    const view = foldConversation('c1', events, [{ conversation_id: 'c1', client_message_id: 'm1', text: 'hi', created_at: 1, acked: true }]);
    expect(view.messages).toHaveLength(1);
  });
});

describe('a notification record (staff only)', () => {
  it('shows as a notice in the dashboard', () => {
    v = 0;
    const view = foldConversation('c1', [
      at({ type: 'ConversationStarted', tenant: 't', conversation_id: 'c1', customer: 'u1', channel: 'web' }),
      at({ type: 'MessagePosted', author: { kind: 'agent', id: 'agent-1' }, text: 'It ships today.', client_message_id: 'm1' }),
      at({ type: 'NotificationSent', kind: 'reply', recipient: 'u1', about_version: 2 }),
    ]);
    expect(view.messages.map((m) => [m.role, m.notice ?? null])).toEqual([
      ['agent', null],
      ['system', 'NotificationSent'],
    ]);
    expect(view.messages[1]?.text).toMatch(/e-mailed to the customer/);
  });
});

describe('mergeEvents', () => {
  it('keeps one event per version, sorted', () => {
    v = 0;
    const a = at({ type: 'HandoffRequested', reason: 'customer_asked' }, 2);
    const b = at({ type: 'AgentAssigned', agent: 'x' }, 1);
    const merged = mergeEvents([a], [b, a]);
    expect(merged.map((e) => e.version)).toEqual([1, 2]);
    expect(mergeEvents(merged, [a])).toBe(merged);
  });
});

describe('attachments', () => {
  it('travel with their message, which may have no text', () => {
    v = 0;
    const file = { id: 'f1', name: 'receipt.png', content_type: 'image/png', size: 2048 };
    const view = foldConversation('c1', [
      at({ type: 'ConversationStarted', tenant: 't', conversation_id: 'c1', customer: 'u1', channel: 'web' }),
      at({ type: 'MessagePosted', author: { kind: 'customer' }, text: '', client_message_id: 'm1', attachments: [file] }),
      at({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'no file', client_message_id: 'm2' }),
    ]);
    const [withFile, plain] = view.messages;
    expect(withFile?.attachments).toEqual([file]);
    expect(withFile?.text).toBe('');
    expect(plain?.attachments).toBeUndefined();
  });
});
