//! Reading knowledge-base files into article drafts: Markdown (one article,
//! titled by its first heading), CSV FAQ pairs (`question,answer`), and JSON
//! (`[{"question","answer"}]` or `[{"title","body"}]`). Pure: text in,
//! drafts or an error with the line it is on out.
//!
//! Article ids follow from titles (a slug), so importing the same file
//! again updates the articles instead of adding copies.
//!
//! Labelled examples come as a `text,category` CSV (like BANKING77; the
//! intent column may also be called `intent` or `label`), and the answers to
//! intents as a `category,answer` CSV.

use super::{LabelledExample, MAX_ANSWER_CHARS, MAX_EXAMPLE_CHARS, MAX_INTENT_CHARS, OUT_OF_SCOPE_INTENT};
use crate::ArticleId;

/// An article as a file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub id: ArticleId,
    pub title: String,
    pub body: String,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Csv,
    Json,
}

impl Format {
    /// From a file name's extension or a content type.
    pub fn detect(name_or_type: &str) -> Option<Format> {
        let s = name_or_type.to_ascii_lowercase();
        let s = s.split(';').next().unwrap_or_default().trim();
        if s.ends_with(".md") || s.ends_with(".markdown") || s == "text/markdown" {
            Some(Format::Markdown)
        } else if s.ends_with(".csv") || s == "text/csv" {
            Some(Format::Csv)
        } else if s.ends_with(".json") || s == "application/json" {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// What is wrong with a file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ImportError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ImportError {
    ImportError { line, message: message.into() }
}

/// A stable article id from a title: lower case, words joined by `-`.
pub fn slug(title: &str) -> Option<ArticleId> {
    let mut s = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 60 {
            break;
        }
    }
    ArticleId::parse(s.trim_matches('-')).ok()
}

/// Parses a whole file. `source` names it (kept on each article).
pub fn parse(format: Format, text: &str, source: Option<&str>) -> Result<Vec<Draft>, ImportError> {
    let drafts = match format {
        Format::Markdown => vec![markdown(text, source)?],
        Format::Csv => csv(text, source)?,
        Format::Json => json(text, source)?,
    };
    let mut seen = std::collections::HashSet::new();
    for (i, d) in drafts.iter().enumerate() {
        if !seen.insert(d.id.clone()) {
            return Err(err(i + 1, format!("two articles have the title {:?}", d.title)));
        }
    }
    Ok(drafts)
}

fn draft(line: usize, title: &str, body: &str, source: Option<&str>) -> Result<Draft, ImportError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(err(line, "an article needs a title"));
    }
    if body.trim().is_empty() {
        return Err(err(line, format!("the article {title:?} has no text")));
    }
    let id = slug(title).ok_or_else(|| err(line, format!("the title {title:?} has no letters or digits to make an id from")))?;
    Ok(Draft { id, title: title.to_string(), body: body.trim().to_string(), source: source.map(str::to_string) })
}

fn markdown(text: &str, source: Option<&str>) -> Result<Draft, ImportError> {
    let (line, title) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.trim_start().strip_prefix('#').map(|t| (i + 1, t.trim_start_matches('#').trim().to_string())))
        .ok_or_else(|| err(1, "a Markdown article needs a heading (# Title) for its title"))?;
    let body: Vec<&str> = text.lines().enumerate().filter(|(i, _)| *i + 1 != line).map(|(_, l)| l).collect();
    draft(line, &title, &body.join("\n"), source)
}

fn csv(text: &str, source: Option<&str>) -> Result<Vec<Draft>, ImportError> {
    let mut reader = ::csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| err(1, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let (q, a) = match (col("question").or(col("title")), col("answer").or(col("body"))) {
        (Some(q), Some(a)) => (q, a),
        _ => return Err(err(1, "the CSV header must name the columns question,answer (or title,body)")),
    };
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| err(e.position().map_or(0, |p| p.line() as usize), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        out.push(draft(line, record.get(q).unwrap_or_default(), record.get(a).unwrap_or_default(), source)?);
    }
    if out.is_empty() {
        return Err(err(1, "the file has no rows"));
    }
    Ok(out)
}

fn json(text: &str, source: Option<&str>) -> Result<Vec<Draft>, ImportError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| err(e.line(), e.to_string()))?;
    let items =
        value.as_array().ok_or_else(|| err(1, "expected a JSON array of {\"question\",\"answer\"} or {\"title\",\"body\"} objects"))?;
    // Line numbers of each item: the line each top-level object starts on.
    let lines = item_lines(text);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let line = lines.get(i).copied().unwrap_or(1);
            let field = |a: &str, b: &str| item.get(a).or_else(|| item.get(b)).and_then(|v| v.as_str());
            match (field("question", "title"), field("answer", "body")) {
                (Some(t), Some(b)) => draft(line, t, b, source),
                _ => Err(err(line, format!("item {} needs string fields question and answer (or title and body)", i + 1))),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| if v.is_empty() { Err(err(1, "the array is empty")) } else { Ok(v) })
}

/// What a CSV file holds, told by its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvKind {
    /// `question,answer` (or `title,body`): articles.
    Articles,
    /// `text,category` (or `intent`, `label`): labelled examples.
    Examples,
    /// `category,answer` (or `intent`, `label`): what to answer per intent.
    Answers,
}

/// Reads a CSV file's header to tell articles from examples.
pub fn csv_kind(text: &str) -> Option<CsvKind> {
    let mut reader = ::csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let headers = reader.headers().ok()?;
    let has = |name: &str| headers.iter().any(|h| h.trim().eq_ignore_ascii_case(name));
    let intent = has("category") || has("intent") || has("label");
    if has("text") && intent {
        Some(CsvKind::Examples)
    } else if intent && has("answer") {
        Some(CsvKind::Answers)
    } else if (has("question") || has("title")) && (has("answer") || has("body")) {
        Some(CsvKind::Articles)
    } else {
        None
    }
}

/// Rows of a CSV as (line, the two named columns), trimmed.
fn two_columns(text: &str, first: &[&str], second: &[&str], what: &str) -> Result<Vec<(usize, String, String)>, ImportError> {
    let mut reader = ::csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| err(1, e.to_string()))?.clone();
    let col = |names: &[&str]| names.iter().find_map(|n| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(n)));
    let (Some(a), Some(b)) = (col(first), col(second)) else {
        return Err(err(1, format!("the CSV header must name the columns {what}")));
    };
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| err(e.position().map_or(0, |p| p.line() as usize), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        out.push((line, record.get(a).unwrap_or_default().trim().to_owned(), record.get(b).unwrap_or_default().trim().to_owned()));
    }
    if out.is_empty() {
        return Err(err(1, "the file has no rows"));
    }
    Ok(out)
}

fn check_intent(line: usize, intent: &str) -> Result<(), ImportError> {
    if intent.is_empty() {
        return Err(err(line, "the category is empty"));
    }
    if intent.chars().count() > MAX_INTENT_CHARS || intent.chars().any(char::is_control) {
        return Err(err(line, format!("the category {intent:?} is longer than {MAX_INTENT_CHARS} characters or has control characters")));
    }
    Ok(())
}

/// Parses labelled examples: a CSV with a `text` column and a `category`
/// (or `intent`, `label`) column.
pub fn parse_examples(text: &str) -> Result<Vec<LabelledExample>, ImportError> {
    two_columns(text, &["text"], &["category", "intent", "label"], "text,category")?
        .into_iter()
        .map(|(line, text, intent)| {
            if text.is_empty() {
                return Err(err(line, "the text is empty"));
            }
            if text.chars().count() > MAX_EXAMPLE_CHARS {
                return Err(err(line, format!("the text is longer than {MAX_EXAMPLE_CHARS} characters")));
            }
            check_intent(line, &intent)?;
            Ok(LabelledExample { text, intent })
        })
        .collect()
}

/// Parses the answers to intents: a CSV with a `category` (or `intent`,
/// `label`) column and an `answer` column. An intent named twice is an error,
/// and so is an answer for [`OUT_OF_SCOPE_INTENT`] (its questions go to a
/// person; label them as examples instead).
pub fn parse_answers(text: &str) -> Result<Vec<(String, String)>, ImportError> {
    let mut seen = std::collections::HashSet::new();
    two_columns(text, &["category", "intent", "label"], &["answer"], "category,answer")?
        .into_iter()
        .map(|(line, intent, answer)| {
            check_intent(line, &intent)?;
            if intent == OUT_OF_SCOPE_INTENT {
                return Err(err(
                    line,
                    format!("the category {OUT_OF_SCOPE_INTENT:?} is reserved for questions the bot hands to a person and takes no answer"),
                ));
            }
            if answer.is_empty() || answer.chars().count() > MAX_ANSWER_CHARS {
                return Err(err(line, format!("the answer needs 1 to {MAX_ANSWER_CHARS} characters")));
            }
            if !seen.insert(intent.clone()) {
                return Err(err(line, format!("the category {intent:?} has a second answer")));
            }
            Ok((intent, answer))
        })
        .collect()
}

/// The line on which each element of a top-level JSON array starts.
fn item_lines(text: &str) -> Vec<usize> {
    let (mut depth, mut in_str, mut escaped, mut line) = (0i32, false, false, 1);
    let mut out = Vec::new();
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => {
                if depth == 1 && c == '{' {
                    out.push(line);
                }
                depth += 1;
            }
            '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_takes_its_title_from_the_first_heading() {
        let d = parse(Format::Markdown, "Intro line\n# Card delivery\nCards arrive in 5 days.\n", Some("cards.md")).unwrap();
        assert_eq!(d[0].id.as_str(), "card-delivery");
        assert_eq!(d[0].title, "Card delivery");
        assert_eq!(d[0].body, "Intro line\nCards arrive in 5 days.");
        assert_eq!(parse(Format::Markdown, "no heading here", None).unwrap_err().line, 1);
    }

    #[test]
    fn csv_faq_pairs_become_articles_and_errors_name_their_line() {
        let d = parse(Format::Csv, "question,answer\nWhere is my card?,\"It arrives in 5 days, usually.\"\nHow do I pay?,By card.\n", None)
            .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].body, "It arrives in 5 days, usually.");
        let e = parse(Format::Csv, "question,answer\nok,fine\nmissing answer,\n", None).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(parse(Format::Csv, "text,category\na,b\n", None).is_err());
        let e = parse(Format::Csv, "question,answer\na,b,c\n", None).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn json_items_are_checked_with_their_line() {
        let d = parse(Format::Json, r#"[{"question": "Q1", "answer": "A1"}, {"title": "T2", "body": "B2"}]"#, None).unwrap();
        assert_eq!(d[1].id.as_str(), "t2");
        let e = parse(Format::Json, "[\n  {\"question\": \"Q1\", \"answer\": \"A1\"},\n  {\"question\": \"Q2\"}\n]", None).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(parse(Format::Json, "{oops", None).is_err());
    }

    #[test]
    fn labelled_examples_are_read_with_their_lines() {
        let e = parse_examples("text,category\nMy card has not arrived,card_arrival\n\" Lost it \",lost_card\n").unwrap();
        assert_eq!(
            e,
            vec![
                LabelledExample { text: "My card has not arrived".into(), intent: "card_arrival".into() },
                LabelledExample { text: "Lost it".into(), intent: "lost_card".into() },
            ]
        );
        assert_eq!(parse_examples("text,category\nok,a\n,b\n").unwrap_err().line, 3);
        assert_eq!(parse_examples("text,category\nok,a\nno intent,\n").unwrap_err().line, 3);
        assert_eq!(parse_examples("text,category\nok,a\nok,a,extra\n").unwrap_err().line, 3);
        assert_eq!(parse_examples("question,answer\nq,a\n").unwrap_err().line, 1);
        assert_eq!(parse_examples("text,category\n").unwrap_err().line, 1);
    }

    #[test]
    fn answers_are_read_and_a_second_answer_is_refused() {
        let a = parse_answers("category,answer\ncard_arrival,\"Cards arrive in 5 days, usually.\"\n").unwrap();
        assert_eq!(a, vec![("card_arrival".to_string(), "Cards arrive in 5 days, usually.".to_string())]);
        assert_eq!(parse_answers("category,answer\na,x\na,y\n").unwrap_err().line, 3);
        assert_eq!(parse_answers("category,answer\na,\n").unwrap_err().line, 2);
    }

    #[test]
    fn the_reserved_intent_takes_examples_but_no_answer() {
        let e = parse_examples("text,category\nCan I get a mortgage?,out_of_scope\n").unwrap();
        assert_eq!(e, vec![LabelledExample { text: "Can I get a mortgage?".into(), intent: OUT_OF_SCOPE_INTENT.into() }]);
        let e = parse_answers("category,answer\ncard_arrival,In 5 days.\nout_of_scope,Ask a person.\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("reserved"), "{e}");
    }

    #[test]
    fn csv_kind_follows_the_header() {
        assert_eq!(csv_kind("text,category\na,b\n"), Some(CsvKind::Examples));
        assert_eq!(csv_kind("question,answer\na,b\n"), Some(CsvKind::Articles));
        assert_eq!(csv_kind("category,answer\na,b\n"), Some(CsvKind::Answers));
        assert_eq!(csv_kind("foo,bar\n"), None);
    }

    #[test]
    fn duplicate_titles_are_refused() {
        assert!(parse(Format::Csv, "question,answer\nSame,a\nsame,b\n", None).is_err());
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(Format::detect("faq.CSV"), Some(Format::Csv));
        assert_eq!(Format::detect("text/markdown; charset=utf-8"), Some(Format::Markdown));
        assert_eq!(Format::detect("application/json"), Some(Format::Json));
        assert_eq!(Format::detect("image/png"), None);
    }
}
