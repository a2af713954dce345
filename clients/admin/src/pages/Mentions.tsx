/**
 * The inbox's "Mentions" view: the conversations where a colleague named me
 * in a private note, newest first, live (a pushed note that mentions me is
 * added at once: {@link isMentionOf}, also the predicate for desktop
 * notifications).
 */
import { useCallback, useEffect, useState } from 'react';
import type { Mention } from '@jamuna/protocol';
import { api, socket } from '../client';
import { href } from '../router';
import { ago, shortId } from '../format';
import { usePeople } from '../people';
import { byConversation, isMentionOf } from './mentioned';
import { ErrorLine } from '../status';

export { isMentionOf };

export function MentionsList({ current }: { current?: string }) {
  const people = usePeople();
  const me = people.me.id;
  const [items, setItems] = useState<Mention[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    const ctl = new AbortController();
    api
      .mentions({ limit: 50 }, ctl.signal)
      .then((page) => {
        setItems(page.items);
        setNext(page.next_before);
        setError(null);
      })
      .catch((e: unknown) => {
        if (!(e instanceof DOMException)) setError(e instanceof Error ? e.message : 'Could not load your mentions.');
      })
      .finally(() => setLoading(false));
    return ctl;
  }, []);
  useEffect(() => {
    const ctl = load();
    return () => ctl.abort();
  }, [load]);

  // Live: a pushed note that names me is a new mention (the frame says all the list shows).
  useEffect(
    () =>
      socket().on('event', (f) => {
        if (!isMentionOf(f, me) || f.event.type !== 'NoteAdded') return;
        const m: Mention = { conversation_id: f.conversation_id, version: f.version, author: f.event.author, at: f.occurred_at, position: f.position ?? 0 };
        setItems((old) => (old.some((o) => o.conversation_id === m.conversation_id && o.version === m.version) ? old : [m, ...old]));
      }),
    [me],
  );

  const more = (): void => {
    if (next === null) return;
    api
      .mentions({ limit: 50, before: next })
      .then((p) => {
        setItems((old) => [...old, ...p.items.filter((i) => !old.some((o) => o.position === i.position))]);
        setNext(p.next_before);
      })
      .catch(() => undefined);
  };

  return (
    <>
      <ErrorLine error={error} />
      <ul className="conversations mentions" aria-busy={loading} aria-label="Mentions">
        {byConversation(items).map((g) => (
          <li key={g.conversation_id}>
            <a href={href('inbox', 'mentions', g.conversation_id)} className={`conv ${g.conversation_id === current ? 'active' : ''}`} aria-current={g.conversation_id === current ? 'true' : undefined} data-conversation={g.conversation_id} data-mention="">
              <span className="conv-top">
                <span className="who">{people.name(g.latest.author)} mentioned you</span>
                <span className="when">{ago(g.latest.at)}</span>
              </span>
              <span className="conv-text">
                in a private note{g.count > 1 ? ` (${g.count} notes)` : ''} · conversation {shortId(g.conversation_id)}
              </span>
            </a>
          </li>
        ))}
        {!loading && items.length === 0 && <li className="empty">Nobody has mentioned you yet. New mentions appear live.</li>}
      </ul>
      {next !== null && (
        <button type="button" className="ghost more" onClick={more}>
          Load more
        </button>
      )}
    </>
  );
}
