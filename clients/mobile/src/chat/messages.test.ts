import { type EventFrame, foldConversation } from '@jamuna/protocol';
import { agentName, initials, toGiftedMessages } from './messages';

let v = 0;
const f = (event: EventFrame['event']): EventFrame => ({ type: 'event', conversation_id: 'c', version: ++v, position: v, occurred_at: new Date(v * 1000).toISOString(), event });

describe('toGiftedMessages', () => {
  beforeEach(() => {
    v = 0;
  });

  it('is newest first, with one user per author, and quick replies only on the latest bot answer', () => {
    const events = [
      f({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'q1', client_message_id: 'a' }),
      f({ type: 'BotAnswered', in_reply_to: 1, text: 'a1', intent: null, confidence: 0.9, sources: [] }),
      f({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'q2', client_message_id: 'b' }),
      f({ type: 'BotAnswered', in_reply_to: 3, text: 'a2', intent: null, confidence: 0.9, sources: [{ article_id: 'k', title: 'T', passage: 'p', score: 1 }] }),
    ];
    const msgs = toGiftedMessages(foldConversation('c', events), 'me');
    expect(msgs.map((m) => m.text)).toEqual(['a2', 'q2', 'a1', 'q1']);
    expect(msgs.map((m) => m.user._id)).toEqual(['bot', 'me', 'bot', 'me']);
    expect(msgs[0]!.quickReplies?.values.map((r) => r.title)).toEqual(['This helped', 'Talk to a human']);
    expect(msgs[2]!.quickReplies).toBeUndefined();
    expect(msgs[0]!.sources?.map((s) => s.title)).toEqual(['T']);
  });

  it('no quick replies once the answer was rated or a human is involved', () => {
    const answered = [
      f({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'q', client_message_id: 'a' }),
      f({ type: 'BotAnswered', in_reply_to: 1, text: 'a', intent: null, confidence: 0.9, sources: [] }),
    ];
    const rated = [...answered, f({ type: 'FeedbackGiven', feedback: { kind: 'answer', answer_version: 2, helpful: true } })];
    expect(toGiftedMessages(foldConversation('c', rated), 'me')[0]!.quickReplies).toBeUndefined();
    v = 2;
    const handedOff = [...answered, f({ type: 'HandoffRequested', reason: 'customer_asked' })];
    expect(toGiftedMessages(foldConversation('c', handedOff), 'me').every((m) => !m.quickReplies)).toBe(true);
  });

  it('pending messages from the outbox: pending, then sent once acknowledged', () => {
    const view = foldConversation('c', [], [
      { conversation_id: 'c', client_message_id: 'x', text: 'hi', created_at: 1 },
      { conversation_id: 'c', client_message_id: 'y', text: 'there', created_at: 2, acked: true },
    ]);
    const [there, hi] = toGiftedMessages(view, 'me');
    expect([hi!.pending, hi!.sent]).toEqual([true, false]);
    expect([there!.pending, there!.sent]).toEqual([false, true]);
  });

  it('agents: display name when known, a stable tag otherwise', () => {
    expect(agentName('u-1234-abcd', { 'u-1234-abcd': 'Priya Raman' })).toBe('Priya Raman');
    expect(agentName('u-1234-abcd', { 'u-1234-abcd': '' })).toBe('Agent ABCD');
    expect(initials('Priya Raman')).toBe('PR');
    expect(initials('Agent ABCD')).toBe('AA');
    const view = foldConversation('c', [f({ type: 'AgentAssigned', agent: 'u-1' }), f({ type: 'MessagePosted', author: { kind: 'agent', id: 'u-1' }, text: 'hello', client_message_id: null })]);
    const [msg, joined] = toGiftedMessages(view, 'me', { 'u-1': 'Sam' });
    expect(joined).toMatchObject({ system: true, text: 'Sam joined the conversation' });
    expect(msg!.user).toEqual({ _id: 'agent:u-1', name: 'Sam' });
  });

  it('carries the files an agent sent', () => {
    const file = { id: 'f1', name: 'form.pdf', content_type: 'application/pdf', size: 142 };
    const events = [
      f({ type: 'MessagePosted', author: { kind: 'agent', id: 'ag' }, text: 'Here you go', client_message_id: 'x', attachments: [file] }),
      f({ type: 'MessagePosted', author: { kind: 'customer' }, text: 'thanks', client_message_id: 'y' }),
    ];
    const msgs = toGiftedMessages(foldConversation('c', events), 'me');
    expect(msgs[1]!.attachments).toEqual([file]);
    expect(msgs[0]!.attachments).toBeUndefined();
  });
});
