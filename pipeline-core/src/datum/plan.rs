//! Building a datum plan from an input spec, and the streaming iterators behind it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::source::{Entry, SourceError, TreeSource};
use super::{Datum, DatumId, DatumInput, PfsLeaf};
use crate::glob::{self, Glob, GlobError, GlobMatchError, Template, TemplateError};
use crate::spec::effective::DEFAULT_BRANCH;
use crate::spec::{CronInput, EffectiveSpec, Input, InputKind, PfsInput};

/// Where the trees of a plan's repos come from.
pub trait Sources {
    /// The tree to plan `leaf` over (its repo at the job's commit of its branch), or `None`
    /// when there is none.
    fn source(&self, leaf: &PfsLeaf) -> Option<Arc<dyn TreeSource>>;
}

/// Trees by repo name.
impl Sources for HashMap<String, Arc<dyn TreeSource>> {
    fn source(&self, leaf: &PfsLeaf) -> Option<Arc<dyn TreeSource>> {
        self.get(&leaf.repo).cloned()
    }
}

/// Trees by repo name.
impl Sources for BTreeMap<String, Arc<dyn TreeSource>> {
    fn source(&self, leaf: &PfsLeaf) -> Option<Arc<dyn TreeSource>> {
        self.get(&leaf.repo).cloned()
    }
}

/// Plan-wide settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// The pipeline's name: a cron input's repo defaults to `<pipeline>_<cron name>`.
    pub pipeline_name: Option<String>,
}

/// Planning failed: a bad input spec, a missing tree, or a tree that could not be read.
///
/// Field paths name the input as planned. For [`DatumPlan::for_spec`] that is the *effective*
/// spec, whose compound children are sorted into datum order (reference §2.11), so an index
/// can differ from the file's when named and unnamed children are mixed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// An input with none or several of pfs, cross, union, join, group, cron.
    #[error("{field}: an input must set exactly one of pfs, cross, union, join, group, cron")]
    InputKind {
        /// e.g. `input.cross[1]`
        field: String,
    },
    /// A required field is missing.
    #[error("{field}: missing (required)")]
    Missing {
        /// e.g. `input.pfs.repo`
        field: String,
    },
    /// A glob that does not compile.
    #[error("{field}")]
    Glob {
        /// e.g. `input.pfs.glob`
        field: String,
        /// Why.
        #[source]
        source: GlobError,
    },
    /// A `join_on`/`group_by` template that does not parse.
    #[error("{field}")]
    Template {
        /// e.g. `input.join[0].pfs.join_on`
        field: String,
        /// Why.
        #[source]
        source: TemplateError,
    },
    /// No tree for a repo.
    #[error("{field}: no data for repo {repo:?} (branch {branch:?})")]
    MissingSource {
        /// e.g. `input.pfs`
        field: String,
        /// The repo.
        repo: String,
        /// The branch.
        branch: String,
    },
    /// A cron input without a tick repo: as in Pachyderm, there are no datums before the
    /// pipeline exists.
    #[error(
        "{field}: can't list datums with a cron input, there will be no datums until the pipeline is created (cron repo {repo:?})"
    )]
    CronWithoutTicks {
        /// e.g. `input.cron`
        field: String,
        /// The cron repo (`<pipeline>_<name>` by default).
        repo: String,
    },
    /// Reading a repo's tree failed.
    #[error("{field}: reading repo {repo:?}")]
    Source {
        /// The leaf's field.
        field: String,
        /// The repo.
        repo: String,
        /// Why.
        #[source]
        source: SourceError,
    },
    /// A glob match gave up (backtrack limit).
    #[error("{field}")]
    Match {
        /// The leaf's field.
        field: String,
        /// Why.
        #[source]
        source: GlobMatchError,
    },
    /// [`DatumPlan::files`] was given a datum from another plan.
    #[error("datum input {name:?} does not belong to this plan")]
    ForeignDatum {
        /// The input's name.
        name: String,
    },
}

type Tuple = Vec<DatumInput>;
type TupleIter<'a> = Box<dyn Iterator<Item = Result<Tuple, PlanError>> + Send + 'a>;

#[derive(Debug)]
pub(super) enum Node {
    Pfs {
        leaf: usize,
        glob: Glob,
        keys: Option<Box<(Template, Template)>>,
    },
    Cross(Vec<Node>),
    Union {
        children: Vec<Node>,
        dedupe: bool,
    },
    Join {
        children: Vec<Node>,
        dedupe: bool,
    },
    Group(Vec<Node>),
}

impl Node {
    fn is_pfs(&self) -> bool {
        matches!(self, Node::Pfs { .. })
    }

    fn leaves(&self, out: &mut Vec<usize>) {
        match self {
            Node::Pfs { leaf, .. } => out.push(*leaf),
            Node::Cross(c)
            | Node::Group(c)
            | Node::Union { children: c, .. }
            | Node::Join { children: c, .. } => c.iter().for_each(|n| n.leaves(out)),
        }
    }
}

/// A compiled input: globs, templates and trees resolved; ready to stream datums.
pub struct DatumPlan {
    pub(super) root: Node,
    leaves: Vec<Arc<PfsLeaf>>,
    pub(super) trees: Vec<Arc<dyn TreeSource>>,
}

impl std::fmt::Debug for DatumPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatumPlan")
            .field("root", &self.root)
            .field("leaves", &self.leaves)
            .finish()
    }
}

/// A file a datum makes visible to user code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatumFile {
    /// Index of the datum input it belongs to.
    pub input: usize,
    /// That input's name (`/pfs/<name>`).
    pub name: String,
    /// Full repo path (`/dir/c.png`); user code sees it at `/pfs/<name><path>`.
    pub path: String,
    /// Content hash.
    pub hash: crate::hash::ContentHash,
    /// Bytes.
    pub size: u64,
}

impl DatumPlan {
    /// Compiles `input` (effective: children already in datum order) over `sources`.
    pub fn new(
        input: &Input,
        sources: &dyn Sources,
        options: &PlanOptions,
    ) -> Result<DatumPlan, PlanError> {
        let mut b = Builder {
            sources,
            options,
            leaves: Vec::new(),
            trees: Vec::new(),
        };
        let root = b.node(input, "input".to_string())?;
        Ok(DatumPlan {
            root,
            leaves: b.leaves,
            trees: b.trees,
        })
    }

    /// Plans a whole effective spec (made by [`PipelineSpec::effective`](crate::spec::PipelineSpec::effective):
    /// defaults applied, children sorted into datum order per reference §2.11): its `input`,
    /// with the pipeline's name.
    ///
    /// ```
    /// # use std::collections::HashMap; use std::sync::Arc;
    /// use pipeline_core::datum::{DatumPlan, MemTree, TreeSource};
    /// use pipeline_core::spec::PipelineSpec;
    /// let spec: PipelineSpec = serde_json::from_str(r#"{"pipeline": {"name": "p"}, "input": {"cross": [
    ///     {"pfs": {"name": "z", "repo": "b", "glob": "/*"}},
    ///     {"pfs": {"repo": "a", "glob": "/*"}}]}}"#).unwrap();
    /// let mut sources: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
    /// sources.insert("a".into(), Arc::new(MemTree::from_paths(["/x"]).unwrap()));
    /// sources.insert("b".into(), Arc::new(MemTree::from_paths(["/y"]).unwrap()));
    /// let plan = DatumPlan::for_spec(&spec.effective(), &sources).unwrap();
    /// let d = plan.datums().next().unwrap().unwrap();
    /// assert_eq!(d.inputs[0].leaf.name, "a"); // unnamed inputs sort first
    /// ```
    pub fn for_spec(spec: &EffectiveSpec, sources: &dyn Sources) -> Result<DatumPlan, PlanError> {
        let input = spec.input.as_ref().ok_or_else(|| PlanError::Missing {
            field: "input".into(),
        })?;
        let options = PlanOptions {
            pipeline_name: (!spec.name.is_empty()).then(|| spec.name.clone()),
        };
        DatumPlan::new(input, sources, &options)
    }

    /// The plan's pfs/cron inputs, in spec order.
    pub fn leaves(&self) -> &[Arc<PfsLeaf>] {
        &self.leaves
    }

    /// Streams the datums. Each call starts over (the trees are walked again).
    pub fn datums(&self) -> Datums<'_> {
        Datums {
            inner: self.iter(&self.root),
            failed: false,
        }
    }

    /// Streams the files of a datum: a file input is that file; a directory input every file
    /// below it; the root every file of the repo. Input order, then path order.
    pub fn files<'a>(
        &'a self,
        datum: &'a Datum,
    ) -> impl Iterator<Item = Result<DatumFile, PlanError>> + 'a {
        datum.inputs.iter().enumerate().flat_map(
            move |(i, input)| -> Box<dyn Iterator<Item = _> + 'a> {
                let leaf = &input.leaf;
                let ours = self
                    .leaves
                    .get(leaf.index)
                    .is_some_and(|l| Arc::ptr_eq(l, leaf));
                if !ours {
                    return Box::new(std::iter::once(Err(PlanError::ForeignDatum {
                        name: leaf.name.clone(),
                    })));
                }
                let file = move |e: Entry| DatumFile {
                    input: i,
                    name: leaf.name.clone(),
                    path: e.path,
                    hash: e.hash,
                    size: e.size,
                };
                if !input.path.ends_with('/') {
                    return Box::new(std::iter::once(Ok(file(Entry {
                        path: input.path.clone(),
                        hash: input.hash,
                        size: input.size,
                    }))));
                }
                let tree = &self.trees[leaf.index];
                let walk = if input.path == "/" {
                    tree.walk()
                } else {
                    tree.walk_prefix(&input.path)
                };
                Box::new(walk.filter_map(move |e| match e {
                    Ok(e) if e.is_dir() => None,
                    Ok(e) => Some(Ok(file(e))),
                    Err(source) => Some(Err(source_err(leaf, source))),
                }))
            },
        )
    }

    fn iter<'a>(&'a self, node: &'a Node) -> TupleIter<'a> {
        match node {
            Node::Pfs { leaf, glob, keys } => self.pfs(*leaf, glob, keys.as_deref()),
            Node::Cross(children) => Box::new(Cross {
                plan: self,
                children,
                iters: Vec::new(),
                current: Vec::new(),
                state: State::Start,
            }),
            Node::Union { children, dedupe } => {
                let chained = children.iter().flat_map(move |c| self.iter(c));
                if *dedupe {
                    Box::new(Dedupe::new(chained))
                } else {
                    Box::new(chained)
                }
            }
            Node::Join { children, dedupe } => {
                let join = Keyed {
                    plan: self,
                    children,
                    group: false,
                    state: None,
                };
                if *dedupe {
                    Box::new(Dedupe::new(join))
                } else {
                    Box::new(join)
                }
            }
            Node::Group(children) => Box::new(Keyed {
                plan: self,
                children,
                group: true,
                state: None,
            }),
        }
    }

    pub(super) fn pfs<'a>(
        &'a self,
        index: usize,
        glob: &'a Glob,
        keys: Option<&'a (Template, Template)>,
    ) -> TupleIter<'a> {
        let leaf = &self.leaves[index];
        let tree = &self.trees[index];
        if glob.as_str() == "/" {
            return match tree.root() {
                Ok(None) => Box::new(std::iter::empty()),
                Ok(Some(root)) => Box::new(
                    matched(leaf, glob, root, keys)
                        .map(|m| m.map(|i| vec![i]))
                        .transpose()
                        .into_iter(),
                ),
                Err(e) => Box::new(std::iter::once(Err(source_err(leaf, e)))),
            };
        }
        let prefix = glob.literal_prefix();
        let walk = if prefix.len() > 1 {
            tree.walk_prefix(prefix)
        } else {
            tree.walk()
        };
        let mut failed = false;
        Box::new(
            walk.map_while(move |e| {
                if failed {
                    return None;
                }
                let r = match e {
                    Ok(e) => matched(leaf, glob, e, keys),
                    Err(source) => Err(source_err(leaf, source)),
                };
                failed = r.is_err();
                Some(r)
            })
            .filter_map(|r| r.map(|m| m.map(|i| vec![i])).transpose()),
        )
    }
}

pub(super) fn source_err(leaf: &PfsLeaf, source: SourceError) -> PlanError {
    PlanError::Source {
        field: leaf.field.clone(),
        repo: leaf.repo.clone(),
        source,
    }
}

/// Matches one entry; `Ok(None)` when it does not match.
pub(super) fn matched(
    leaf: &Arc<PfsLeaf>,
    glob: &Glob,
    e: Entry,
    keys: Option<&(Template, Template)>,
) -> Result<Option<DatumInput>, PlanError> {
    let trimmed = if e.path == "/" {
        "/"
    } else {
        e.path.strip_suffix('/').unwrap_or(&e.path)
    };
    let err = |source| PlanError::Match {
        field: format!("{}.glob", leaf.field),
        source,
    };
    let (join_key, group_key) = if let Some((join, group)) = keys {
        let Some(caps) = glob.try_captures(trimmed).map_err(err)? else {
            return Ok(None);
        };
        (join.render(&caps), group.render(&caps))
    } else {
        if !glob.try_is_match(trimmed).map_err(err)? {
            return Ok(None);
        }
        (String::new(), String::new())
    };
    Ok(Some(DatumInput {
        leaf: leaf.clone(),
        path: e.path,
        hash: e.hash,
        size: e.size,
        join_key,
        group_key,
    }))
}

/// The streaming datum iterator of a [`DatumPlan`]. After an error it ends.
pub struct Datums<'a> {
    inner: TupleIter<'a>,
    failed: bool,
}

impl Iterator for Datums<'_> {
    type Item = Result<Datum, PlanError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.inner.next()?;
        self.failed = next.is_err();
        Some(next.map(|inputs| Datum { inputs }))
    }
}

impl std::fmt::Debug for Datums<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Datums")
    }
}

fn tuple_id(t: &Tuple) -> DatumId {
    // Cloning the Vec of Arcs is cheap next to hashing.
    Datum { inputs: t.clone() }.id()
}

/// Drops tuples whose datum ID was already emitted (keeps the first).
struct Dedupe<I> {
    inner: I,
    seen: HashSet<DatumId>,
}

impl<I> Dedupe<I> {
    fn new(inner: I) -> Self {
        Dedupe {
            inner,
            seen: HashSet::new(),
        }
    }
}

impl<I: Iterator<Item = Result<Tuple, PlanError>>> Iterator for Dedupe<I> {
    type Item = Result<Tuple, PlanError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.inner.next()? {
                Ok(t) => {
                    if self.seen.insert(tuple_id(&t)) {
                        return Some(Ok(t));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Running,
    Done,
}

/// Cartesian product as an odometer: the last child turns fastest; an exhausted child is
/// re-walked from the start while the one before it advances.
struct Cross<'a> {
    plan: &'a DatumPlan,
    children: &'a [Node],
    iters: Vec<TupleIter<'a>>,
    current: Vec<Tuple>,
    state: State,
}

impl Cross<'_> {
    fn emit(&self) -> Tuple {
        self.current.iter().flatten().cloned().collect()
    }
}

impl Iterator for Cross<'_> {
    type Item = Result<Tuple, PlanError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.state {
            State::Done => None,
            State::Start => {
                self.state = State::Done;
                if self.children.is_empty() {
                    return None;
                }
                for child in self.children {
                    let mut it = self.plan.iter(child);
                    match it.next()? {
                        Ok(t) => self.current.push(t),
                        Err(e) => return Some(Err(e)),
                    }
                    self.iters.push(it);
                }
                self.state = State::Running;
                Some(Ok(self.emit()))
            }
            State::Running => {
                let mut i = self.children.len() - 1;
                loop {
                    match self.iters[i].next() {
                        Some(Ok(t)) => {
                            self.current[i] = t;
                            return Some(Ok(self.emit()));
                        }
                        Some(Err(e)) => {
                            self.state = State::Done;
                            return Some(Err(e));
                        }
                        None if i == 0 => {
                            self.state = State::Done;
                            return None;
                        }
                        None => {
                            let mut it = self.plan.iter(&self.children[i]);
                            match it.next() {
                                Some(Ok(t)) => self.current[i] = t,
                                Some(Err(e)) => {
                                    self.state = State::Done;
                                    return Some(Err(e));
                                }
                                None => {
                                    // The tree changed under us; stop rather than loop.
                                    self.state = State::Done;
                                    return None;
                                }
                            }
                            self.iters[i] = it;
                            i -= 1;
                        }
                    }
                }
            }
        }
    }
}

/// Join and group: every child's inputs, keyed and sorted by key, then datums per key.
struct Keyed<'a> {
    plan: &'a DatumPlan,
    children: &'a [Node],
    group: bool,
    state: Option<KeyedState>,
}

struct KeyedState {
    /// Per child: inputs sorted by key (stable: stream order within a key).
    inputs: Vec<Vec<DatumInput>>,
    /// Per child: start of the current key's run.
    pos: Vec<usize>,
    /// Join: the current key's product (participating children, their ranges, odometer).
    product: Option<Product>,
    done: bool,
}

struct Product {
    ranges: Vec<(usize, usize, usize)>, // (child, start, end)
    odo: Vec<usize>,
    fresh: bool,
}

fn key_of(input: &DatumInput, group: bool) -> &str {
    if group {
        &input.group_key
    } else {
        &input.join_key
    }
}

impl Keyed<'_> {
    fn load(&self) -> Result<KeyedState, PlanError> {
        let mut inputs = Vec::with_capacity(self.children.len());
        for child in self.children {
            let mut v = Vec::new();
            for t in self.plan.iter(child) {
                v.extend(t?);
            }
            let group = self.group;
            v.sort_by(|a, b| key_of(a, group).cmp(key_of(b, group)));
            inputs.push(v);
        }
        let pos = vec![0; inputs.len()];
        Ok(KeyedState {
            inputs,
            pos,
            product: None,
            done: false,
        })
    }
}

impl KeyedState {
    /// The smallest key not yet consumed, with each child's run `[start, end)` for it.
    fn next_key(&mut self, group: bool) -> Option<Vec<(usize, usize)>> {
        let key = self
            .inputs
            .iter()
            .zip(&self.pos)
            .filter_map(|(v, &p)| v.get(p).map(|i| key_of(i, group)))
            .min()?
            .to_string();
        let runs = self
            .inputs
            .iter()
            .zip(self.pos.iter_mut())
            .map(|(v, p)| {
                let start = *p;
                while v.get(*p).is_some_and(|i| key_of(i, group) == key) {
                    *p += 1;
                }
                (start, *p)
            })
            .collect();
        Some(runs)
    }
}

impl Iterator for Keyed<'_> {
    type Item = Result<Tuple, PlanError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state.is_none() {
            match self.load() {
                Ok(s) => self.state = Some(s),
                Err(e) => {
                    self.state = Some(KeyedState {
                        inputs: Vec::new(),
                        pos: Vec::new(),
                        product: None,
                        done: true,
                    });
                    return Some(Err(e));
                }
            }
        }
        let group = self.group;
        let s = self.state.as_mut()?;
        if s.done {
            return None;
        }
        if group {
            let Some(runs) = s.next_key(true) else {
                s.done = true;
                return None;
            };
            let t = runs
                .iter()
                .enumerate()
                .flat_map(|(c, &(a, b))| s.inputs[c][a..b].iter().cloned())
                .collect();
            return Some(Ok(t));
        }
        loop {
            if let Some(p) = &mut s.product {
                if advance(p) {
                    let t = p
                        .ranges
                        .iter()
                        .zip(&p.odo)
                        .map(|(&(c, start, _), &k)| s.inputs[c][start + k].clone())
                        .collect();
                    return Some(Ok(t));
                }
                s.product = None;
            }
            let Some(runs) = s.next_key(false) else {
                s.done = true;
                return None;
            };
            let all = runs.iter().all(|&(a, b)| b > a);
            let ranges: Vec<(usize, usize, usize)> = runs
                .iter()
                .enumerate()
                .filter(|&(c, &(a, b))| b > a && (all || outer(s.inputs[c].get(a))))
                .map(|(c, &(a, b))| (c, a, b))
                .collect();
            if ranges.is_empty() {
                continue;
            }
            let odo = vec![0; ranges.len()];
            s.product = Some(Product {
                ranges,
                odo,
                fresh: true,
            });
        }
    }
}

/// Whether a join child is outer for a key: a pfs child's `outer_join`; for a flattened
/// (non-pfs) child, the flag of the first input with that key.
fn outer(first: Option<&DatumInput>) -> bool {
    first.is_some_and(|i| i.leaf.outer_join)
}

/// Steps an odometer over the product's ranges; false when exhausted.
fn advance(p: &mut Product) -> bool {
    if p.fresh {
        p.fresh = false;
        return true;
    }
    for i in (0..p.odo.len()).rev() {
        let (_, start, end) = p.ranges[i];
        if start + p.odo[i] + 1 < end {
            p.odo[i] += 1;
            return true;
        }
        p.odo[i] = 0;
    }
    false
}

struct Builder<'s> {
    sources: &'s dyn Sources,
    options: &'s PlanOptions,
    leaves: Vec<Arc<PfsLeaf>>,
    trees: Vec<Arc<dyn TreeSource>>,
}

impl Builder<'_> {
    fn node(&mut self, input: &Input, field: String) -> Result<Node, PlanError> {
        let Some(kind) = input.kind() else {
            return Err(PlanError::InputKind { field });
        };
        let children = |b: &mut Self, list: &[Input], what: &str| -> Result<Vec<Node>, PlanError> {
            list.iter()
                .enumerate()
                .map(|(i, c)| b.node(c, format!("{field}.{what}[{i}]")))
                .collect()
        };
        Ok(match kind {
            InputKind::Pfs(p) => {
                let leaf = self.pfs_leaf(p, &field)?;
                self.leaf(leaf)?
            }
            InputKind::Cron(c) => {
                let leaf = self.cron_leaf(c, &field)?;
                self.leaf(leaf)?
            }
            InputKind::Cross(list) => Node::Cross(children(self, list, "cross")?),
            InputKind::Group(list) => Node::Group(children(self, list, "group")?),
            InputKind::Union(list) => {
                let children = children(self, list, "union")?;
                let dedupe = self.overlapping(&children);
                Node::Union { children, dedupe }
            }
            InputKind::Join(list) => {
                let children = children(self, list, "join")?;
                let dedupe = !children.iter().all(Node::is_pfs);
                Node::Join { children, dedupe }
            }
        })
    }

    /// The leaf of `input.pfs` at `parent` (the input's field path).
    fn pfs_leaf(&self, p: &PfsInput, parent: &str) -> Result<PfsLeaf, PlanError> {
        let field = format!("{parent}.pfs");
        let repo = p
            .repo
            .clone()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| PlanError::Missing {
                field: format!("{field}.repo"),
            })?;
        let glob = match (&p.glob, p.s3) {
            (Some(g), _) => g.clone(),
            (None, true) => "/".to_string(),
            (None, false) => {
                return Err(PlanError::Missing {
                    field: format!("{field}.glob"),
                });
            }
        };
        Ok(PfsLeaf {
            name: p
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| repo.clone()),
            branch: p
                .branch
                .clone()
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| DEFAULT_BRANCH.into()),
            repo,
            project: p.project.clone(),
            glob,
            join_on: p.join_on.clone().unwrap_or_default(),
            group_by: p.group_by.clone().unwrap_or_default(),
            outer_join: p.outer_join,
            lazy: p.lazy,
            empty_files: p.empty_files,
            s3: p.s3,
            reference: p.reference,
            cron: false,
            field,
            index: 0,
        })
    }

    /// The leaf of `input.cron` at `parent` (the input's field path).
    fn cron_leaf(&self, c: &CronInput, parent: &str) -> Result<PfsLeaf, PlanError> {
        let field = format!("{parent}.cron");
        let name = c
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| PlanError::Missing {
                field: format!("{field}.name"),
            })?;
        let repo = match (&c.repo, &self.options.pipeline_name) {
            (Some(r), _) if !r.is_empty() => r.clone(),
            (_, Some(p)) => format!("{p}_{name}"),
            _ => {
                return Err(PlanError::Missing {
                    field: format!("{field}.repo"),
                });
            }
        };
        Ok(PfsLeaf {
            name,
            repo,
            branch: DEFAULT_BRANCH.into(),
            project: c.project.clone(),
            glob: "/*".into(),
            join_on: String::new(),
            group_by: String::new(),
            outer_join: false,
            lazy: false,
            empty_files: false,
            s3: false,
            reference: false,
            cron: true,
            field,
            index: 0,
        })
    }

    /// True when two children share a (name, repo, branch): only then can IDs collide.
    fn overlapping(&self, children: &[Node]) -> bool {
        let mut seen: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for (c, child) in children.iter().enumerate() {
            let mut leaves = Vec::new();
            child.leaves(&mut leaves);
            for l in leaves {
                let l = &self.leaves[l];
                let key = (l.name.as_str(), l.repo.as_str(), l.branch.as_str());
                if seen.get(&key).is_some_and(|&other| other != c) {
                    return true;
                }
                seen.insert(key, c);
            }
        }
        false
    }

    fn leaf(&mut self, mut leaf: PfsLeaf) -> Result<Node, PlanError> {
        let normalized = glob::normalize(&leaf.glob);
        let glob = Glob::new(&normalized).map_err(|source| PlanError::Glob {
            field: format!("{}.glob", leaf.field),
            source,
        })?;
        leaf.glob = normalized;
        let template = |what: &str, t: &str| {
            Template::parse(t).map_err(|source| PlanError::Template {
                field: format!("{}.{what}", leaf.field),
                source,
            })
        };
        let join = template("join_on", &leaf.join_on)?;
        let group = template("group_by", &leaf.group_by)?;
        let tree = match self.sources.source(&leaf) {
            Some(t) => t,
            None if leaf.cron => {
                return Err(PlanError::CronWithoutTicks {
                    field: leaf.field,
                    repo: leaf.repo,
                });
            }
            None => {
                return Err(PlanError::MissingSource {
                    field: leaf.field,
                    repo: leaf.repo,
                    branch: leaf.branch,
                });
            }
        };
        let keys = (!join.is_empty() || !group.is_empty()).then(|| Box::new((join, group)));
        leaf.index = self.leaves.len();
        let index = leaf.index;
        self.leaves.push(Arc::new(leaf));
        self.trees.push(tree);
        Ok(Node::Pfs {
            leaf: index,
            glob,
            keys,
        })
    }
}
