//! `/api/v1/kb`: the tenant's knowledge base — list, add, edit, remove,
//! import a file; list the labelled examples, add or remove one; ask for a
//! new intent model and see where it stands. Staff read the articles; admins
//! change them and teach the bot.
//!
//! The lists (of articles and of examples) are folded from the knowledge
//! base's stream in the log (one stream per tenant), so they always show the
//! latest change. Training runs
//! in the background: `POST /api/v1/kb/train` (and adding or removing an
//! example) records `IntentTrainingRequested`; an AI worker trains and
//! records the model; `GET /api/v1/kb/model` says `training` until then,
//! or `failed` (with the reason) when the worker gave up on it.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::service;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use jamuna_commands::seal;
use jamuna_domain::knowledge_base::import::{self, Draft, Format};
use jamuna_domain::knowledge_base::{
    KnowledgeBase, KnowledgeBaseCommand, KnowledgeBaseEvent, LabelledExample, MAX_EXAMPLES, held_examples,
};
use jamuna_domain::{ArticleId, StreamId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/kb/articles", get(list).post(add))
        .route("/api/v1/kb/articles/{id}", put(update).delete(remove))
        .route("/api/v1/kb/import", post(import_file))
        .route("/api/v1/kb/examples", get(list_examples).post(add_example).delete(remove_example))
        .route("/api/v1/kb/train", post(train))
        .route("/api/v1/kb/model", get(model))
}

/// What an import did: in articles, or for a `text,category` CSV in
/// labelled examples, or for a `category,answer` CSV in intent answers.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ImportReport {
    added: usize,
    updated: usize,
    unchanged: usize,
}

/// One article of the knowledge base.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct Article {
    id: String,
    title: String,
    /// Markdown.
    body: String,
    /// Where it came from (a file name or URL), if known.
    source: Option<String>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
    /// How many bot answers cited it over the last year (from the analytics read model).
    citations: u64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ArticleList {
    items: Vec<Article>,
}

/// Staff list the knowledge base, by id.
#[utoipa::path(get, path = "/api/v1/kb/articles", tag = "kb", operation_id = "listArticles", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every article", body = ArticleList),
        (status = 403, description = "Agents and admins only", body = ErrorBody),
    ))]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require_staff()?;
    let stream = StreamId::knowledge_base(&caller.tenant);
    let mut articles: BTreeMap<String, Value> = BTreeMap::new();
    for recorded in state.commands.log().read_stream(&stream, 0).await? {
        let at = recorded.meta.occurred_at;
        match seal::decode::<KnowledgeBaseEvent>(&recorded).map_err(ApiError::internal)? {
            KnowledgeBaseEvent::ArticleAdded { article_id, title, body, source, .. } => {
                articles.insert(
                    article_id.to_string(),
                    json!({"id": article_id, "title": title, "body": body, "source": source, "created_at": at, "updated_at": at}),
                );
            }
            KnowledgeBaseEvent::ArticleUpdated { article_id, title, body } => {
                if let Some(a) = articles.get_mut(article_id.as_str()) {
                    a["title"] = json!(title);
                    a["body"] = json!(body);
                    a["updated_at"] = json!(at);
                }
            }
            KnowledgeBaseEvent::ArticleRemoved { article_id } => {
                articles.remove(article_id.as_str());
            }
            KnowledgeBaseEvent::ExamplesAdded { .. }
            | KnowledgeBaseEvent::ExamplesRemoved { .. }
            | KnowledgeBaseEvent::IntentAnswerSet { .. }
            | KnowledgeBaseEvent::IntentModelTrained { .. }
            | KnowledgeBaseEvent::IntentTrainingRequested { .. }
            | KnowledgeBaseEvent::IntentTrainingFailed { .. } => {}
        }
    }
    let cited = citations(&state, &caller).await?;
    for (id, a) in &mut articles {
        a["citations"] = json!(cited.get(id).copied().unwrap_or(0));
    }
    Ok(axum::Json(json!({"items": articles.into_values().collect::<Vec<_>>()})))
}

/// Bot answers citing each article over the last year, by article id.
async fn citations(state: &AppState, caller: &Caller) -> Result<BTreeMap<String, u64>, ApiError> {
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(365);
    let report = state.analytics.range(&caller.tenant, from, to).await?;
    let rows = report["citations"].as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(rows.iter().filter_map(|r| Some((r["article_id"].as_str()?.to_owned(), r["count"].as_u64()?))).collect())
}

async fn run(state: &AppState, caller: &Caller, command: KnowledgeBaseCommand) -> Result<usize, ApiError> {
    caller.require_admin()?;
    let stream = StreamId::knowledge_base(&caller.tenant);
    let done = state.commands.execute::<KnowledgeBase>(&stream, &command, &service::ctx(caller)).await?;
    Ok(done.events.len())
}

async fn run_events(
    state: &AppState,
    caller: &Caller,
    command: KnowledgeBaseCommand,
) -> Result<Vec<jamuna_domain::envelope::Envelope<KnowledgeBaseEvent>>, ApiError> {
    caller.require_admin()?;
    let stream = StreamId::knowledge_base(&caller.tenant);
    let done = state.commands.execute::<KnowledgeBase>(&stream, &command, &service::ctx(caller)).await?;
    Ok(done.events)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewArticle {
    /// Default: a slug of the title.
    #[schema(value_type = Option<super::schema::Id>)]
    id: Option<String>,
    /// Trimmed: 1 to 300 characters.
    #[schema(min_length = 1, max_length = 300, pattern = r"\S")]
    title: String,
    /// Markdown, not blank, at most 200 KiB (of UTF-8).
    #[schema(min_length = 1, max_length = 51200, pattern = r"\S")]
    body: String,
    source: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ArticleCreated {
    id: String,
}

/// Admins add an article.
#[utoipa::path(post, path = "/api/v1/kb/articles", tag = "kb", operation_id = "addArticle", request_body = NewArticle, security(("bearer" = [])),
    responses(
        (status = 201, description = "Added", body = ArticleCreated),
        (status = 400, description = "An invalid article id", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`article_exists`, `invalid_title`, `invalid_body`", body = ErrorBody),
    ))]
async fn add(
    State(state): State<AppState>,
    caller: Caller,
    super::json::ApiJson(a): super::json::ApiJson<NewArticle>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    caller.require_admin()?;
    let id = match a.id {
        Some(id) => ArticleId::parse(id).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => import::slug(&a.title).unwrap_or_else(|| ArticleId::from_uuid(uuid::Uuid::now_v7())),
    };
    let command = KnowledgeBaseCommand::AddArticle {
        tenant: caller.tenant.clone(),
        article_id: id.clone(),
        title: a.title,
        body: a.body,
        source: a.source,
    };
    run(&state, &caller, command).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"id": id}))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangedArticle {
    /// Trimmed: 1 to 300 characters.
    #[schema(min_length = 1, max_length = 300, pattern = r"\S")]
    title: String,
    /// Markdown, not blank, at most 200 KiB (of UTF-8).
    #[schema(min_length = 1, max_length = 51200, pattern = r"\S")]
    body: String,
}

fn article_id(id: &str) -> Result<ArticleId, ApiError> {
    ArticleId::parse(id).map_err(|_| ApiError::NotFound("article"))
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ArticleChanged {
    id: String,
    /// False when title and body were already so.
    changed: bool,
}

/// Admins replace an article's title and body.
#[utoipa::path(put, path = "/api/v1/kb/articles/{id}", tag = "kb", operation_id = "updateArticle", params(("id" = String, Path, description = "The article id")), request_body = ChangedArticle, security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = ArticleChanged),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "An invalid article id", body = ErrorBody),
        (status = 409, description = "`unknown_article`, `invalid_title`, `invalid_body`", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::json::ApiJson(a): super::json::ApiJson<ChangedArticle>,
) -> Result<axum::Json<Value>, ApiError> {
    let id = article_id(&id)?;
    let changed =
        run(&state, &caller, KnowledgeBaseCommand::UpdateArticle { article_id: id.clone(), title: a.title, body: a.body }).await?;
    Ok(axum::Json(json!({"id": id, "changed": changed > 0})))
}

/// Admins remove an article.
#[utoipa::path(delete, path = "/api/v1/kb/articles/{id}", tag = "kb", operation_id = "removeArticle", params(("id" = String, Path, description = "The article id")), security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "An invalid article id", body = ErrorBody),
        (status = 409, description = "`unknown_article`", body = ErrorBody),
    ))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    run(&state, &caller, KnowledgeBaseCommand::RemoveArticle { article_id: article_id(&id)? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Imports a file (the body) whose format the content type names: all of it,
/// or — on any error, reported with its line — none of it. A CSV whose
/// header is `text,category` holds labelled examples for the intent model
/// (train it with `POST /api/v1/kb/train` or `jamuna kb train`); one whose header is `category,answer`
/// holds the answers to intents (none for `out_of_scope`, the reserved intent
/// of questions for a person: label them as examples instead).
#[utoipa::path(post, path = "/api/v1/kb/import", tag = "kb", operation_id = "importArticles", security(("bearer" = [])),
    request_body(description = "The file; its content type names the format", content(
        (String = "text/markdown"), (String = "text/csv"), (Object = "application/json"))),
    responses(
        (status = 200, description = "Imported", body = ImportReport),
        (status = 400, description = "An unknown content type, a file that is not UTF-8, or a parse error (with its line), such as an answer for the reserved intent `out_of_scope`", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`invalid_title`, `invalid_body`, `invalid_example`, `invalid_answer`, `too_many_examples`", body = ErrorBody),
    ))]
async fn import_file(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let format =
        Format::detect(content_type).ok_or_else(|| ApiError::BadRequest("send text/markdown, text/csv or application/json".into()))?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest("the file is not UTF-8 text".into()))?;
    if format == Format::Csv {
        let bad = |e: import::ImportError| ApiError::BadRequest(e.to_string());
        let (examples, answers) = match import::csv_kind(text) {
            Some(import::CsvKind::Examples) => (import::parse_examples(text).map_err(bad)?, vec![]),
            Some(import::CsvKind::Answers) => (vec![], import::parse_answers(text).map_err(bad)?),
            _ => (vec![], vec![]),
        };
        if !examples.is_empty() || !answers.is_empty() {
            let total = examples.len() + answers.len();
            let events = run_events(&state, &caller, KnowledgeBaseCommand::ImportExamples { examples, answers }).await?;
            let added: usize = events
                .iter()
                .map(|e| match &e.data {
                    KnowledgeBaseEvent::ExamplesAdded { examples } => examples.len(),
                    KnowledgeBaseEvent::IntentAnswerSet { .. } => 1,
                    _ => 0,
                })
                .sum();
            return Ok(axum::Json(json!({"added": added, "updated": 0, "unchanged": total - added})));
        }
    }
    let drafts: Vec<Draft> = import::parse(format, text, Some("upload")).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let total = drafts.len();
    let stream = StreamId::knowledge_base(&caller.tenant);
    let before = state.commands.load::<KnowledgeBase>(&stream).await?;
    let existing = drafts.iter().filter(|d| before.contains(&d.id)).count();
    let changed = run(&state, &caller, KnowledgeBaseCommand::Import { tenant: caller.tenant.clone(), articles: drafts }).await?;
    let added = total - existing;
    Ok(axum::Json(json!({"added": added, "updated": changed.saturating_sub(added), "unchanged": total - changed})))
}

/// The most examples one page of `GET /api/v1/kb/examples` holds.
pub const MAX_EXAMPLES_PAGE: usize = 200;
/// The longest `q` of `GET /api/v1/kb/examples`, in characters.
pub const MAX_EXAMPLE_SEARCH_CHARS: usize = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ExamplesQuery {
    /// Only the examples of this intent (its exact name).
    intent: Option<String>,
    /// Only the examples whose text contains this, ignoring case: at most
    /// 200 characters.
    #[param(max_length = 200)]
    q: Option<String>,
    /// How many matching examples to skip, 0 to 100,000 (the most a
    /// knowledge base holds; default 0).
    #[param(minimum = 0, maximum = 100000)]
    offset: Option<usize>,
    /// How many to answer, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

/// One labelled example, as `GET /api/v1/kb/examples` lists it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ListedExample {
    text: String,
    /// `out_of_scope`: a question the bot hands to a person.
    intent: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ExampleList {
    /// A page of the matching examples, by intent then text.
    items: Vec<ListedExample>,
    /// How many examples match (on every page).
    total: usize,
    /// Every intent with examples, and how many it has (whatever the filters).
    intents: BTreeMap<String, usize>,
}

/// The labelled examples, as `(intent, text)`: folded from the stream, as
/// the aggregate keeps only their hashes.
async fn examples(state: &AppState, caller: &Caller) -> Result<BTreeSet<(String, String)>, ApiError> {
    let recorded = state.commands.log().read_stream(&StreamId::knowledge_base(&caller.tenant), 0).await?;
    let events = recorded.iter().map(seal::decode::<KnowledgeBaseEvent>).collect::<Result<Vec<_>, _>>().map_err(ApiError::internal)?;
    Ok(held_examples(events).into_iter().map(|e| (e.intent, e.text)).collect())
}

/// Admins list the labelled examples, by intent then text, a page at a
/// time, with how many each intent has.
#[utoipa::path(get, path = "/api/v1/kb/examples", tag = "kb", operation_id = "listExamples", params(ExamplesQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the matching examples", body = ExampleList),
        (status = 400, description = "`limit` outside 1 to 200, `offset` outside 0 to 100,000, `q` over 200 characters, or an unknown or malformed parameter", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
    ))]
async fn list_examples(
    State(state): State<AppState>,
    caller: Caller,
    super::json::ApiQuery(p): super::json::ApiQuery<ExamplesQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=MAX_EXAMPLES_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit is 1 to {MAX_EXAMPLES_PAGE}")));
    }
    let offset = p.offset.unwrap_or(0);
    if offset > MAX_EXAMPLES {
        return Err(ApiError::BadRequest(format!("offset is 0 to {MAX_EXAMPLES}")));
    }
    if p.q.as_ref().is_some_and(|q| q.chars().count() > MAX_EXAMPLE_SEARCH_CHARS) {
        return Err(ApiError::BadRequest(format!("q is at most {MAX_EXAMPLE_SEARCH_CHARS} characters")));
    }
    let q = p.q.map(|q| q.to_lowercase());
    let examples = examples(&state, &caller).await?;
    let mut intents: BTreeMap<&str, usize> = BTreeMap::new();
    for (intent, _) in &examples {
        *intents.entry(intent).or_default() += 1;
    }
    let matching: Vec<&(String, String)> = examples
        .iter()
        .filter(|(intent, text)| {
            p.intent.as_ref().is_none_or(|want| want == intent) && q.as_ref().is_none_or(|q| text.to_lowercase().contains(q))
        })
        .collect();
    let items: Vec<Value> =
        matching.iter().skip(offset).take(limit).map(|(intent, text)| json!({"text": text, "intent": intent})).collect();
    Ok(axum::Json(json!({"items": items, "total": matching.len(), "intents": intents})))
}

/// One labelled example: a customer's question and the intent it expresses.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewExample {
    /// Trimmed: 1 to 2,000 characters.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    text: String,
    /// Trimmed: 1 to 100 characters, no control characters. An intent the
    /// knowledge base knows (it has examples or an answer), or a new one
    /// with its `answer`. `out_of_scope` is reserved: the tenant's examples
    /// of questions the bot hands to a person, known without examples and
    /// never given an answer.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    intent: String,
    /// The intent's answer (trimmed: 1 to 4,000 characters): required for a
    /// new intent; for a known one it replaces the answer. Refused for
    /// `out_of_scope` (409 `reserved_intent`).
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    answer: Option<String>,
}

/// The example to remove.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OldExample {
    #[schema(min_length = 1, max_length = 2000)]
    text: String,
    #[schema(min_length = 1, max_length = 100)]
    intent: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ExampleAdded {
    /// False when the example was already known.
    added: bool,
    /// True when a new model was asked for (it needs examples of 2 intents).
    training: bool,
}

fn example(text: &str, intent: &str) -> LabelledExample {
    LabelledExample { text: text.trim().to_owned(), intent: intent.trim().to_owned() }
}

/// Admins add one labelled example; the bot retrains in the background
/// (see `GET /api/v1/kb/model`).
#[utoipa::path(post, path = "/api/v1/kb/examples", tag = "kb", operation_id = "addExample", request_body = NewExample, security(("bearer" = [])),
    responses(
        (status = 201, description = "Added (or already known), and a training asked for", body = ExampleAdded),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`unknown_intent` (a new intent needs its `answer`), `reserved_intent` (an `answer` for `out_of_scope`, which hands its questions to a person), `invalid_example`, `invalid_answer`, `too_many_examples`", body = ErrorBody),
    ))]
async fn add_example(
    State(state): State<AppState>,
    caller: Caller,
    super::json::ApiJson(e): super::json::ApiJson<NewExample>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let command = KnowledgeBaseCommand::AddExample { example: example(&e.text, &e.intent), answer: e.answer };
    let events = run_events(&state, &caller, command).await?;
    let added = events.iter().any(|e| matches!(e.data, KnowledgeBaseEvent::ExamplesAdded { .. }));
    let training = events.iter().any(|e| matches!(e.data, KnowledgeBaseEvent::IntentTrainingRequested { .. }));
    Ok((StatusCode::CREATED, axum::Json(json!({"added": added, "training": training}))))
}

/// Admins remove one labelled example; the bot retrains in the background.
#[utoipa::path(delete, path = "/api/v1/kb/examples", tag = "kb", operation_id = "removeExample", request_body = OldExample, security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed, and a training asked for when 2 intents remain"),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`unknown_example`", body = ErrorBody),
    ))]
async fn remove_example(
    State(state): State<AppState>,
    caller: Caller,
    super::json::ApiJson(e): super::json::ApiJson<OldExample>,
) -> Result<StatusCode, ApiError> {
    run(&state, &caller, KnowledgeBaseCommand::RemoveExample { example: example(&e.text, &e.intent) }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why the training of the current examples failed.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct TrainingFailure {
    /// The AI worker's error: one line of at most 500 characters.
    #[schema(max_length = 500)]
    reason: String,
    /// RFC 3339.
    failed_at: String,
}

/// Where the tenant's intent model stands.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the handler's `json!` body
struct ModelStatus {
    /// How many labelled examples there are.
    examples: usize,
    /// The intents known (with examples or an answer), sorted.
    intents: Vec<String>,
    #[schema(value_type = super::schema::ModelState)]
    state: String,
    /// When the pending training was asked for (RFC 3339), if one is.
    requested_at: Option<String>,
    /// Why the training of the current examples failed, when `state` is
    /// `failed` (`null` otherwise); `POST /api/v1/kb/train` asks again.
    failure: Option<TrainingFailure>,
    /// The latest model's figures, as `IntentModelTrained` records them.
    #[schema(value_type = Option<Object>)]
    trained: Option<Value>,
}

async fn model_status(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let kb = state.commands.load::<KnowledgeBase>(&StreamId::knowledge_base(&caller.tenant)).await?;
    Ok(json!({
        "examples": kb.examples(),
        "intents": kb.intents(),
        "state": kb.model_state(),
        "requested_at": kb.training_requested_at(),
        "failure": kb.training_failure().map(|f| json!({"reason": f.reason, "failed_at": f.failed_at})),
        "trained": kb.trained(),
    }))
}

/// Admins see where the intent model stands (poll it while `training`; it
/// ends `trained`, or `failed` when the AI worker gave up).
#[utoipa::path(get, path = "/api/v1/kb/model", tag = "kb", operation_id = "intentModel", security(("bearer" = [])),
    responses(
        (status = 200, description = "The model's state", body = ModelStatus),
        (status = 403, description = "Admins only", body = ErrorBody),
    ))]
async fn model(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>, ApiError> {
    caller.require_admin()?;
    Ok(axum::Json(model_status(&state, &caller).await?))
}

/// Admins ask for a model trained on the current examples: an AI worker
/// trains it in the background (nothing new if one is already asked for).
#[utoipa::path(post, path = "/api/v1/kb/train", tag = "kb", operation_id = "trainIntentModel", security(("bearer" = [])),
    responses(
        (status = 202, description = "Asked for; the model's state", body = ModelStatus),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 409, description = "`no_examples`, `too_few_intents` (a model needs examples of 2 intents)", body = ErrorBody),
    ))]
async fn train(State(state): State<AppState>, caller: Caller) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    run(&state, &caller, KnowledgeBaseCommand::RequestIntentTraining).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(model_status(&state, &caller).await?)))
}
