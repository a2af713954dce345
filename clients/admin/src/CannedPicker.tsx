/**
 * The `/` picker of the reply box: typing `/` at the start of a word opens a
 * list of the tenant's canned replies filtered by what follows; ↑ ↓ move,
 * Enter or Tab (or a click) insert the reply with its placeholders filled in,
 * Esc closes. {@link useCannedPicker} holds the state; the reply box passes it
 * its draft, its textarea and the placeholder values.
 */
import { useEffect, useMemo, useState, type KeyboardEvent, type RefObject } from 'react';
import { type CannedReply, type PlaceholderValues, canned, filterReplies, insertAt, pickerKey, renderCanned, slashQuery } from './canned';

export interface CannedPicker {
  /** Call with the textarea's new value: opens, filters or closes the picker. */
  onChange(value: string, caret: number): void;
  /** Call first in the textarea's key handler: true when the picker used the key (do not send). */
  onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>): boolean;
  /** The picker, or null when it is closed. Render it beside the textarea. */
  element: React.ReactElement | null;
  /** ARIA for the textarea, and what closes or follows the picker when the caret moves without typing (a click
   * elsewhere in the text, leaving the box). */
  inputProps: {
    'aria-autocomplete': 'list';
    'aria-expanded': boolean;
    'aria-controls': string;
    'aria-activedescendant'?: string;
    onBlur: () => void;
    onClick: (e: React.MouseEvent<HTMLTextAreaElement>) => void;
  };
}

const LIST_ID = 'canned-picker';

export function useCannedPicker(
  textarea: RefObject<HTMLTextAreaElement | null>,
  setDraft: (value: string) => void,
  values: PlaceholderValues,
): CannedPicker {
  const [replies, setReplies] = useState<CannedReply[]>([]);
  const [slash, setSlash] = useState<{ start: number; query: string; caret: number } | null>(null);
  const [index, setIndex] = useState(0);

  useEffect(() => {
    let alive = true;
    canned
      .list()
      .then((l) => alive && setReplies(l.items))
      .catch(() => undefined); // no replies: the picker stays closed
    return () => {
      alive = false;
    };
  }, []);

  const matches = useMemo(() => (slash ? filterReplies(replies, slash.query) : []), [replies, slash]);
  const open = slash !== null && matches.length > 0;

  const choose = (r: CannedReply): void => {
    const el = textarea.current;
    if (!slash || !el) return;
    const next = insertAt(el.value, slash.start, slash.caret, renderCanned(r.text, values));
    setDraft(next.value);
    setSlash(null);
    requestAnimationFrame(() => {
      el.focus();
      el.setSelectionRange(next.caret, next.caret);
    });
  };

  const onChange = (value: string, caret: number): void => {
    const s = slashQuery(value, caret);
    setSlash(s ? { ...s, caret } : null);
    setIndex(0);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>): boolean => {
    if (!open || e.nativeEvent.isComposing) return false;
    const action = pickerKey(e.key, index, matches.length);
    if (!action) return false;
    e.preventDefault();
    if (action.kind === 'move') setIndex(action.index);
    else if (action.kind === 'close') setSlash(null);
    else {
      const r = matches[action.index];
      if (r) choose(r);
    }
    return true;
  };

  const element = open ? (
    <ul className="canned-picker" id={LIST_ID} role="listbox" aria-label="Canned replies">
      {matches.map((r, i) => (
        <li
          key={r.id}
          id={`${LIST_ID}-${r.id}`}
          role="option"
          aria-selected={i === index}
          className={i === index ? 'active' : undefined}
          onMouseEnter={() => setIndex(i)}
          // mousedown, not click: the textarea keeps its focus and caret
          onMouseDown={(e) => {
            e.preventDefault();
            choose(r);
          }}
        >
          <strong>/{r.shortcut}</strong> <span className="muted">{renderCanned(r.text, values)}</span>
        </li>
      ))}
    </ul>
  ) : null;

  const active = open ? matches[Math.min(index, matches.length - 1)] : undefined;
  return {
    onChange,
    onKeyDown,
    element,
    inputProps: {
      'aria-autocomplete': 'list',
      'aria-expanded': open,
      'aria-controls': LIST_ID,
      ...(active ? { 'aria-activedescendant': `${LIST_ID}-${active.id}` } : {}),
      onBlur: () => setSlash(null),
      onClick: (e) => onChange(e.currentTarget.value, e.currentTarget.selectionStart),
    },
  };
}
