/**
 * The reply box's "Note" mode: a private note that only staff see, with an
 * `@` picker of the tenant's agents (↑ ↓ to move, Enter or Tab to pick, Esc
 * to close). The note is sent with the ids of the agents picked whose
 * `@name` is still in its text.
 */
import { useLayoutEffect, useRef, useState } from 'react';
import type { UserItem } from '@jamuna/protocol';
import { api } from '../client';
import { type MentionQuery, insertMention, matchAgents, mentionAt, mentionLabel, mentionedIds } from './mentioned';

export function NoteBox({ id, agents, onError }: { id: string; agents: UserItem[]; onError: (message: string) => void }) {
  const [draft, setDraft] = useState('');
  const [query, setQuery] = useState<MentionQuery | null>(null);
  const [active, setActive] = useState(0);
  const [picked, setPicked] = useState<{ id: string; label: string }[]>([]);
  const [busy, setBusy] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);
  // Where the caret goes once a picked mention is in the text: set as soon as React
  // has written the new text, before the next key is handled. (A caret set one
  // animation frame later pulled it back over whatever was typed in between.)
  const caret = useRef<number | null>(null);
  useLayoutEffect(() => {
    const el = area.current;
    if (el && caret.current !== null) {
      el.setSelectionRange(caret.current, caret.current);
      caret.current = null;
    }
  }, [draft]);
  const matches = query ? matchAgents(agents, query.query) : [];
  const open = matches.length > 0;

  const track = (text: string, caret: number): void => {
    const q = mentionAt(text, caret);
    setQuery(q);
    if (q?.query !== query?.query) setActive(0);
  };

  const pick = (agent: UserItem | undefined): void => {
    const el = area.current;
    if (!agent || !query || !el) return;
    const label = mentionLabel(agent);
    const done = insertMention(draft, query, el.selectionStart ?? draft.length, label);
    setDraft(done.text);
    setPicked((p) => (p.some((x) => x.id === agent.id) ? p : [...p, { id: agent.id, label }]));
    setQuery(null);
    caret.current = done.caret;
    el.focus();
  };

  const send = async (): Promise<void> => {
    const text = draft.trim();
    if (!text || busy) return;
    setBusy(true);
    try {
      await api.addNote(id, text, mentionedIds(text, picked));
      setDraft('');
      setPicked([]);
      setQuery(null);
    } catch (e) {
      onError(e instanceof Error ? e.message : 'The note was not saved.');
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="reply note-box"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      <label htmlFor="note-text" className="sr">
        Private note
      </label>
      <div className="note-input">
        <textarea
          id="note-text"
          ref={area}
          rows={3}
          value={draft}
          maxLength={4000}
          placeholder="Write a private note: only your team sees it. Type @ to mention a colleague."
          role="combobox"
          aria-expanded={open}
          aria-controls="mention-list"
          aria-autocomplete="list"
          aria-activedescendant={open ? `mention-${matches[active]?.id ?? ''}` : undefined}
          onChange={(e) => {
            setDraft(e.target.value);
            track(e.target.value, e.target.selectionStart ?? e.target.value.length);
          }}
          onKeyDown={(e) => {
            if (open) {
              if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
                e.preventDefault();
                const step = e.key === 'ArrowDown' ? 1 : matches.length - 1;
                setActive((active + step) % matches.length);
                return;
              }
              if (e.key === 'Enter' || e.key === 'Tab') {
                e.preventDefault();
                pick(matches[active]);
                return;
              }
              if (e.key === 'Escape') {
                e.preventDefault();
                setQuery(null);
                return;
              }
            }
            if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              void send();
            }
          }}
        />
        {open && (
          <ul id="mention-list" role="listbox" className="mention-list" aria-label="Mention a colleague">
            {matches.map((a, i) => (
              <li
                key={a.id}
                id={`mention-${a.id}`}
                role="option"
                aria-selected={i === active}
                className={i === active ? 'active' : ''}
                onMouseDown={(e) => {
                  e.preventDefault();
                  pick(a);
                }}
              >
                {mentionLabel(a)} {a.email && <span className="muted small">{a.email}</span>}
              </li>
            ))}
          </ul>
        )}
      </div>
      <div className="reply-bar">
        <span className="muted small">Only staff see notes: the customer never does, and the bot carries on as before.</span>
        <button type="submit" className="primary" disabled={!draft.trim() || busy}>
          Add note
        </button>
      </div>
    </form>
  );
}
