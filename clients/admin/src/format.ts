import type { DecisionBasis, DecisionWhy } from '@jamuna/protocol';

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function time(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function duration(seconds: number | null | undefined): string {
  if (seconds == null) return '—';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function percent(x: number | null | undefined): string {
  return x == null ? '—' : `${Math.round(x * 100)}%`;
}

/** A short, stable label for someone we only know by id. */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(-6) : id;
}

export function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** A score as agents read it: two decimals. */
function num(x: number): string {
  return x.toFixed(2);
}

/** `a ≥ name b` or `a < name b`. */
function against(a: number, name: string, b: number): string {
  return `${num(a)} ${a >= b ? '≥' : '<'} ${name} ${num(b)}`;
}

const BASIS: Record<DecisionBasis, string> = {
  customer_asked: 'the customer asked for a human',
  small_talk: 'small talk',
  retrieval: 'retrieval',
  intent_head: 'intent head',
  out_of_scope_distance: 'out-of-scope distance',
  low_confidence: 'low confidence',
  clarify: 'clarifying question',
  context: 'read with the previous question',
  out_of_scope_example: 'reads as a question to hand to a person',
};

/**
 * The staff-only line under a bot answer or handoff that says which score
 * decided it, e.g. "Why: intent head — confidence 0.91 ≥ threshold 0.56".
 * `null` when the event says no why (older events, handoffs people asked for).
 */
export function why(w: DecisionWhy | null | undefined): string | null {
  if (!w) return null;
  const s = w.scores ?? {};
  const model = s.confidence != null && s.threshold != null ? `confidence ${against(s.confidence, 'threshold', s.threshold)}` : null;
  const passage = s.passage_score != null && s.passage_minimum != null ? `best passage ${against(s.passage_score, 'minimum', s.passage_minimum)}` : null;
  const phrase = s.phrase_similarity != null ? `phrase similarity ${num(s.phrase_similarity)}` : null;
  let parts: (string | null)[];
  switch (w.basis) {
    case 'customer_asked':
      parts = [phrase ?? 'in words'];
      break;
    case 'small_talk':
      parts = [phrase];
      break;
    case 'retrieval':
      parts = [passage, model];
      break;
    case 'intent_head':
    case 'out_of_scope_example':
      parts = [model];
      break;
    case 'out_of_scope_distance': {
      const distances = [
        s.nearest_similarity != null ? `nearest example ${num(s.nearest_similarity)}` : null,
        s.mean_similarity != null ? `mean of nearest ${num(s.mean_similarity)}` : null,
        s.mahalanobis != null ? `Mahalanobis ${num(s.mahalanobis)}` : null,
      ].filter((p): p is string => p != null);
      const certain = s.confidence_if_head_certain != null && s.threshold != null ? `even a certain head: ${against(s.confidence_if_head_certain, 'threshold', s.threshold)}` : null;
      parts = [distances.length > 0 ? distances.join(', ') : null, certain];
      break;
    }
    default:
      parts = [model, passage];
  }
  const detail = parts.filter((p): p is string => p != null).join('; ');
  return `Why: ${BASIS[w.basis] ?? w.basis}${detail ? ` — ${detail}` : ''}`;
}
