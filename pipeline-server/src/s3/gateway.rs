//! The `s3s::S3` implementation: each S3 operation as calls on the store, on the blocking
//! pool. Reads resolve the bucket's branch head (or its commit); writes go through the
//! store's auto-commit rule (`Store::write_auto_commit`, as `pipectl put file`): one commit
//! per object written, or into the branch's open commit.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use pipeline_core::pfs::{CommitRef, FileInfo, FileKind, PfsError, Store};
use pipeline_core::pps::Engine;
use pipeline_core::pps::job_gateway::{JobBuckets, OUTPUT_BUCKET};
use s3s::dto::{self, ETag, Timestamp};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::bucket::Bucket;
use super::errors::{bad_name, from_pfs, internal, read_only};
use super::multipart::Uploads;
use crate::state::AppState;

/// The gateway: the engine it serves, what it serves (its scope), where the server learns
/// of writes, and the uploads in progress.
#[derive(Clone)]
pub struct Gateway {
    pub(super) engine: Engine,
    pub(super) scope: Arc<Scope>,
    /// The server's state, told of every write (the console and event stream follow it);
    /// `None` for a job's gateway.
    pub(super) state: Option<AppState>,
    pub(super) uploads: Uploads,
    pub(super) spool: Option<PathBuf>,
}

/// What a gateway serves.
#[derive(Debug)]
pub enum Scope {
    /// Every branch of every repo, as `BRANCH.REPO[.PROJECT]` (the server's gateway).
    Server,
    /// One job's buckets: its S3 inputs, read-only, and its output commit as `out`.
    Job(JobBuckets),
}

/// Where a write goes: a branch (with the auto-commit rule) or a job's open output commit.
pub(super) enum Target {
    Branch(Bucket),
    Commit(CommitRef),
}

impl Gateway {
    /// A gateway over `state`'s engine serving every branch; multipart parts are spooled
    /// below `spool` (the system's temporary directory when `None`).
    pub fn new(state: AppState, spool: Option<PathBuf>) -> Self {
        Gateway {
            engine: state.engine().clone(),
            scope: Arc::new(Scope::Server),
            state: Some(state),
            uploads: Uploads::default(),
            spool,
        }
    }

    /// A gateway serving one job's buckets from `engine`'s store.
    pub fn for_job(engine: Engine, buckets: JobBuckets, spool: Option<PathBuf>) -> Self {
        Gateway {
            engine,
            scope: Arc::new(Scope::Job(buckets)),
            state: None,
            uploads: Uploads::default(),
            spool,
        }
    }

    /// What a request's work on the blocking pool sees.
    pub(super) fn ctx(&self) -> Ctx {
        Ctx {
            engine: self.engine.clone(),
            scope: self.scope.clone(),
        }
    }

    /// Tells the server of a write.
    pub(super) fn notify_changed(&self) {
        if let Some(s) = &self.state {
            s.notify_changed();
        }
    }

    /// Runs `f` on the blocking pool with the engine and the scope.
    pub(super) async fn run<T, F>(&self, f: F) -> S3Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Ctx) -> S3Result<T> + Send + 'static,
    {
        let ctx = self.ctx();
        tokio::task::spawn_blocking(move || f(&ctx))
            .await
            .map_err(|e| internal("the store task ended", e))?
    }
}

/// The engine and the gateway's scope, for work on the blocking pool.
pub(super) struct Ctx {
    engine: Engine,
    scope: Arc<Scope>,
}

impl Ctx {
    /// The store.
    pub(super) fn store(&self) -> &Store {
        self.engine.store()
    }

    /// The engine.
    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What the gateway serves.
    pub(super) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The commit reads of bucket `name` see; `NoSuchBucket` when it is not served (its
    /// branch or commit does not exist).
    pub(super) fn read_commit(&self, name: &str) -> S3Result<CommitRef> {
        match &*self.scope {
            Scope::Server => open_bucket(self.store(), name).map(|(_, c)| c),
            Scope::Job(j) => j.commit(name).cloned().ok_or_else(|| not_served(j, name)),
        }
    }

    /// Where writes to bucket `name` go; its branch must exist and it must not name a
    /// commit nor be a spout's output branch (`AccessDenied`), or, for a job, it must be
    /// `out`.
    pub(super) fn writable(&self, name: &str) -> S3Result<Target> {
        match &*self.scope {
            Scope::Server => {
                let (b, _) = open_bucket(self.store(), name)?;
                if b.read_only() {
                    return Err(read_only(name));
                }
                // Nobody writes a spout's output branch through the gateway.
                self.engine
                    .check_output_write(&b.branch, None)
                    .map_err(|e| from_pfs(&e, name))?;
                Ok(Target::Branch(b))
            }
            Scope::Job(j) => match (&j.output, j.commit(name)) {
                (Some(out), Some(_)) if name == OUTPUT_BUCKET => Ok(Target::Commit(out.clone())),
                (_, Some(_)) => Err(S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    format!("bucket {name:?} is an input of job {}: read-only", j.job),
                )),
                (_, None) => Err(not_served(j, name)),
            },
        }
    }

    /// Runs `write` on the target: a branch with the auto-commit rule (a commit that
    /// finished with an error, e.g. a file/directory path collision, is the request's
    /// error), or the job's open output commit.
    pub(super) fn write<T>(
        &self,
        target: &Target,
        name: &str,
        write: impl FnOnce(&CommitRef) -> Result<T, PfsError>,
    ) -> S3Result<T> {
        match target {
            Target::Branch(b) => write_branch(self.store(), b, name, write),
            Target::Commit(c) => write(c).map_err(|e| from_pfs(&e, name)),
        }
    }

    /// A file of bucket `bucket` (a directory is no object).
    pub(super) fn stat(&self, bucket: &str, key: &str) -> S3Result<(CommitRef, FileInfo)> {
        let path = key_path(key).map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::NoSuchKey,
                format!("bucket {bucket:?}: {key:?} is no object (keys are file paths)"),
            )
        })?;
        let c = self.read_commit(bucket)?;
        let f = self
            .store()
            .inspect_file(&c, &path)
            .map_err(|e| from_pfs(&e, bucket))?;
        if f.kind == FileKind::Dir {
            return Err(S3Error::with_message(
                S3ErrorCode::NoSuchKey,
                format!("bucket {bucket:?}: {key:?} is a directory, not an object"),
            ));
        }
        Ok((c, f))
    }
}

/// `NoSuchBucket` for a bucket a job's gateway does not serve, naming those it does.
fn not_served(j: &JobBuckets, name: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchBucket,
        format!(
            "bucket {name:?}: the gateway of job {} serves {}",
            j.job,
            j.names().join(", ")
        ),
    )
}

/// The bucket `name` names and the commit its reads see; `NoSuchBucket` when its branch (or
/// commit) does not exist.
fn open_bucket(store: &Store, name: &str) -> S3Result<(Bucket, CommitRef)> {
    let b = Bucket::parse(name).map_err(|e| bad_name(&e))?;
    store
        .inspect_branch(&b.branch)
        .map_err(|e| from_pfs(&e, name))?;
    let c = store
        .resolve_commit(b.repo(), b.commitish())
        .map_err(|e| from_pfs(&e, name))?;
    Ok((b, c))
}

/// The store path of an object key.
pub(super) fn key_path(key: &str) -> S3Result<String> {
    if key.is_empty() || key.ends_with('/') {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("object key {key:?}: expected a file path (not empty, not ending in '/')"),
        ));
    }
    Ok(format!("/{key}"))
}

/// The S3 ETag of stored content: the first 32 hex digits of its hash.
pub(super) fn etag_of(f: &FileInfo) -> String {
    f.hash.to_hex()[..32].to_string()
}

/// When a commit was last written: finished, else started.
pub(super) fn modified(store: &Store, c: &CommitRef) -> Timestamp {
    let ms = store
        .inspect_commit(c)
        .map(|i| i.finished_ms.unwrap_or(i.started_ms))
        .unwrap_or(0);
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

/// Runs `write` on `bucket`'s branch with the auto-commit rule; a commit that finished with
/// an error (e.g. a file/directory path collision) is the request's error.
fn write_branch<T>(
    store: &Store,
    bucket: &Bucket,
    name: &str,
    write: impl FnOnce(&CommitRef) -> Result<T, PfsError>,
) -> S3Result<T> {
    let w = store
        .write_auto_commit(bucket.repo(), Some(&bucket.branch.name), write)
        .map_err(|e| from_pfs(&e, name));
    for r in store.take_recovered_writes() {
        tracing::info!(recovered = %r, "s3 gateway: recovered an interrupted write");
    }
    let w = w?;
    if let Some(err) = w.error() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("bucket {name:?}: the commit was finished with an error: {err}"),
        ));
    }
    Ok(w.value)
}

fn ok<T>(output: T) -> S3Result<S3Response<T>> {
    Ok(S3Response::new(output))
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        _req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let buckets = self.run(super::buckets::list).await?;
        ok(dto::ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        })
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        let name = req.input.bucket;
        self.run(move |e| e.read_commit(&name).map(|_| ())).await?;
        ok(dto::HeadBucketOutput::default())
    }

    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let name = req.input.bucket;
        self.run(move |e| super::buckets::create(e, &name)).await?;
        self.notify_changed();
        ok(dto::CreateBucketOutput::default())
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let name = req.input.bucket;
        self.run(move |e| super::buckets::delete(e, &name)).await?;
        self.notify_changed();
        ok(dto::DeleteBucketOutput::default())
    }

    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        super::listing::v1(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        super::listing::v2(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        super::objects::get(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let (bucket, key) = (req.input.bucket, req.input.key);
        let (f, at) = self
            .run(move |e| {
                let (c, f) = e.stat(&bucket, &key)?;
                Ok((f, modified(e.store(), &c)))
            })
            .await?;
        ok(dto::HeadObjectOutput {
            content_length: Some(i64::try_from(f.size).unwrap_or(i64::MAX)),
            e_tag: Some(ETag::Strong(etag_of(&f))),
            last_modified: Some(at),
            accept_ranges: Some("bytes".into()),
            content_type: Some("application/octet-stream".into()),
            ..Default::default()
        })
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let out = super::objects::put(self, req.input).await?;
        self.notify_changed();
        ok(out)
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket, req.input.key);
        self.run(move |e| {
            let path = key_path(&key)?;
            let b = e.writable(&bucket)?;
            // S3 deletes are idempotent: an absent key is no error.
            match e.write(&b, &bucket, |c| e.store().delete_file(c, &path)) {
                Err(err) if *err.code() == S3ErrorCode::NoSuchKey => Ok(()),
                r => r.map(|_| ()),
            }
        })
        .await?;
        self.notify_changed();
        ok(dto::DeleteObjectOutput::default())
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let out = super::objects::delete_many(self, req.input).await?;
        self.notify_changed();
        ok(out)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        super::objects::create_upload(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        super::objects::upload_part(self, req.input)
            .await
            .map(S3Response::new)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        let out = super::objects::complete_upload(self, req.input).await?;
        self.notify_changed();
        ok(out)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let i = req.input;
        let up = self.uploads.take(&i.upload_id, &i.bucket, &i.key)?;
        // Removing the spool directory may take a while for big parts.
        let _ = tokio::task::spawn_blocking(move || drop(up)).await;
        ok(dto::AbortMultipartUploadOutput::default())
    }
}
