/**
 * The Gaps tab of the Knowledge page: questions the bot handed off or got a
 * 👎 for, grouped by similarity, most frequent first. Each example can be
 * fixed in one click: the agent's reply becomes a new article (the article
 * editor opens prefilled), or the customer's question becomes a labelled
 * example of an intent — the bot then retrains in the background, and a
 * status line follows the training until it is done.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from '@jamuna/protocol';
import { kb, type GapGroup, type ModelStatus } from '../client';
import { ago } from '../format';

/** How often the model's state is asked for while it trains, in ms. */
export const POLL_MS = 1500;

const REASONS: Record<string, string> = {
  low_confidence: 'not sure',
  repeated_failure: 'failed twice',
  negative_feedback: '👎',
};

function clock(d: Date): string {
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** An article title from a customer's question: one line, at most 200 characters (the editor's limit). */
export function titleFrom(question: string): string {
  const line = question.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

export function Gaps({ onMakeArticle }: { onMakeArticle: (title: string, body: string) => void }) {
  const [groups, setGroups] = useState<GapGroup[] | null>(null);
  const [intents, setIntents] = useState<string[]>([]);
  const [chosen, setChosen] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [training, setTraining] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    kb.gaps()
      .then((r) => setGroups([...r.groups].sort((a, b) => b.count - a.count)))
      .catch((e: unknown) => {
        setGroups([]);
        setError(e instanceof ApiError && e.status === 404 ? 'The gaps report is not available on this server yet.' : e instanceof Error ? e.message : 'Could not load the gaps.');
      });
    kb.model()
      .then((m) => setIntents(m.intents))
      .catch(() => setIntents([]));
    return () => {
      if (timer.current) clearTimeout(timer.current);
    };
  }, []);

  const follow = useCallback((m: ModelStatus) => {
    setIntents(m.intents);
    if (m.state === 'training') {
      setTraining(true);
      setStatus('Retraining the bot…');
      timer.current = setTimeout(() => {
        kb.model()
          .then(follow)
          .catch((e: unknown) => setError(e instanceof Error ? e.message : 'Could not read the model.'));
      }, POLL_MS);
    } else {
      setTraining(false);
      setStatus(m.state === 'trained' ? `The bot has learnt it (trained ${clock(new Date())}).` : null);
    }
  }, []);

  const addExample = async (question: string, key: string): Promise<void> => {
    const intent = chosen[key] ?? intents[0];
    if (!intent) return;
    try {
      const r = await kb.addExample(question, intent);
      setError(null);
      if (!r.added) setStatus(`The bot already had this question as an example of ${intent}.`);
      follow(await kb.model());
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Could not add the example.');
    }
  };

  return (
    <section aria-label="Gaps">
      <p className="muted">Questions the bot handed off or got a 👎 for, most frequent first. Fix one in a click: make an article from the agent's reply, or teach the bot the question as an example of an intent.</p>
      <div aria-live="polite">
        {status && (
          <p className={training ? 'notice' : 'notice-ok'} data-testid="training-status">
            {status}
          </p>
        )}
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {groups !== null && groups.length === 0 && !error && <p className="empty">No gaps: every question lately was answered, or handed over for a reason no article could fix.</p>}
      {(groups ?? []).map((g) => (
        <article key={g.id} className="card gap" aria-label={g.question}>
          <header className="row">
            <strong>{g.question}</strong>
            <span className="badge" title="How many times">
              {g.count}×
            </span>
            <span className="muted small">
              {Object.entries(g.reasons)
                .filter(([, n]) => n > 0)
                .map(([r, n]) => `${REASONS[r] ?? r} ${n}`)
                .join(' · ')}{' '}
              · last {ago(g.last_at)}
            </span>
          </header>
          <ul className="gap-examples">
            {g.examples.map((x, i) => {
              const key = `${g.id}/${i}`;
              return (
                <li key={key}>
                  <p>
                    <span className="muted small">Customer: </span>
                    {x.question}
                  </p>
                  {x.bot_answer && (
                    <p>
                      <span className="muted small">Bot: </span>
                      {x.bot_answer}
                    </p>
                  )}
                  {x.agent_reply && (
                    <p>
                      <span className="muted small">Agent: </span>
                      {x.agent_reply}
                    </p>
                  )}
                  <div className="row">
                    {x.agent_reply && (
                      <button type="button" onClick={() => onMakeArticle(titleFrom(x.question), x.agent_reply ?? '')}>
                        Make an article from this reply
                      </button>
                    )}
                    {intents.length > 0 && (
                      <>
                        <button type="button" onClick={() => void addExample(x.question, key)}>
                          Add as example of
                        </button>
                        <label>
                          <span className="sr">Intent</span>
                          <select value={chosen[key] ?? intents[0]} onChange={(e) => setChosen({ ...chosen, [key]: e.target.value })}>
                            {intents.map((n) => (
                              <option key={n} value={n}>
                                {n}
                              </option>
                            ))}
                          </select>
                        </label>
                      </>
                    )}
                  </div>
                </li>
              );
            })}
          </ul>
        </article>
      ))}
    </section>
  );
}
