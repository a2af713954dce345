import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { useRef, useState } from 'react';

const canned = vi.hoisted(() => ({ list: vi.fn() }));
vi.mock('./canned', async (importOriginal) => ({ ...(await importOriginal<object>()), canned }));

import { useCannedPicker } from './CannedPicker';

/** A reply box like the conversation's: the picker's keys first, then Enter sends. */
function Box({ onSend }: { onSend: (text: string) => void }) {
  const [draft, setDraft] = useState('');
  const ref = useRef<HTMLTextAreaElement>(null);
  const picker = useCannedPicker(ref, setDraft, { 'customer.name': 'Maya', 'agent.name': null });
  return (
    <form>
      {picker.element}
      <textarea
        aria-label="Reply"
        ref={ref}
        {...picker.inputProps}
        value={draft}
        onChange={(e) => {
          setDraft(e.target.value);
          picker.onChange(e.target.value, e.target.selectionStart);
        }}
        onKeyDown={(e) => {
          if (picker.onKeyDown(e)) return;
          if (e.key === 'Enter') {
            e.preventDefault();
            onSend(draft);
          }
        }}
      />
    </form>
  );
}

const REPLIES = [
  { id: 'r1', shortcut: 'refund', text: 'Hi {{customer.name}}, your refund is on its way.' },
  { id: 'r2', shortcut: 'refund-card', text: 'Card refunds take 5 days. — {{agent.name}}' },
  { id: 'r3', shortcut: 'hello', text: 'Hello!' },
];

const type = (box: HTMLTextAreaElement, value: string): void => {
  fireEvent.change(box, { target: { value, selectionStart: value.length, selectionEnd: value.length } });
};

describe('the / picker in the reply box', () => {
  afterEach(() => {
    cleanup();
    canned.list.mockReset();
  });

  it('opens on a slash, filters, moves with the arrows and inserts the rendered reply on Enter without sending', async () => {
    canned.list.mockResolvedValue({ items: REPLIES });
    const onSend = vi.fn();
    render(<Box onSend={onSend} />);
    const box = screen.getByLabelText<HTMLTextAreaElement>('Reply');
    await waitFor(() => expect(canned.list).toHaveBeenCalled());
    type(box, 'Thanks! /ref');
    const options = await screen.findAllByRole('option');
    expect(options.map((o) => o.textContent)).toEqual([
      '/refund Hi Maya, your refund is on its way.',
      '/refund-card Card refunds take 5 days. — our team',
    ]);
    expect(options[0]?.getAttribute('aria-selected')).toBe('true');
    expect(box.getAttribute('aria-expanded')).toBe('true');
    fireEvent.keyDown(box, { key: 'ArrowDown' });
    expect(screen.getAllByRole('option')[1]?.getAttribute('aria-selected')).toBe('true');
    expect(box.getAttribute('aria-activedescendant')).toBe('canned-picker-r2');
    fireEvent.keyDown(box, { key: 'Enter' });
    expect(box.value).toBe('Thanks! Card refunds take 5 days. — our team');
    expect(screen.queryByRole('listbox')).toBeNull();
    expect(onSend).not.toHaveBeenCalled();
    // With the picker closed, Enter sends.
    fireEvent.keyDown(box, { key: 'Enter' });
    expect(onSend).toHaveBeenCalledWith('Thanks! Card refunds take 5 days. — our team');
  });

  it('closes on Escape, when nothing matches and when the box loses focus, and inserts a reply clicked with the mouse', async () => {
    canned.list.mockResolvedValue({ items: REPLIES });
    render(<Box onSend={vi.fn()} />);
    const box = screen.getByLabelText<HTMLTextAreaElement>('Reply');
    await waitFor(() => expect(canned.list).toHaveBeenCalled());
    type(box, '/');
    expect(await screen.findAllByRole('option')).toHaveLength(3);
    fireEvent.keyDown(box, { key: 'Escape' });
    expect(screen.queryByRole('listbox')).toBeNull();
    type(box, '/zzz');
    expect(screen.queryByRole('listbox')).toBeNull();
    type(box, '/hel');
    fireEvent.blur(box);
    expect(screen.queryByRole('listbox')).toBeNull();
    fireEvent.click(box);
    fireEvent.mouseDown(await screen.findByRole('option'));
    expect(box.value).toBe('Hello!');
  });

  it('chooses with Tab, and stays closed for a slash inside a word', async () => {
    canned.list.mockResolvedValue({ items: REPLIES });
    render(<Box onSend={vi.fn()} />);
    const box = screen.getByLabelText<HTMLTextAreaElement>('Reply');
    await waitFor(() => expect(canned.list).toHaveBeenCalled());
    type(box, 'and/ref');
    expect(screen.queryByRole('listbox')).toBeNull();
    type(box, '/refund');
    await screen.findAllByRole('option');
    fireEvent.keyDown(box, { key: 'Tab' });
    expect(box.value).toBe('Hi Maya, your refund is on its way.');
  });
});
