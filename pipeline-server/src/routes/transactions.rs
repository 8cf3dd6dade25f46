//! `/api/v1/transactions`: pachctl's transactions. Start one, append requests (create or
//! delete repos and branches, start or finish commits, create pipelines), then finish it:
//! every request is applied in one store transaction with one commit set, or none is.
//! Stopping and resuming a transaction is the client's business (which one is active); the
//! server only keeps the queued requests.

use axum::extract::State;
use axum::http::StatusCode;
use pipeline_core::pps::{TransactionFinished, TransactionInfo, TransactionRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// The transaction routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_transactions, start_transaction))
        .routes(routes!(inspect_transaction, delete_transaction))
        .routes(routes!(append_request))
        .routes(routes!(finish_transaction))
}

const ID_DOC: &str = "Transaction ID (32 hexadecimal digits)";

/// Every transaction not finished or deleted yet, oldest first.
#[utoipa::path(get, path = "/api/v1/transactions", tag = "transactions",
    responses((status = 200, body = Vec<TransactionInfo>), (status = 500, body = ErrorBody)))]
async fn list_transactions(State(s): State<AppState>) -> ApiResult<Json<Vec<TransactionInfo>>> {
    s.blocking(|e| Ok(e.list_transactions()?)).await.map(Json)
}

/// Starts an empty transaction.
#[utoipa::path(post, path = "/api/v1/transactions", tag = "transactions",
    responses((status = 201, body = TransactionInfo), (status = 500, body = ErrorBody)))]
async fn start_transaction(
    State(s): State<AppState>,
) -> ApiResult<(StatusCode, Json<TransactionInfo>)> {
    let info = s.blocking(|e| Ok(e.start_transaction()?)).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// One transaction and its queued requests.
#[utoipa::path(get, path = "/api/v1/transactions/{id}", tag = "transactions",
    params(("id" = String, Path, description = ID_DOC)),
    responses((status = 200, body = TransactionInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_transaction(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TransactionInfo>> {
    s.blocking(move |e| Ok(e.inspect_transaction(&id)?))
        .await
        .map(Json)
}

/// Deletes a transaction; none of its requests runs.
#[utoipa::path(delete, path = "/api/v1/transactions/{id}", tag = "transactions",
    params(("id" = String, Path, description = ID_DOC)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_transaction(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.blocking(move |e| Ok(e.delete_transaction(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues one request at the end of a transaction (checked now: references parse, a spec
/// parses and passes the store-free rules; the rest is checked when it finishes). Answers
/// with the transaction.
#[utoipa::path(post, path = "/api/v1/transactions/{id}/requests", tag = "transactions",
    request_body = TransactionRequest, params(("id" = String, Path, description = ID_DOC)),
    responses((status = 200, body = TransactionInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn append_request(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(request): Json<TransactionRequest>,
) -> ApiResult<Json<TransactionInfo>> {
    s.blocking(move |e| Ok(e.append_transaction_request(&id, request)?))
        .await
        .map(Json)
}

/// Finishes a transaction: every request applied in order in one store transaction, every
/// commit they start in one commit set (whose jobs the answer lists; they run in the
/// background). When a request fails, nothing is applied, the error names the request, and
/// the transaction stays.
#[utoipa::path(post, path = "/api/v1/transactions/{id}/finish", tag = "transactions",
    params(("id" = String, Path, description = ID_DOC)),
    responses((status = 200, body = TransactionFinished), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn finish_transaction(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TransactionFinished>> {
    let done = s.engine().finish_transaction(&id).await;
    s.notify_changed();
    Ok(Json(done?))
}
