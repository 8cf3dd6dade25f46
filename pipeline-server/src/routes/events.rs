//! `/api/v1/events`: a server-sent-events stream of what changes (commits finished, jobs
//! changing state, datums recorded, log lines as user code prints them), from the engine's
//! change feed.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use pipeline_core::pps::{Event, Events};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;

/// The events routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Which events a stream carries (all when empty).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Only events about this pipeline, `[PROJECT/]NAME` (commits: of the repo of this
    /// name).
    pub pipeline: Option<String>,
    /// Only events about this job (commits: of this commit set).
    pub job: Option<String>,
}

impl EventsQuery {
    /// Whether `e` passes the filter (`lagged` always does).
    pub fn matches(&self, e: &Event) -> bool {
        if matches!(e, Event::Lagged { .. }) {
            return true;
        }
        self.pipeline.as_deref().is_none_or(|p| {
            let wanted = pipeline_core::pps::canonical_pipeline_id(p);
            let wanted = wanted.as_deref().unwrap_or(p);
            e.pipeline().as_deref() == Some(wanted)
        }) && self.job.as_deref().is_none_or(|j| e.job() == Some(j))
    }
}

/// Server-sent events from now on: each has the event's `type` as its SSE event name and the
/// event as JSON data (`commit_finished`: a CommitInfo; `job`: a JobInfo; `datum`: a
/// DatumEvent; `log`: a LogLine, sent once, as user code prints it; `lagged`: this client
/// fell behind and missed `missed` events, re-read what it follows). The stream ends when
/// the server stops.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsQuery),
    responses(
        (status = 200, description = "An endless `text/event-stream`; each event's data is one `Event`",
            content_type = "text/event-stream", body = Event),
        (status = 400, body = ErrorBody)),
    )]
async fn events(
    State(s): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    // Subscribed before answering: a client that has the response head sees every later change.
    let feed = s.engine().subscribe();
    let stream = futures::stream::unfold(
        (feed, s.stopping().clone(), q),
        |(mut feed, stop, q)| async move {
            let e = next_matching(&mut feed, &stop, &q).await?;
            Some((Ok(sse_event(&e)), (feed, stop, q)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The next event `q` lets through; `None` when the server stops or the feed ends.
async fn next_matching(
    feed: &mut Events,
    stop: &CancellationToken,
    q: &EventsQuery,
) -> Option<Event> {
    loop {
        let e = tokio::select! {
            _ = stop.cancelled() => return None,
            e = feed.recv() => e?,
        };
        if q.matches(&e) {
            return Some(e);
        }
    }
}

fn sse_event(e: &Event) -> SseEvent {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    SseEvent::default().event(e.kind()).data(data)
}
