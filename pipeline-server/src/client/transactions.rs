//! Transaction calls.

use axum::http::Method;
use pipeline_core::pps::{TransactionFinished, TransactionInfo, TransactionRequest};

use super::{Client, ClientResult, NO_BODY, seg};

impl Client {
    /// `POST /api/v1/transactions`: starts an empty transaction.
    pub async fn start_transaction(&self) -> ClientResult<TransactionInfo> {
        self.json(Method::POST, "/api/v1/transactions", NO_BODY)
            .await
    }

    /// `GET /api/v1/transactions`: every open transaction, oldest first.
    pub async fn list_transactions(&self) -> ClientResult<Vec<TransactionInfo>> {
        self.json(Method::GET, "/api/v1/transactions", NO_BODY)
            .await
    }

    /// `GET /api/v1/transactions/{id}`.
    pub async fn inspect_transaction(&self, id: &str) -> ClientResult<TransactionInfo> {
        let path = format!("/api/v1/transactions/{}", seg(id));
        self.json(Method::GET, &path, NO_BODY).await
    }

    /// `POST /api/v1/transactions/{id}/requests`: queues `request`.
    pub async fn append_transaction_request(
        &self,
        id: &str,
        request: &TransactionRequest,
    ) -> ClientResult<TransactionInfo> {
        let path = format!("/api/v1/transactions/{}/requests", seg(id));
        self.json(Method::POST, &path, Some(request)).await
    }

    /// `POST /api/v1/transactions/{id}/finish`: applies every queued request at once.
    pub async fn finish_transaction(&self, id: &str) -> ClientResult<TransactionFinished> {
        let path = format!("/api/v1/transactions/{}/finish", seg(id));
        self.json(Method::POST, &path, NO_BODY).await
    }

    /// `DELETE /api/v1/transactions/{id}`.
    pub async fn delete_transaction(&self, id: &str) -> ClientResult<()> {
        let path = format!("/api/v1/transactions/{}", seg(id));
        self.request(Method::DELETE, &path, NO_BODY).await?;
        Ok(())
    }
}
