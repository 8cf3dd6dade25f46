//! ListObjects (v1: marker) and ListObjectsV2 (continuation token, start-after) over
//! [`super::list::page`], with `encoding-type=url` when asked.
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::S3Result;
use s3s::dto::{self, ETag};

use super::errors::from_pfs;
use super::gateway::{Gateway, etag_of, modified};
use super::list::{ListPage, ListParams, MAX_KEYS, page};

/// A page of bucket `name` and the time its commit was written.
async fn run_page(
    g: &Gateway,
    name: String,
    p: ListParams,
) -> S3Result<(ListPage, dto::Timestamp)> {
    g.run(move |e| {
        let store = e.store();
        let c = e.read_commit(&name)?;
        let at = modified(store, &c);
        let pg = page(
            |dir, from| store.list_file_recursive_from(&c, dir, from),
            &p,
        )
        .map_err(|e| from_pfs(&e, &name))?;
        Ok((pg, at))
    })
    .await
}

fn max_keys(m: Option<i32>) -> usize {
    m.map_or(MAX_KEYS, |m| usize::try_from(m).unwrap_or(0).min(MAX_KEYS))
}

/// What S3's `encoding-type=url` leaves as it is: unreserved characters and `/`.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// How keys, prefixes and markers go out: as they are, or percent-encoded when the client
/// asked for `encoding-type=url` (boto3 always does, and decodes them back).
#[derive(Clone, Copy)]
struct Enc(bool);

impl Enc {
    fn of(e: Option<&dto::EncodingType>) -> Enc {
        Enc(e.is_some_and(|e| e.as_str() == dto::EncodingType::URL))
    }

    fn s(self, s: &str) -> String {
        if self.0 {
            utf8_percent_encode(s, KEEP).to_string()
        } else {
            s.to_string()
        }
    }

    fn opt(self, s: Option<String>) -> Option<String> {
        s.map(|s| self.s(&s))
    }
}

fn contents(
    pg: &ListPage,
    at: &dto::Timestamp,
    enc: Enc,
) -> (Vec<dto::Object>, Vec<dto::CommonPrefix>) {
    let objects = pg
        .objects
        .iter()
        .map(|f| dto::Object {
            key: Some(enc.s(&f.path[1..])),
            size: Some(i64::try_from(f.size).unwrap_or(i64::MAX)),
            e_tag: Some(ETag::Strong(etag_of(f))),
            last_modified: Some(at.clone()),
            storage_class: Some(dto::ObjectStorageClass::from_static(
                dto::ObjectStorageClass::STANDARD,
            )),
            ..Default::default()
        })
        .collect();
    let prefixes = pg
        .prefixes
        .iter()
        .map(|p| dto::CommonPrefix {
            prefix: Some(enc.s(p)),
        })
        .collect();
    (objects, prefixes)
}

/// ListObjects (v1).
pub async fn v1(g: &Gateway, i: dto::ListObjectsInput) -> S3Result<dto::ListObjectsOutput> {
    let p = ListParams {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: i.delimiter.clone(),
        after: i.marker.clone().filter(|m| !m.is_empty()),
        max_keys: max_keys(i.max_keys),
    };
    let max = p.max_keys;
    let enc = Enc::of(i.encoding_type.as_ref());
    let (pg, at) = run_page(g, i.bucket.clone(), p).await?;
    let (objects, prefixes) = contents(&pg, &at, enc);
    Ok(dto::ListObjectsOutput {
        name: Some(i.bucket),
        prefix: enc.opt(i.prefix),
        marker: enc.opt(i.marker),
        max_keys: Some(i32::try_from(max).unwrap_or(i32::MAX)),
        is_truncated: Some(pg.truncated),
        next_marker: enc.opt(pg.last.filter(|_| pg.truncated)),
        contents: Some(objects),
        common_prefixes: Some(prefixes),
        delimiter: enc.opt(i.delimiter),
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}

/// ListObjectsV2; the continuation token is the last key (or common prefix) shown.
pub async fn v2(g: &Gateway, i: dto::ListObjectsV2Input) -> S3Result<dto::ListObjectsV2Output> {
    let after = i
        .continuation_token
        .clone()
        .or_else(|| i.start_after.clone())
        .filter(|a| !a.is_empty());
    let p = ListParams {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: i.delimiter.clone(),
        after,
        max_keys: max_keys(i.max_keys),
    };
    let max = p.max_keys;
    let enc = Enc::of(i.encoding_type.as_ref());
    let (pg, at) = run_page(g, i.bucket.clone(), p).await?;
    let (objects, prefixes) = contents(&pg, &at, enc);
    let count = objects.len() + prefixes.len();
    Ok(dto::ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: enc.opt(i.prefix),
        max_keys: Some(i32::try_from(max).unwrap_or(i32::MAX)),
        key_count: Some(i32::try_from(count).unwrap_or(i32::MAX)),
        continuation_token: i.continuation_token,
        start_after: enc.opt(i.start_after),
        is_truncated: Some(pg.truncated),
        next_continuation_token: pg.last.filter(|_| pg.truncated),
        contents: Some(objects),
        common_prefixes: Some(prefixes),
        delimiter: enc.opt(i.delimiter),
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}
