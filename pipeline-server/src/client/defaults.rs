//! Cluster and project defaults calls.

use axum::http::Method;
use pipeline_core::pps::{DefaultsChange, DefaultsRecord, DefaultsScope, SetDefaultsOptions};

use super::{Client, ClientResult, NO_BODY, query, seg};
use crate::routes::defaults::SetDefaults;

/// The route of the defaults of `scope`.
fn path(scope: &DefaultsScope) -> String {
    match scope {
        DefaultsScope::Cluster => "/api/v1/defaults/cluster".to_string(),
        DefaultsScope::Project(p) => format!("/api/v1/defaults/projects/{}", seg(p)),
    }
}

impl Client {
    /// `GET /api/v1/defaults/cluster` or `/api/v1/defaults/projects/{project}`.
    pub async fn inspect_defaults(&self, scope: &DefaultsScope) -> ClientResult<DefaultsRecord> {
        self.json(Method::GET, &path(scope), NO_BODY).await
    }

    /// `PUT` of the defaults of `scope`: `text` is the document (JSON or YAML), `source_name`
    /// names it in error positions.
    pub async fn set_defaults(
        &self,
        scope: &DefaultsScope,
        text: &str,
        source_name: &str,
        opts: SetDefaultsOptions,
    ) -> ClientResult<DefaultsChange> {
        let body = SetDefaults {
            defaults: text.to_string(),
            source_name: source_name.to_string(),
            regenerate: opts.regenerate,
            reprocess: opts.reprocess,
            dry_run: opts.dry_run,
        };
        self.json(Method::PUT, &path(scope), Some(&body)).await
    }

    /// `DELETE` of the defaults of `scope`.
    pub async fn delete_defaults(
        &self,
        scope: &DefaultsScope,
        opts: SetDefaultsOptions,
    ) -> ClientResult<DefaultsChange> {
        let flags = [
            ("regenerate", opts.regenerate),
            ("reprocess", opts.reprocess),
            ("dry_run", opts.dry_run),
        ];
        let pairs: Vec<(&str, String)> = flags
            .iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| (*k, "true".to_string()))
            .collect();
        let url = format!("{}{}", path(scope), query(&pairs));
        self.json(Method::DELETE, &url, NO_BODY).await
    }
}
