/**
 * The Gaps tab of the Knowledge page: questions the bot handed off or got a
 * 👎 for, grouped by similarity, most frequent first. Each example can be
 * fixed in one click: the agent's reply becomes a new article (the article
 * editor opens prefilled), or the customer's question becomes a labelled
 * example of an intent — the bot then retrains in the background, and a
 * status line follows the training until it is done. The same line says
 * when the model is behind the examples or its training failed, with a
 * button that asks for a training (`POST /api/v1/kb/train`).
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from '@jamuna/protocol';
import { kb, type GapGroup, type ModelStatus } from '../client';
import { ago } from '../format';
import { ErrorLine } from '../status';

/** How often the model's state is asked for while it trains, in ms. */
export const POLL_MS = 1500;

/** The reserved intent of questions the bot must hand to a person (the domain's `OUT_OF_SCOPE_INTENT`): it takes examples, never an answer. */
export const OUT_OF_SCOPE = 'out_of_scope';

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

/** What the status line says of the model, and whether it offers to train. */
function describe(m: ModelStatus, followed: boolean): { text: string | null; tone: 'notice' | 'notice-ok' | 'error'; train: string | null } {
  switch (m.state) {
    case 'training':
      return { text: 'Retraining the bot…', tone: 'notice', train: null };
    case 'trained':
      return { text: followed ? `The bot has learnt it (trained ${clock(new Date())}).` : null, tone: 'notice-ok', train: null };
    case 'stale':
      return { text: 'The bot has not learnt your latest examples yet.', tone: 'notice', train: 'Train now' };
    case 'failed':
      return { text: `Training failed${m.failure ? `: ${m.failure.reason}` : '.'}`, tone: 'error', train: 'Train again' };
    default: {
      // Untrained: worth a training once there are examples of 2 intents.
      const trainable = m.intents.length >= 2 && m.examples > 0;
      return { text: trainable ? 'The bot has not been trained on your examples yet.' : null, tone: 'notice', train: trainable ? 'Train now' : null };
    }
  }
}

export function Gaps({ onMakeArticle }: { onMakeArticle: (title: string, body: string) => void }) {
  const [groups, setGroups] = useState<GapGroup[] | null>(null);
  const [intents, setIntents] = useState<string[]>([]);
  const [chosen, setChosen] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<ReturnType<typeof describe> | null>(null);
  /** What the latest "Always hand these to a person" did, above the training status. */
  const [handoffNote, setHandoffNote] = useState<string | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  /** A training was seen running since the tab opened: its end is news. */
  const followed = useRef(false);

  const follow = useCallback((m: ModelStatus) => {
    setIntents(m.intents);
    if (m.state === 'training') followed.current = true;
    setStatus(describe(m, followed.current));
    if (m.state === 'training') {
      timer.current = setTimeout(() => {
        kb.model()
          .then(follow)
          .catch((e: unknown) => setError(e instanceof Error ? e.message : 'Could not read the model.'));
      }, POLL_MS);
    } else {
      followed.current = false;
    }
  }, []);

  useEffect(() => {
    kb.gaps()
      .then((r) => setGroups([...r.groups].sort((a, b) => b.count - a.count)))
      .catch((e: unknown) => {
        setGroups([]);
        setError(e instanceof ApiError && e.status === 404 ? 'The gaps report is not available on this server yet.' : e instanceof Error ? e.message : 'Could not load the gaps.');
      });
    kb.model()
      .then(follow)
      .catch(() => setIntents([]));
    return () => {
      if (timer.current) clearTimeout(timer.current);
    };
  }, [follow]);

  /** The intents an example may be added to: the reserved one has its own button. */
  const answerable = intents.filter((n) => n !== OUT_OF_SCOPE);

  const addExample = async (question: string, key: string): Promise<void> => {
    const intent = chosen[key] ?? answerable[0];
    if (!intent) return;
    try {
      const r = await kb.addExample(question, intent);
      setError(null);
      setHandoffNote(null);
      const m = await kb.model();
      follow(m);
      if (!r.added) setStatus({ text: `The bot already had this question as an example of ${intent}.`, tone: 'notice-ok', train: null });
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Could not add the example.');
    }
  };

  /** Labels the question as one the bot hands to a person, then follows the training as `addExample` does. */
  const handOff = async (question: string): Promise<void> => {
    try {
      const r = await kb.addExample(question, OUT_OF_SCOPE);
      setError(null);
      setHandoffNote(r.added ? 'The bot will hand questions like this to a person once it has retrained.' : 'The bot already had this question as one to hand to a person.');
      follow(await kb.model());
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Could not add the example.');
    }
  };

  const train = async (): Promise<void> => {
    try {
      if (timer.current) clearTimeout(timer.current);
      setHandoffNote(null);
      follow(await kb.train());
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? `Could not ask for training: ${e.message}` : 'Could not ask for training.');
    }
  };

  return (
    <section aria-label="Gaps">
      <p className="muted">Questions the bot handed off or got a 👎 for, most frequent first. Fix one in a click: make an article from the agent's reply, teach the bot the question as an example of an intent, or tell it to hand such questions to a person.</p>
      <div aria-live="polite" className="row">
        {handoffNote && (
          <p className="notice-ok" data-testid="handoff-note">
            {handoffNote}
          </p>
        )}
        {status?.text && (
          <p className={status.tone} data-testid="training-status">
            {status.text}
          </p>
        )}
        {status?.train && (
          <button type="button" onClick={() => void train()}>
            {status.train}
          </button>
        )}
      </div>
      <ErrorLine error={error} />
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
                    {answerable.length > 0 && (
                      <>
                        <button type="button" onClick={() => void addExample(x.question, key)}>
                          Add as example of
                        </button>
                        <label>
                          <span className="sr">Intent</span>
                          <select value={chosen[key] ?? answerable[0]} onChange={(e) => setChosen({ ...chosen, [key]: e.target.value })}>
                            {answerable.map((n) => (
                              <option key={n} value={n}>
                                {n}
                              </option>
                            ))}
                          </select>
                        </label>
                      </>
                    )}
                    <button type="button" onClick={() => void handOff(x.question)}>
                      Always hand these to a person
                    </button>
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
