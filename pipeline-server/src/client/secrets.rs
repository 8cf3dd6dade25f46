//! Secret calls (values are never returned).

use axum::http::Method;
use pipeline_core::pps::secrets::SecretInfo;

use super::{Client, ClientResult, NO_BODY, seg};
use crate::routes::secrets::CreateSecret;

impl Client {
    /// `GET /api/v1/secrets`.
    pub async fn list_secrets(&self) -> ClientResult<Vec<SecretInfo>> {
        self.json(Method::GET, "/api/v1/secrets", NO_BODY).await
    }

    /// `POST /api/v1/secrets`: stores the secret of a manifest (JSON or YAML).
    pub async fn create_secret(&self, manifest: &str) -> ClientResult<SecretInfo> {
        let body = CreateSecret {
            manifest: manifest.to_string(),
        };
        self.json(Method::POST, "/api/v1/secrets", Some(&body))
            .await
    }

    /// `GET /api/v1/secrets/{name}`.
    pub async fn inspect_secret(&self, name: &str) -> ClientResult<SecretInfo> {
        let path = format!("/api/v1/secrets/{}", seg(name));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `DELETE /api/v1/secrets/{name}`.
    pub async fn delete_secret(&self, name: &str) -> ClientResult<()> {
        let path = format!("/api/v1/secrets/{}", seg(name));
        self.request(Method::DELETE, &path, NO_BODY).await?;
        Ok(())
    }
}
