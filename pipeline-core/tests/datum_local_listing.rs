//! Previewing datums over a local directory reads paths, never contents: the same datums
//! (IDs, paths, files) as a plan over hashed contents, and a tree of 1 TiB sparse files (which
//! would take minutes to read) previews at once.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use pipeline_core::datum::{DatumPlan, LocalTree, MemTree, PlanOptions, TreeSource};
use pipeline_core::spec::Input;

/// What a preview shows of a plan: each datum's ID, input paths and files.
fn shown(plan: &DatumPlan) -> Vec<String> {
    plan.datums()
        .map(|d| {
            let d = d.expect("datum");
            let paths: Vec<String> = d.inputs.iter().map(|i| i.path.clone()).collect();
            let files: Vec<String> = plan.files(&d).map(|f| f.expect("file").path).collect();
            format!("{} {paths:?} {files:?}", d.id())
        })
        .collect()
}

fn plan_over(input: &str, tree: Arc<dyn TreeSource>) -> DatumPlan {
    let input: Input = serde_json::from_str(input).expect("input parses");
    let mut sources: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
    sources.insert("images".into(), tree.clone());
    sources.insert("masks".into(), tree);
    DatumPlan::new(&input, &sources, &PlanOptions::default()).expect("plan")
}

const INPUTS: [&str; 6] = [
    r#"{"pfs": {"repo": "images", "glob": "/*"}}"#,
    r#"{"pfs": {"repo": "images", "glob": "/"}}"#,
    r#"{"pfs": {"repo": "images", "glob": "/**"}}"#,
    r#"{"pfs": {"repo": "images", "glob": "/*/*"}}"#,
    r#"{"cross": [{"pfs": {"repo": "images", "glob": "/*"}}, {"pfs": {"repo": "masks", "glob": "/dir/*"}}]}"#,
    r#"{"join": [{"pfs": {"repo": "images", "glob": "/(*).png", "join_on": "$1"}}, {"pfs": {"repo": "masks", "glob": "/dir/(*).png", "join_on": "$1"}}]}"#,
];

fn write_tree(root: &Path, files: &[&str], write: impl Fn(&Path)) {
    for f in files {
        let p = root.join(f);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        write(&p);
    }
}

const FILES: [&str; 7] = [
    "a.png",
    "c.png",
    "dir/a.png",
    "dir/b.png",
    "dir/sub/deep/x",
    "zz/y.txt",
    "a-b",
];

#[test]
fn listing_and_hashing_show_the_same_datums() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_tree(tmp.path(), &FILES, |p| {
        fs::write(p, p.display().to_string()).expect("write")
    });
    fs::create_dir_all(tmp.path().join("dir/hollow/inside")).expect("mkdir");
    let listing: Arc<dyn TreeSource> =
        Arc::new(LocalTree::open_listing(tmp.path()).expect("listing"));
    let hashed: Arc<dyn TreeSource> = Arc::new(LocalTree::open(tmp.path()).expect("open"));
    for input in INPUTS {
        let by_paths = shown(&plan_over(input, listing.clone()));
        assert!(!by_paths.is_empty(), "{input}");
        assert_eq!(
            by_paths,
            shown(&plan_over(input, hashed.clone())),
            "{input}"
        );
    }
}

#[test]
fn preview_of_terabyte_files_lists_the_right_datums_without_reading_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Sparse: 1 TiB each on paper, no block on disk. Hashing one would take minutes.
    write_tree(tmp.path(), &FILES, |p| {
        fs::File::create(p)
            .and_then(|f| f.set_len(1 << 40))
            .expect("sparse file")
    });
    let spec = pipeline_core::spec::parse_str(
        "pipeline: {name: p}\ntransform: {cmd: [sh]}\ninput: {pfs: {repo: images, glob: '/*'}}\n",
        "p.yaml",
    )
    .expect("spec parses");
    let spec = spec[0].spec.clone();
    let local = [("images".to_string(), tmp.path().to_path_buf())];
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let shown =
            pipeline_core::pps::preview_datums(&spec, &local, || Ok(None)).map(|plan| shown(&plan));
        let _ = tx.send(shown.map_err(|e| e.to_string()));
    });
    let previewed = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a preview that reads no content ends at once, not after reading terabytes")
        .expect("preview");
    let paths = MemTree::from_listing(FILES.iter().map(|f| format!("/{f}"))).expect("listing");
    let expected = shown(&plan_over(INPUTS[0], Arc::new(paths)));
    assert_eq!(previewed, expected);
    let datum_paths = ["/a-b", "/a.png", "/c.png", "/dir/", "/zz/"];
    assert_eq!(previewed.len(), datum_paths.len(), "{previewed:#?}");
    for (line, path) in previewed.iter().zip(datum_paths) {
        assert!(
            line.contains(&format!(" [{path:?}] ")),
            "{line} is not {path}"
        );
    }
}
