//! `/api/v1/secrets`: Kubernetes `Secret` manifests kept in the store for pipelines'
//! `transform.secrets`. Answers carry names, types and keys, never values.

use axum::extract::State;
use axum::http::StatusCode;
use pipeline_core::pps::secrets::SecretInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// The secret routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets, create_secret))
        .routes(routes!(inspect_secret, delete_secret))
}

/// Body of `POST /api/v1/secrets`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateSecret {
    /// A Kubernetes `Secret` manifest, JSON or YAML.
    pub manifest: String,
}

/// Every stored secret (without values).
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets",
    responses((status = 200, body = Vec<SecretInfo>), (status = 500, body = ErrorBody)))]
async fn list_secrets(State(s): State<AppState>) -> ApiResult<Json<Vec<SecretInfo>>> {
    s.blocking(|e| Ok(e.list_secrets()?)).await.map(Json)
}

/// Stores the secret of a manifest; refused (409) when one of that name exists.
#[utoipa::path(post, path = "/api/v1/secrets", tag = "secrets", request_body = CreateSecret,
    responses((status = 201, body = SecretInfo), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_secret(
    State(s): State<AppState>,
    Json(req): Json<CreateSecret>,
) -> ApiResult<(StatusCode, Json<SecretInfo>)> {
    let info = s
        .blocking(move |e| Ok(e.create_secret(&req.manifest)?))
        .await?;
    s.notify_changed();
    Ok((StatusCode::CREATED, Json(info)))
}

/// One secret (without values).
#[utoipa::path(get, path = "/api/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 200, body = SecretInfo), (status = 404, body = ErrorBody)))]
async fn inspect_secret(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    s.blocking(move |e| Ok(e.inspect_secret(&name)?))
        .await
        .map(Json)
}

/// Deletes a secret.
#[utoipa::path(delete, path = "/api/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_secret(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.blocking(move |e| Ok(e.delete_secret(&name)?)).await?;
    s.notify_changed();
    Ok(StatusCode::NO_CONTENT)
}
