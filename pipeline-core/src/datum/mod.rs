//! Inputs → datums: pfs, cross, union, join, group and cron inputs, datum IDs and hashes.
//!
//! A [`DatumPlan`] is built from an (effective) [`crate::spec::Input`] and one [`TreeSource`]
//! per repo, then streams [`Datum`]s:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use pipeline_core::datum::{DatumPlan, MemTree, PlanOptions, TreeSource};
//! use pipeline_core::spec::Input;
//!
//! let input: Input = serde_json::from_str(r#"{"pfs": {"repo": "images", "glob": "/*"}}"#).unwrap();
//! let images = MemTree::from_listing(["/a.png", "/b.png", "/dir/c.png", "/dir/sub/d.png"]).unwrap();
//! let mut sources: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
//! sources.insert("images".into(), Arc::new(images));
//!
//! let plan = DatumPlan::new(&input, &sources, &PlanOptions::default()).unwrap();
//! let paths: Vec<String> = plan.datums().map(|d| d.unwrap().inputs[0].path.clone()).collect();
//! assert_eq!(paths, ["/a.png", "/b.png", "/dir/"]); // directories are datums
//!
//! let dir = plan.datums().nth(2).unwrap().unwrap();
//! let files: Vec<String> = plan.files(&dir).map(|f| f.unwrap().path).collect();
//! assert_eq!(files, ["/dir/c.png", "/dir/sub/d.png"]);
//! assert_eq!(dir.id().to_hex().len(), 64);
//! ```
//!
//! # Semantics (reference §2)
//!
//! - **pfs**: one datum per glob match over the tree's files **and directories** (a
//!   directory's trailing `/` is dropped for matching and kept in the datum path). Only the
//!   glob `/` matches the root, giving one datum holding the whole repo. An empty tree gives
//!   no datum, whatever the glob. Datums come in path order.
//! - **cross**: cartesian product, first child outermost; any empty child → no datum.
//! - **union**: the children's datums one after the other. Datums with the same ID collapse
//!   (the first is kept).
//! - **join**: files keyed by their input's `join_on` (applied to the captures of that input's
//!   own glob); for each key present in every child, the cross product of the children's files;
//!   for other keys, the cross product of the `outer_join` children that have files. Children
//!   that are not pfs inputs are flattened (each file keyed on its own). Keys come in byte
//!   order (Pachyderm uses an internal hash order; order never changes IDs).
//! - **group**: one datum per distinct `group_by` key across all children, holding every file
//!   with that key, in child order then path order.
//! - **cron**: a pfs input over the cron repo, branch `master`, glob `/*`.
//!
//! Children are taken in the order given: plan over an *effective* input whose children are
//! already sorted per reference §2.11. Missing names default to the repo, missing branches to
//! `master`, globs are normalised ([`crate::glob::normalize`]).
//!
//! # Memory
//!
//! - pfs and union stream: one entry at a time (union keeps a 32-byte ID per datum only when two
//!   of its children share a (name, repo, branch), the only way IDs can collide).
//! - cross streams too: the first child is walked once; every other child is **re-walked** from
//!   the start each time the child before it advances, instead of being held (a re-walk is a
//!   fresh [`TreeSource::walk`]; a join or group child is re-planned, so put those first).
//! - join and group must see every key before emitting: they hold every matched input of every
//!   child (one [`DatumInput`] each, about 180 bytes with its path and key; see
//!   `benches/README.md`), then stream the datums. A join of non-pfs children also keeps a
//!   32-byte ID per datum to collapse duplicates.
//!
//! # Datum ID and hash (reference §2.12)
//!
//! - [`Datum::id`]: BLAKE2b-256 over, for each input in datum order, `name`, `repo`, `branch`,
//!   `path`, each followed by its byte length as a big-endian `i64`. Byte-compatible with
//!   Pachyderm (project, commit, content and salt are not part of it).
//! - [`Datum::hash`]: BLAKE2b-256 over the ID's 64 hex characters, then the 32 content-hash
//!   bytes of each input not marked `reference`, then the salt. Unlike Pachyderm, content
//!   hashes are [`crate::hash`]'s (BLAKE3; directory hashes include child names), so a rename
//!   inside a directory datum changes its hash.
//!
//! Group datums with several inputs list them in child-then-path order; Pachyderm orders them
//! by an internal hash, so the IDs of such datums may differ from Pachyderm's.

mod changed;
mod changed_cross;
#[cfg(feature = "hashing")]
pub mod conformance;
mod env;
#[cfg(feature = "hashing")]
mod local;
mod plan;
mod source;

pub use changed::{ChangedDatums, PointPlan};
pub use changed_cross::MAX_PRODUCT;
pub use env::{EnvInput, JobEnv, env_of};
#[cfg(feature = "hashing")]
pub use local::LocalTree;
pub use plan::{DatumFile, DatumPlan, Datums, PlanError, PlanOptions, Sources};
#[cfg(feature = "hashing")]
pub use source::SyntheticTree;
pub use source::{Entry, EntryIter, MemTree, SourceError, TreeSource, check_name};

use std::fmt;
use std::sync::Arc;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use crate::hash::ContentHash;

type Blake2b256 = Blake2b<U32>;

/// One pfs (or cron) input of a plan, with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfsLeaf {
    /// `/pfs/<name>` and the prefix of its environment variables.
    pub name: String,
    /// Repo name.
    pub repo: String,
    /// Branch (`master` by default).
    pub branch: String,
    /// Project, if given (not part of the datum ID).
    pub project: Option<String>,
    /// The normalised glob.
    pub glob: String,
    /// `join_on` as written (`""` when unset).
    pub join_on: String,
    /// `group_by` as written (`""` when unset).
    pub group_by: String,
    /// `outer_join`.
    pub outer_join: bool,
    /// `lazy`: files appear as named pipes.
    pub lazy: bool,
    /// `empty_files`: files appear empty.
    pub empty_files: bool,
    /// `s3`: served by an S3 gateway.
    pub s3: bool,
    /// `reference`: content left out of the datum hash.
    pub reference: bool,
    /// True when this leaf stands for a cron input.
    pub cron: bool,
    /// Where it sits in the spec, e.g. `input.cross[1].pfs`.
    pub field: String,
    /// Position in [`DatumPlan::leaves`].
    pub index: usize,
}

/// One input of a datum: a matched file or directory of one leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatumInput {
    /// The leaf (name, repo, branch, flags) this input comes from.
    pub leaf: Arc<PfsLeaf>,
    /// The path as matched: `/a.png`, `/dir/` (directories keep their `/`), `/` for the root.
    pub path: String,
    /// Content hash of the file or directory.
    pub hash: ContentHash,
    /// Bytes (a directory: the total below it).
    pub size: u64,
    /// `join_on` applied to the glob's captures (`""` when unset).
    pub join_key: String,
    /// `group_by` applied to the glob's captures (`""` when unset).
    pub group_key: String,
}

/// A datum: the inputs one run of user code sees, in datum order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datum {
    /// The inputs, in datum order.
    pub inputs: Vec<DatumInput>,
}

/// A datum ID (BLAKE2b-256, reference §2.12).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatumId(pub [u8; 32]);

/// A datum hash: the ID plus content hashes plus salt.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatumHash(pub [u8; 32]);

macro_rules! hex_digest {
    ($t:ident) => {
        impl $t {
            /// Lower-case hex (64 characters).
            pub fn to_hex(&self) -> String {
                lower_hex(&self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.to_hex())
            }
        }
    };
}
hex_digest!(DatumId);
hex_digest!(DatumHash);

/// Lower-case hex of 32 bytes, built in place (a preview prints one per datum; the `hex`
/// crate's char-by-char iterator cost as much as the BLAKE2b of the ID).
fn lower_hex(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

impl Datum {
    /// The datum ID, byte-compatible with Pachyderm.
    pub fn id(&self) -> DatumId {
        let mut h = Blake2b256::new();
        for input in &self.inputs {
            for field in [
                &input.leaf.name,
                &input.leaf.repo,
                &input.leaf.branch,
                &input.path,
            ] {
                h.update(field.as_bytes());
                h.update((field.len() as i64).to_be_bytes());
            }
        }
        DatumId(h.finalize().into())
    }

    /// The datum hash for a pipeline `salt` (see the module docs).
    pub fn hash(&self, salt: &str) -> DatumHash {
        let mut h = Blake2b256::new();
        h.update(self.id().to_hex().as_bytes());
        for input in self.inputs.iter().filter(|i| !i.leaf.reference) {
            h.update(input.hash.as_bytes());
        }
        h.update(salt.as_bytes());
        DatumHash(h.finalize().into())
    }
}

#[cfg(test)]
mod hex_tests {
    use super::*;

    #[test]
    fn ids_print_as_the_hex_crate_does() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        assert_eq!(DatumId(bytes).to_hex(), hex::encode(bytes));
        assert_eq!(DatumHash([0xff; 32]).to_string(), "f".repeat(64));
    }
}
