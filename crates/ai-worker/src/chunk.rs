//! Splitting articles into passages the encoder can embed.
//!
//! The encoder reads at most [`crate::embed::MAX_TOKENS`] tokens, and retrieval works best
//! when a passage is about one thing, so a knowledge-base article is cut into passages of
//! about [`ChunkConfig::max_words`] words (English averages about 1.3 tokens a word, so
//! 160 words stay under 256 tokens). Passages:
//!
//! - never cross a Markdown heading: each passage records the heading it sits under
//!   (`#` lines inside fenced code blocks are not headings);
//! - end, where possible, at a paragraph or sentence end in the last third of the window;
//! - overlap the previous passage by [`ChunkConfig::overlap_words`] words, so a sentence
//!   cut at a boundary is whole in at least one passage;
//! - keep their position: `start..end` are byte offsets into the original text, and
//!   `text` is exactly that slice.
//!
//! Pure: no model, no I/O.

use serde::{Deserialize, Serialize};

/// How big passages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkConfig {
    /// Most words in a passage.
    pub max_words: usize,
    /// Words a passage repeats from the end of the previous one in the same section.
    pub overlap_words: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self { max_words: 160, overlap_words: 32 }
    }
}

/// A piece of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// Position among the article's passages, from 0.
    pub index: usize,
    /// Byte offset of the first character in the article.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
    /// The text of the heading the passage sits under, if any (without the `#`s).
    pub heading: Option<String>,
    /// `article[start..end]`.
    pub text: String,
}

/// A word's byte span, and whether a sentence or paragraph ends after it.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
    boundary: bool,
}

/// A section: the text under one heading (or before the first heading).
struct Section {
    heading: Option<String>,
    start: usize,
    end: usize,
}

/// Splits `text` into passages; see the module docs. Empty or blank text gives none.
pub fn split_passages(text: &str, config: &ChunkConfig) -> Vec<Passage> {
    let max_words = config.max_words.max(1);
    let overlap = config.overlap_words.min(max_words / 2);
    let mut passages = Vec::new();
    for section in sections(text) {
        let words = words(text, section.start, section.end);
        let (mut from, mut prev_to) = (0usize, 0usize);
        while from < words.len() {
            let mut to = (from + max_words).min(words.len());
            if to < words.len() {
                // Prefer ending at a boundary in the last third of the window, and always
                // past the end of the previous passage.
                let earliest = (from + (max_words * 2 / 3).max(1)).max(prev_to + 1);
                if let Some(b) = (earliest..to).rev().find(|&i| words[i - 1].boundary) {
                    to = b;
                }
            }
            let (start, end) = (words[from].start, words[to - 1].end);
            passages.push(Passage {
                index: passages.len(),
                start,
                end,
                heading: section.heading.clone(),
                text: text[start..end].to_owned(),
            });
            if to == words.len() {
                break;
            }
            prev_to = to;
            // Step back by the overlap, but always move forward.
            from = to.saturating_sub(overlap).max(from + 1);
        }
    }
    passages
}

/// Cuts the text at Markdown ATX headings outside fenced code blocks.
fn sections(text: &str) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut current = Section { heading: None, start: 0, end: 0 };
    let mut in_fence = false;
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if !in_fence && let Some(title) = heading(trimmed) {
            current.end = offset;
            sections.push(current);
            current = Section { heading: Some(title.to_owned()), start: offset + line.len(), end: 0 };
        }
        offset += line.len();
    }
    current.end = text.len();
    sections.push(current);
    sections
}

/// The title of an ATX heading line (`# Title`, up to six `#`), if it is one.
fn heading(line: &str) -> Option<&str> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) && rest.trim() != "" {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim())
}

/// Words of `text[start..end]` with absolute byte spans.
fn words(text: &str, start: usize, end: usize) -> Vec<Word> {
    let slice = &text[start..end];
    let mut words: Vec<Word> = Vec::new();
    let mut word_start: Option<usize> = None;
    let mut newlines = 0usize;
    for (i, c) in slice.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = word_start.take() {
                words.push(word(slice, start, s, i));
                newlines = 0;
            }
            if c == '\n' {
                newlines += 1;
                // A blank line ends a paragraph.
                if newlines >= 2
                    && let Some(last) = words.last_mut()
                {
                    last.boundary = true;
                }
            }
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    if let Some(s) = word_start {
        words.push(word(slice, start, s, slice.len()));
    }
    words
}

fn word(slice: &str, base: usize, s: usize, e: usize) -> Word {
    let w = slice[s..e].trim_end_matches(['"', '\'', ')', ']', '*', '_']);
    Word { start: base + s, end: base + e, boundary: w.ends_with(['.', '!', '?', ':', ';']) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_words: usize, overlap_words: usize) -> ChunkConfig {
        ChunkConfig { max_words, overlap_words }
    }

    fn numbered(n: usize) -> String {
        (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn short_text_is_one_passage_and_blank_is_none() {
        let p = split_passages("Reset your password from the login page.", &ChunkConfig::default());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].text, "Reset your password from the login page.");
        assert_eq!((p[0].start, p[0].heading.as_deref()), (0, None));
        assert!(split_passages("  \n\n ", &ChunkConfig::default()).is_empty());
        assert!(split_passages("", &ChunkConfig::default()).is_empty());
    }

    #[test]
    fn long_text_is_windowed_with_overlap() {
        let text = numbered(25);
        let p = split_passages(&text, &config(10, 3));
        let counts: Vec<usize> = p.iter().map(|x| x.text.split_whitespace().count()).collect();
        assert!(counts.iter().all(|&c| c <= 10), "{counts:?}");
        // Overlap: each passage starts 3 words before the previous ended.
        assert!(p[1].text.starts_with("w7 "), "{}", p[1].text);
        assert!(p.last().unwrap().text.ends_with("w24"));
        for x in &p {
            assert_eq!(&text[x.start..x.end], x.text);
        }
        assert_eq!(p.iter().map(|x| x.index).collect::<Vec<_>>(), (0..p.len()).collect::<Vec<_>>());
    }

    #[test]
    fn prefers_sentence_ends() {
        let text = "one two three four five six seven. eight nine ten eleven twelve";
        let p = split_passages(text, &config(9, 0));
        assert_eq!(p[0].text, "one two three four five six seven.");
        assert_eq!(p[1].text, "eight nine ten eleven twelve");
    }

    #[test]
    fn headings_start_sections_but_not_inside_code() {
        let text = "Intro line.\n\n# Refunds\nRefunds take 5 days.\n\n```\n# not a heading\n```\n## Cards ##\nCards arrive in a week.\n";
        let p = split_passages(text, &ChunkConfig::default());
        let got: Vec<(Option<&str>, &str)> = p.iter().map(|x| (x.heading.as_deref(), x.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (None, "Intro line."),
                (Some("Refunds"), "Refunds take 5 days.\n\n```\n# not a heading\n```"),
                (Some("Cards"), "Cards arrive in a week."),
            ]
        );
        assert!(heading("#hashtag").is_none());
        assert!(heading("####### seven").is_none());
        assert_eq!(heading("#"), Some(""));
    }

    #[test]
    fn keeps_byte_positions_with_multibyte_text() {
        let text = "## Café\nLe café coûte 3 €. Ça va ?\n";
        let p = split_passages(text, &config(4, 1));
        for x in &p {
            assert_eq!(&text[x.start..x.end], x.text);
            assert_eq!(x.heading.as_deref(), Some("Café"));
        }
        assert!(p.len() >= 2);
    }

    proptest::proptest! {
        #[test]
        fn every_word_is_covered_in_order(words in proptest::collection::vec("[a-z]{1,6}[.]?", 0..200),
                                          max in 1usize..40, overlap in 0usize..20) {
            let text = words.join(" ");
            let p = split_passages(&text, &config(max, overlap));
            let mut covered = 0usize;
            for x in &p {
                // No gap: a passage starts at most one space after the previous one ended.
                proptest::prop_assert!(x.start <= covered + usize::from(covered > 0));
                proptest::prop_assert!(x.text.split_whitespace().count() <= max);
                proptest::prop_assert_eq!(&text[x.start..x.end], x.text.as_str());
                proptest::prop_assert!(x.end > covered);
                covered = x.end;
            }
            let trimmed = text.trim_end().len();
            proptest::prop_assert_eq!(covered, trimmed);
        }
    }
}
