/**
 * The Examples tab of the Knowledge page: the labelled examples the bot is
 * taught from (`GET /api/v1/kb/examples`), by intent then text, 50 a page.
 * Admins filter them by intent (with each intent's count) or by a word of
 * the text, and remove a wrong one (`DELETE /api/v1/kb/examples`): the bot
 * then retrains in the background, as it does when one is added. Examples of
 * the reserved intent `out_of_scope` are questions the bot hands to a person,
 * and are shown so.
 */
import { useEffect, useState } from 'react';
import { ApiError } from '@jamuna/protocol';
import { kb, type ExamplePage, type LabelledExample } from '../client';
import { OUT_OF_SCOPE } from './Gaps';
import { ErrorLine, NoticeLine } from '../status';

/** Examples a page. */
export const PAGE = 50;

/** The most characters the search takes (the API's limit on `q`). */
const MAX_SEARCH = 200;

/** How long typing pauses before the search is sent, in ms (each search reads the knowledge base's log). */
export const SEARCH_PAUSE_MS = 250;

/** An intent as admins read it: the reserved one says what it does. */
export function intentLabel(intent: string): string {
  return intent === OUT_OF_SCOPE ? 'hand to a person' : intent;
}

export function Examples() {
  const [intent, setIntent] = useState('');
  const [q, setQ] = useState('');
  /** `q` once typing paused: what is searched. */
  const [query, setQuery] = useState('');
  const [offset, setOffset] = useState(0);
  /** Bumped to load the same page again (after a removal). */
  const [reloads, setReloads] = useState(0);
  const [page, setPage] = useState<ExamplePage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    const t = setTimeout(() => setQuery(q), SEARCH_PAUSE_MS);
    return () => clearTimeout(t);
  }, [q]);

  useEffect(() => {
    // Only the latest request's answer is shown.
    let current = true;
    kb.examples({ intent: intent || undefined, q: query || undefined, offset, limit: PAGE })
      .then((p) => {
        if (!current) return;
        // The last page emptied by a removal: show the one before.
        if (p.items.length === 0 && offset > 0) {
          setOffset(Math.max(0, Math.ceil(p.total / PAGE) - 1) * PAGE);
          return;
        }
        setPage(p);
      })
      .catch((e: unknown) => {
        if (!current) return;
        setError(e instanceof ApiError && e.status === 404 ? 'Listing examples is not available on this server yet.' : e instanceof Error ? e.message : 'Could not load the examples.');
      });
    return () => {
      current = false;
    };
  }, [intent, query, offset, reloads]);

  const remove = async (x: LabelledExample): Promise<void> => {
    if (!window.confirm(`Remove the example “${x.text}” of ${intentLabel(x.intent)}? The bot will retrain without it.`)) return;
    try {
      await kb.removeExample(x.text, x.intent);
      setError(null);
      setNotice('Example removed. The bot retrains in the background.');
    } catch (e) {
      setNotice(null);
      setError(e instanceof Error ? `Could not remove the example: ${e.message}` : 'Could not remove the example.');
    }
    setReloads((n) => n + 1);
  };

  const intents = Object.entries(page?.intents ?? {});
  // A chosen intent whose last example was removed stays selectable.
  if (intent && !intents.some(([name]) => name === intent)) intents.push([intent, 0]);
  const total = page?.total ?? 0;
  const items = page?.items ?? [];

  return (
    <section aria-label="Examples">
      <p className="muted">The questions the bot is taught from, each labelled with its intent. Remove a wrong one and the bot retrains without it.</p>
      <div className="row filters">
        <label>
          Intent{' '}
          <select
            value={intent}
            onChange={(e) => {
              setIntent(e.target.value);
              setOffset(0);
              setError(null);
            }}
          >
            <option value="">All intents</option>
            {intents.map(([name, n]) => (
              <option key={name} value={name}>
                {intentLabel(name)} ({n})
              </option>
            ))}
          </select>
        </label>
        <label>
          <span className="sr">Search examples</span>
          <input
            type="search"
            placeholder="Search…"
            maxLength={MAX_SEARCH}
            value={q}
            onChange={(e) => {
              setQ(e.target.value);
              setOffset(0);
              setError(null);
            }}
          />
        </label>
      </div>
      <NoticeLine notice={notice} />
      <ErrorLine error={error} />
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Question</th>
            <th scope="col">Intent</th>
            <th scope="col">
              <span className="sr">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {items.map((x) => (
            <tr key={`${x.intent}\n${x.text}`}>
              <td>{x.text}</td>
              <td className={x.intent === OUT_OF_SCOPE ? 'muted' : undefined}>{intentLabel(x.intent)}</td>
              <td className="actions">
                <button type="button" className="danger" onClick={() => void remove(x)}>
                  Remove <span className="sr">{x.text}</span>
                </button>
              </td>
            </tr>
          ))}
          {page !== null && items.length === 0 && !error && (
            <tr>
              <td colSpan={3} className="empty">
                {intent || q ? 'No examples match.' : 'No examples yet: add them from the Gaps tab or import a text,category CSV.'}
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {total > 0 && (
        <div className="row">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            Previous
          </button>
          <span className="muted small" data-testid="examples-range">
            {Math.min(offset + 1, total)}–{Math.min(offset + items.length, total)} of {total}
          </span>
          <button type="button" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>
            Next
          </button>
        </div>
      )}
    </section>
  );
}
