import { describe, expect, it } from 'vitest';
import { type CannedReply, customerNameOf, filterReplies, insertAt, pickerKey, renderCanned, slashQuery, unknownPlaceholders } from './canned';

const reply = (shortcut: string, text: string): CannedReply => ({ id: shortcut, shortcut, text });

describe('rendering a canned reply', () => {
  it('fills in every placeholder, spaces inside the braces or not', () => {
    const text = 'Hi {{customer.name}}, I am {{ agent.name }}. Ref {{conversation.id}}.';
    expect(renderCanned(text, { 'customer.name': 'Maya', 'agent.name': 'Ana', 'conversation.id': 'c42' })).toBe('Hi Maya, I am Ana. Ref c42.');
  });

  it('renders a missing or blank value as a fallback, never as braces', () => {
    const text = 'Hi {{customer.name}}, this is {{agent.name}} about {{conversation.id}}.';
    expect(renderCanned(text, {})).toBe('Hi there, this is our team about this conversation.');
    expect(renderCanned(text, { 'customer.name': '  ', 'agent.name': null })).toBe('Hi there, this is our team about this conversation.');
    expect(renderCanned('{{order.id}} and {{}}!', {})).toBe(' and !');
  });

  it('reads placeholders as the server does and leaves other braces alone', () => {
    expect(renderCanned('{{ not closed', {})).toBe('{{ not closed');
    expect(renderCanned('{{{customer.name}}}', { 'customer.name': 'Maya' })).toBe('{Maya}');
    expect(renderCanned('{"json": true}', {})).toBe('{"json": true}');
    expect(unknownPlaceholders('{{customer.nmae}} {{agent.name}} {{ order.id }} {{customer.nmae}}')).toEqual(['customer.nmae', 'order.id']);
    expect(unknownPlaceholders('{{customer.name}} {{ conversation.id }}')).toEqual([]);
  });

  it('takes the customer’s name from their user record when the dashboard knows one', () => {
    const users = new Map([
      ['u1', { id: 'u1', role: 'customer' as const, name: 'Maya', email: null, erased: false, registered_at: null }],
      ['u2', { id: 'u2', role: 'customer' as const, name: 'Gone', email: null, erased: true, registered_at: null }],
    ]);
    expect(customerNameOf('u1', users)).toBe('Maya');
    expect(customerNameOf('u2', users)).toBeNull();
    expect(customerNameOf('visitor', users)).toBeNull();
    expect(customerNameOf(null, users)).toBeNull();
  });
});

describe('the / picker', () => {
  it('opens only for a slash at the start of a word, with what follows it up to the caret', () => {
    expect(slashQuery('/ref', 4)).toEqual({ start: 0, query: 'ref' });
    expect(slashQuery('Thanks! /ref', 12)).toEqual({ start: 8, query: 'ref' });
    expect(slashQuery('line one\n/', 10)).toEqual({ start: 9, query: '' });
    expect(slashQuery('/refund later', 4)).toEqual({ start: 0, query: 'ref' });
    expect(slashQuery('and/or', 6)).toBeNull();
    expect(slashQuery('see https://x.example/a', 23)).toBeNull();
    expect(slashQuery('/ref done', 9)).toBeNull();
    expect(slashQuery('', 0)).toBeNull();
  });

  it('filters by shortcut first, then by text, case-insensitively', () => {
    const replies = [reply('thanks', 'Thank you for waiting.'), reply('refund', 'Your refund is on its way.'), reply('card-refund', 'Card refunds take 5 days.'), reply('hello', 'Hello!')];
    expect(filterReplies(replies, 'ref').map((r) => r.shortcut)).toEqual(['refund', 'card-refund']);
    expect(filterReplies(replies, 'WAIT').map((r) => r.shortcut)).toEqual(['thanks']);
    expect(filterReplies(replies, 'refunds').map((r) => r.shortcut)).toEqual(['card-refund']);
    expect(filterReplies(replies, '').map((r) => r.shortcut)).toEqual(['card-refund', 'hello', 'refund', 'thanks']);
    expect(filterReplies(replies, 'zzz')).toEqual([]);
    expect(filterReplies(replies, '', 2)).toHaveLength(2);
  });

  it('moves with the arrows (wrapping), chooses with Enter or Tab, closes with Escape', () => {
    expect(pickerKey('ArrowDown', 0, 3)).toEqual({ kind: 'move', index: 1 });
    expect(pickerKey('ArrowDown', 2, 3)).toEqual({ kind: 'move', index: 0 });
    expect(pickerKey('ArrowUp', 0, 3)).toEqual({ kind: 'move', index: 2 });
    expect(pickerKey('Enter', 1, 3)).toEqual({ kind: 'choose', index: 1 });
    expect(pickerKey('Tab', 5, 3)).toEqual({ kind: 'choose', index: 2 });
    expect(pickerKey('Escape', 1, 3)).toEqual({ kind: 'close' });
    expect(pickerKey('a', 1, 3)).toBeNull();
    expect(pickerKey('Enter', 0, 0)).toBeNull();
  });

  it('replaces the /word with the reply and puts the caret after it', () => {
    expect(insertAt('Thanks! /ref', 8, 12, 'Your refund is on its way.')).toEqual({ value: 'Thanks! Your refund is on its way.', caret: 34 });
    expect(insertAt('/re and more', 0, 3, 'Hi')).toEqual({ value: 'Hi and more', caret: 2 });
    expect(insertAt('/remore', 0, 3, 'Hi')).toEqual({ value: 'Hi more', caret: 3 });
  });
});
