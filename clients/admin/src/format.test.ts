import { describe, expect, it } from 'vitest';
import { why } from './format';

describe('why the bot decided', () => {
  it('says which score decided, with the numbers that mattered', () => {
    expect(why({ basis: 'intent_head', scores: { confidence: 0.912, threshold: 0.5623, head_probability: 0.97 } })).toBe('Why: intent head — confidence 0.91 ≥ threshold 0.56');
    expect(why({ basis: 'retrieval', scores: { passage_score: 0.62, passage_minimum: 0.45 } })).toBe('Why: retrieval — best passage 0.62 ≥ minimum 0.45');
    expect(why({ basis: 'retrieval', scores: { passage_score: 0.62, passage_minimum: 0.45, confidence: 0.3, threshold: 0.56 } })).toBe(
      'Why: retrieval — best passage 0.62 ≥ minimum 0.45; confidence 0.30 < threshold 0.56',
    );
    expect(why({ basis: 'out_of_scope_distance', scores: { confidence: 0.12, threshold: 0.56, nearest_similarity: 0.41, mean_similarity: 0.35, mahalanobis: 2.5, confidence_if_head_certain: 0.3 } })).toBe(
      'Why: out-of-scope distance — nearest example 0.41, mean of nearest 0.35, Mahalanobis 2.50; even a certain head: 0.30 < threshold 0.56',
    );
    expect(why({ basis: 'low_confidence', scores: { confidence: 0.4, threshold: 0.56, passage_score: 0.2, passage_minimum: 0.45 } })).toBe(
      'Why: low confidence — confidence 0.40 < threshold 0.56; best passage 0.20 < minimum 0.45',
    );
    expect(why({ basis: 'low_confidence', scores: { passage_minimum: 0.45 } })).toBe('Why: low confidence');
    expect(why({ basis: 'clarify', scores: { confidence: 0.4, threshold: 0.56 } })).toBe('Why: clarifying question — confidence 0.40 < threshold 0.56');
    expect(why({ basis: 'context', scores: { passage_score: 0.7, passage_minimum: 0.45 } })).toBe('Why: read with the previous question — best passage 0.70 ≥ minimum 0.45');
    expect(why({ basis: 'out_of_scope_example', scores: { confidence: 0.82, threshold: 0.56 } })).toBe('Why: reads as a question to hand to a person — confidence 0.82 ≥ threshold 0.56');
    expect(why({ basis: 'small_talk', scores: { phrase_similarity: 0.853 } })).toBe('Why: small talk — phrase similarity 0.85');
    expect(why({ basis: 'customer_asked', scores: {} })).toBe('Why: the customer asked for a human — in words');
    expect(why({ basis: 'customer_asked' })).toBe('Why: the customer asked for a human — in words');
  });

  it('says nothing when the event has no why', () => {
    expect(why(undefined)).toBeNull();
    expect(why(null)).toBeNull();
  });
});
