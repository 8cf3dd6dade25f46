//! Materialising a datum's inputs into its scratch directory (`/pfs/<input>/<path>`, an
//! empty `/pfs/out`) and ingesting what user code wrote to `/pfs/out` into the store.

use std::path::Path;

use crate::datum::{Datum, DatumInput};
use crate::error_chain::ErrorChain;
use crate::executor::output::{OutputEntry, OutputScanner};
use crate::pfs::FileKind;

use super::super::scratch::{Laid, ScratchState, prepare};
use super::datum_run::DatumCtx;
use super::lazy_inputs::LazyFeeds;
use super::messages::Put;
use super::outage::Outage;

impl DatumCtx {
    /// Lays out `/pfs/<input>/<path>` and an empty `/pfs/out` in `scratch`, whose last datum
    /// left it as `state` says (updated for the next datum); returns bytes materialised.
    ///
    /// Files of `lazy` inputs become named pipes fed by `lazy` while the datum runs (when the
    /// executor's user code can open them; see [`super::lazy_inputs`]).
    pub(super) fn materialize(
        &self,
        scratch: &Path,
        datum: &Datum,
        state: &mut ScratchState,
        lazy: &mut LazyFeeds,
        outage: &Outage,
    ) -> std::result::Result<u64, String> {
        // A datum-batching process's control pipes stay, untouched, from datum to datum.
        let control = self
            .transform
            .datum_batching
            .then_some(crate::executor::batch::DIR);
        let keep: Vec<&str> = std::iter::once("out")
            .chain(control)
            .chain(datum.inputs.iter().map(|i| i.leaf.name.as_str()))
            .collect();
        let clean: Vec<&str> = control.into_iter().collect();
        let track = self.access.inputs_read_only;
        prepare(scratch, (&keep, &clean), state, track, &self.scratch)
            .map_err(|e| format!("preparing {}: {}", scratch.display(), ErrorChain(&e)))?;
        let mut bytes = 0;
        for input in &datum.inputs {
            match self.lay_input(scratch, input, &mut state.laid, lazy, outage) {
                Ok(b) => bytes += b,
                Err(e) => {
                    state.laid = None;
                    return Err(e);
                }
            }
        }
        Ok(bytes)
    }

    /// Lays out one input of a datum under `scratch` (noting what it makes in `laid`, or,
    /// where it does not know what it made, forgetting `laid`); returns bytes materialised.
    fn lay_input(
        &self,
        scratch: &Path,
        input: &DatumInput,
        laid: &mut Option<Laid>,
        lazy: &mut LazyFeeds,
        outage: &Outage,
    ) -> std::result::Result<u64, String> {
        let leaf = &input.leaf;
        let commit = self
            .input_commits
            .get(&leaf.repo)
            .ok_or_else(|| format!("no input commit for repo {}", leaf.repo))?;
        let base = scratch.join(&leaf.name);
        let rel = input.path.trim_start_matches('/').trim_end_matches('/');
        let is_dir = input.path.ends_with('/') || input.path == "/";
        if leaf.s3 {
            // Read over the job's S3 gateway: `/pfs/<name>` stays an empty directory.
            return Ok(0);
        }
        let pipes = leaf.lazy && self.access.named_pipes;
        if is_dir || pipes {
            // Many files, made where the store lays them: not noted one by one.
            *laid = None;
        }
        if pipes {
            self.lay_pipes(commit, &input.path, &base, is_dir, lazy)?;
            return Ok(0);
        }
        if is_dir {
            return self.lay_dir(commit, input, &base, rel, outage);
        }
        let target = base.join(rel);
        match laid.as_mut() {
            Some(l) => l.make_parents(&base, &target),
            // `base` itself was made by the reset above.
            None => match target.parent().filter(|p| *p != base) {
                Some(p) => std::fs::create_dir_all(p),
                None => Ok(()),
            },
        }
        .map_err(|e| format!("{}: {}", target.display(), ErrorChain(&e)))?;
        if leaf.empty_files {
            std::fs::write(&target, b"").map_err(|e| ErrorChain(&e).to_string())?;
        } else {
            // Only a verified object is linked; a damaged one falls through to
            // `materialize`, which fails the datum naming the file and the object.
            let linked = self
                .store
                .link_object(&input.hash, &target)
                .unwrap_or(false);
            if !linked {
                let parent = target.parent().unwrap_or(scratch);
                self.store
                    .materialize(commit, &input.path, parent)
                    .map_err(|e| outage.message(&e))?;
            }
        }
        if let Some(l) = laid.as_mut() {
            l.made(target, false);
        }
        Ok(if leaf.empty_files { 0 } else { input.size })
    }

    /// Lays out the directory input `input` (at `rel` below `base`) of `commit`; returns
    /// bytes materialised.
    fn lay_dir(
        &self,
        commit: &crate::pfs::CommitRef,
        input: &DatumInput,
        base: &Path,
        rel: &str,
        outage: &Outage,
    ) -> std::result::Result<u64, String> {
        let dest = if rel.is_empty() {
            base.to_path_buf()
        } else {
            base.join(rel)
        };
        let mut bytes = 0;
        if input.leaf.empty_files {
            for f in self
                .store
                .list_file_recursive(commit, &input.path)
                .map_err(|e| outage.message(&e))?
            {
                let f = f.map_err(|e| outage.message(&e))?;
                let target = base.join(f.path.trim_start_matches('/'));
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p).map_err(|e| ErrorChain(&e).to_string())?;
                }
                std::fs::write(&target, b"").map_err(|e| ErrorChain(&e).to_string())?;
            }
        } else {
            let st = self
                .store
                .materialize(commit, &input.path, &dest)
                .map_err(|e| outage.message(&e))?;
            bytes += st.bytes;
        }
        std::fs::create_dir_all(&dest).map_err(|e| ErrorChain(&e).to_string())?;
        Ok(bytes)
    }

    /// Lays out the files of one lazy input (`path` of `commit`, a directory when `is_dir`)
    /// under `base` as named pipes.
    fn lay_pipes(
        &self,
        commit: &crate::pfs::CommitRef,
        path: &str,
        base: &Path,
        is_dir: bool,
        lazy: &mut LazyFeeds,
    ) -> std::result::Result<(), String> {
        let at = |f: &crate::pfs::FileInfo| base.join(f.path.trim_start_matches('/'));
        if !is_dir {
            let f = self
                .store
                .inspect_file(commit, path)
                .map_err(|e| ErrorChain(&e).to_string())?;
            let target = at(&f);
            // A file below a directory of the input (glob `/*/*`): its directories first.
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            return lazy.add(&self.store, commit, &f.path, &target);
        }
        let files = self
            .store
            .list_file_recursive(commit, path)
            .map_err(|e| ErrorChain(&e).to_string())?;
        for f in files {
            let f = f.map_err(|e| ErrorChain(&e).to_string())?;
            let target = at(&f);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            lazy.add(&self.store, commit, &f.path, &target)?;
        }
        let dir = base.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))
    }

    /// Stores every file under `out` (symlinks inside `out` are stored as the file they
    /// point to, symlinks into `datum`'s inputs as the input's files, by content: the
    /// shuffle pattern); returns `(path, size, hash)` per file, and whether `out` was empty.
    pub(super) fn ingest(
        &self,
        out: &Path,
        datum: &Datum,
        outage: &Outage,
    ) -> std::result::Result<(Vec<Put>, bool), String> {
        let mut puts = Vec::new();
        if !self.upload_out {
            // Not known to be empty: the next datum's reset empties it.
            return Ok((puts, false));
        }
        let mut empty = true;
        for e in OutputScanner::new(out).map_err(|e| ErrorChain(&e).to_string())? {
            let e = e.map_err(|e| ErrorChain(&e).to_string())?;
            empty = false;
            let (path, local) = match &e {
                OutputEntry::File { path, .. } => (path.clone(), out.join(path)),
                OutputEntry::Symlink { path, target } => {
                    let t = out.join(target);
                    if !t.is_file() {
                        return Err(format!(
                            "output symlink {path:?} does not point to a regular file"
                        ));
                    }
                    (path.clone(), t)
                }
                OutputEntry::InputLink {
                    path,
                    input,
                    target,
                } => {
                    self.link_into_input(datum, path, input, target, &mut puts, outage)?;
                    continue;
                }
                OutputEntry::Dir { .. } => continue,
            };
            let (size, hash) = self
                .store
                .put_object_deferred(&local)
                .map_err(|e| outage.message(&e))?;
            puts.push((format!("/{path}"), size, hash));
        }
        Ok((puts, empty))
    }

    /// The output `link` to `/pfs/<input><target>`: the input's file, or every file below
    /// its directory, stored at the link's path by content (nothing is read). The target
    /// must lie within what the datum has of that input; the link itself is never followed.
    fn link_into_input(
        &self,
        datum: &Datum,
        link: &str,
        input: &str,
        target: &str,
        puts: &mut Vec<Put>,
        outage: &Outage,
    ) -> std::result::Result<(), String> {
        let what = || format!("output symlink {link:?} (to /pfs/{input}{target})");
        let found = datum
            .inputs
            .iter()
            .find(|i| i.leaf.name == input && covers(&i.path, target))
            .ok_or_else(|| format!("{}: not within this datum's inputs", what()))?;
        let commit = self
            .input_commits
            .get(&found.leaf.repo)
            .ok_or_else(|| format!("{}: no input commit for repo {}", what(), found.leaf.repo))?;
        let fail = |e: crate::pfs::PfsError| format!("{}: {}", what(), outage.message(&e));
        let info = self.store.inspect_file(commit, target).map_err(fail)?;
        if info.kind != FileKind::Dir {
            puts.push((format!("/{link}"), info.size, info.hash));
            return Ok(());
        }
        for f in self
            .store
            .list_file_recursive(commit, target)
            .map_err(fail)?
        {
            let f = f.map_err(fail)?;
            let below = f.path.strip_prefix(target).unwrap_or(&f.path);
            let below = below.trim_start_matches('/');
            puts.push((format!("/{link}/{below}"), f.size, f.hash));
        }
        Ok(())
    }
}

/// Whether a datum input matched at `matched` (`/a.png`, `/dir/`, `/`) holds `target` (a
/// path below the input's root, no trailing `/`).
fn covers(matched: &str, target: &str) -> bool {
    match matched.strip_suffix('/') {
        // A directory (or the root): itself or anything below it.
        Some(dir) => target == dir || target.starts_with(matched),
        None => target == matched,
    }
}
