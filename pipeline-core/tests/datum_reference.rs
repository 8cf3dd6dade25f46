//! Every worked example of reference section 2 (pachyderm-semantics.md), as datum plans.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use pipeline_core::datum::{
    Datum, DatumPlan, JobEnv, MemTree, PlanError, PlanOptions, SyntheticTree, TreeSource,
};
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::spec::Input;

type Repos = HashMap<String, Arc<dyn TreeSource>>;

fn repos(list: Vec<(&str, MemTree)>) -> Repos {
    list.into_iter()
        .map(|(n, t)| (n.to_string(), Arc::new(t) as Arc<dyn TreeSource>))
        .collect()
}

fn input(json: &str) -> Input {
    serde_json::from_str(json).expect("test input parses")
}

fn plan(json: &str, repos: &Repos) -> DatumPlan {
    DatumPlan::new(&input(json), repos, &PlanOptions::default()).expect("plan")
}

fn datums(plan: &DatumPlan) -> Vec<Datum> {
    plan.datums().collect::<Result<_, _>>().expect("datums")
}

/// Each datum as "name:path" items joined by " ".
fn show(ds: &[Datum]) -> Vec<String> {
    ds.iter()
        .map(|d| {
            d.inputs
                .iter()
                .map(|i| format!("{}:{}", i.leaf.name, i.path))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn images() -> Repos {
    repos(vec![(
        "images",
        MemTree::from_paths(["/a.png", "/b.png", "/dir/c.png", "/dir/sub/d.png"]).unwrap(),
    )])
}

fn glob_paths(glob: &str) -> Vec<String> {
    let p = plan(
        &format!(r#"{{"pfs": {{"repo": "images", "glob": {glob:?}}}}}"#),
        &images(),
    );
    datums(&p)
        .into_iter()
        .map(|d| d.inputs[0].path.clone())
        .collect()
}

/// foo0..foo49, contents = path.
fn foos() -> MemTree {
    MemTree::from_paths((0..50).map(|i| format!("/foo{i}"))).unwrap()
}

/// The ID formula of reference §2.12, written out independently of the library.
fn expected_id(inputs: &[(&str, &str, &str, &str)]) -> String {
    let mut h = Blake2b::<U32>::new();
    for (name, repo, branch, path) in inputs {
        for s in [name, repo, branch, path] {
            h.update(s.as_bytes());
            h.update((s.len() as i64).to_be_bytes());
        }
    }
    hex::encode(h.finalize())
}

// ---- 2.1 glob table -------------------------------------------------------------------------

#[test]
fn glob_table_of_2_1() {
    assert_eq!(glob_paths("/"), ["/"]);
    assert_eq!(glob_paths("/*"), ["/a.png", "/b.png", "/dir/"]);
    assert_eq!(glob_paths("/*/*"), ["/dir/c.png", "/dir/sub/"]);
    assert_eq!(
        glob_paths("/**"),
        [
            "/a.png",
            "/b.png",
            "/dir/",
            "/dir/c.png",
            "/dir/sub/",
            "/dir/sub/d.png"
        ]
    );
    assert_eq!(
        glob_paths("/**.png"),
        ["/a.png", "/b.png", "/dir/c.png", "/dir/sub/d.png"]
    );
    assert_eq!(glob_paths("/a*"), ["/a.png"]);
    assert_eq!(glob_paths("/dir/*"), ["/dir/c.png", "/dir/sub/"]);
    assert_eq!(glob_paths("*"), glob_paths("/*"));
    assert_eq!(glob_paths("dir/*"), glob_paths("/dir/*"));
    assert_eq!(glob_paths("/*/"), glob_paths("/*"));
    assert_eq!(glob_paths(""), ["/"]);
}

#[test]
fn directory_datum_holds_its_files_and_root_holds_everything() {
    let r = images();
    let p = plan(r#"{"pfs": {"repo": "images", "glob": "/*"}}"#, &r);
    let ds = datums(&p);
    let files = |p: &DatumPlan, d: &Datum| p.files(d).map(|f| f.unwrap().path).collect::<Vec<_>>();
    assert_eq!(files(&p, &ds[0]), ["/a.png"]);
    assert_eq!(files(&p, &ds[2]), ["/dir/c.png", "/dir/sub/d.png"]);
    let root = plan(r#"{"pfs": {"repo": "images", "glob": "/"}}"#, &r);
    let rd = datums(&root);
    assert_eq!(
        files(&root, &rd[0]),
        ["/a.png", "/b.png", "/dir/c.png", "/dir/sub/d.png"]
    );
    // A datum from another plan is refused, not misread.
    assert!(matches!(
        root.files(&ds[0]).next(),
        Some(Err(PlanError::ForeignDatum { .. }))
    ));
}

#[test]
fn doc_example_double_star_test_txt() {
    let r = repos(vec![(
        "data",
        MemTree::from_paths([
            "/test1.txt",
            "/foo-1/test2.txt",
            "/foo-2/foo-2_1/test3.txt",
            "/foo-2/foo-2_1/anothertest.txt",
            "/nope1.txt",
            "/foo-1/nope2.txt",
        ])
        .unwrap(),
    )]);
    let p = plan(r#"{"pfs": {"repo": "data", "glob": "/**test*.txt"}}"#, &r);
    let got: BTreeSet<String> = datums(&p)
        .iter()
        .map(|d| d.inputs[0].path.clone())
        .collect();
    let want: BTreeSet<String> = [
        "/test1.txt",
        "/foo-1/test2.txt",
        "/foo-2/foo-2_1/test3.txt",
        "/foo-2/foo-2_1/anothertest.txt",
    ]
    .map(String::from)
    .into();
    assert_eq!(got, want);
}

#[test]
fn empty_commit_gives_no_datum_for_any_glob() {
    let r = repos(vec![("images", MemTree::empty())]);
    for glob in ["/", "/*", "/**", "/(*)"] {
        let p = plan(
            &format!(r#"{{"pfs": {{"repo": "images", "glob": {glob:?}}}}}"#),
            &r,
        );
        assert_eq!(datums(&p).len(), 0, "{glob}");
    }
}

// ---- 2.4 cross, 2.5 union ------------------------------------------------------------------

const IN1: &str = r#"{"pfs": {"name": "in1", "repo": "foos", "glob": "/foo?1"}}"#;
const IN2: &str = r#"{"pfs": {"name": "in2", "repo": "foos", "glob": "/foo*2"}}"#;

#[test]
fn cross_example_gives_20_first_child_outermost() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(&format!(r#"{{"cross": [{IN1}, {IN2}]}}"#), &r);
    let ds = show(&datums(&p));
    assert_eq!(ds.len(), 20);
    assert_eq!(ds[0], "in1:/foo11 in2:/foo12");
    assert_eq!(ds[1], "in1:/foo11 in2:/foo2");
    assert_eq!(ds[5], "in1:/foo21 in2:/foo12");
    assert_eq!(ds[19], "in1:/foo41 in2:/foo42");
}

#[test]
fn one_child_cross_equals_the_child() {
    let r = repos(vec![("foos", foos())]);
    let alone: Vec<_> = datums(&plan(IN1, &r)).iter().map(Datum::id).collect();
    let crossed: Vec<_> = datums(&plan(&format!(r#"{{"cross": [{IN1}]}}"#), &r))
        .iter()
        .map(Datum::id)
        .collect();
    assert_eq!(alone, crossed);
}

#[test]
fn union_example_gives_9() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(&format!(r#"{{"union": [{IN1}, {IN2}]}}"#), &r);
    let ds = show(&datums(&p));
    assert_eq!(
        ds,
        [
            "in1:/foo11",
            "in1:/foo21",
            "in1:/foo31",
            "in1:/foo41",
            "in2:/foo12",
            "in2:/foo2",
            "in2:/foo22",
            "in2:/foo32",
            "in2:/foo42"
        ]
    );
}

#[test]
fn union_collapses_identical_datums_keeping_the_first() {
    let r = repos(vec![("foos", foos())]);
    let a = r#"{"pfs": {"repo": "foos", "glob": "/foo1?"}}"#;
    let b = r#"{"pfs": {"repo": "foos", "glob": "/foo?1"}}"#;
    let p = plan(&format!(r#"{{"union": [{a}, {b}]}}"#), &r);
    // foo10..19 plus foo21, foo31, foo41 (foo11 appears in both).
    assert_eq!(datums(&p).len(), 13);
}

// ---- 2.6 join --------------------------------------------------------------------------------

#[test]
fn join_example_gives_16() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(
        r#"{"join": [
            {"pfs": {"name": "a", "repo": "foos", "glob": "/foo(?)(?)", "join_on": "$1$2"}},
            {"pfs": {"name": "b", "repo": "foos", "glob": "/foo(?)(?)", "join_on": "$2$1"}}
        ]}"#,
        &r,
    );
    let ds = datums(&p);
    assert_eq!(ds.len(), 16);
    let shown: BTreeSet<String> = show(&ds).into_iter().collect();
    assert!(shown.contains("a:/foo11 b:/foo11"));
    assert!(shown.contains("a:/foo12 b:/foo21"));
    assert!(shown.contains("a:/foo44 b:/foo44"));
    assert_eq!(ds[0].inputs[0].join_key, "11");
    assert!(
        ds.iter()
            .all(|d| d.inputs.len() == 2 && d.inputs[0].join_key == d.inputs[1].join_key)
    );
}

#[test]
fn outer_join_example_gives_10() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(
        r#"{"join": [
            {"pfs": {"name": "a", "repo": "foos", "glob": "/foo1(?)", "join_on": "$1", "outer_join": true}},
            {"pfs": {"name": "b", "repo": "foos", "glob": "/foo(?)1", "join_on": "$1", "outer_join": true}}
        ]}"#,
        &r,
    );
    let ds = show(&datums(&p));
    assert_eq!(ds.len(), 10);
    let singles: BTreeSet<&str> = ds
        .iter()
        .filter(|d| !d.contains(' '))
        .map(String::as_str)
        .collect();
    assert_eq!(
        singles,
        [
            "a:/foo10", "a:/foo15", "a:/foo16", "a:/foo17", "a:/foo18", "a:/foo19"
        ]
        .into()
    );
    assert!(ds.contains(&"a:/foo13 b:/foo31".to_string()));
}

fn multiples(k: u32) -> MemTree {
    MemTree::from_paths((0..12).filter(|i| i % k == 0).map(|i| format!("/{i}"))).unwrap()
}

fn join_keys(outer2: bool, outer3: bool) -> BTreeSet<String> {
    let r = repos(vec![("two", multiples(2)), ("three", multiples(3))]);
    let p = plan(
        &format!(
            r#"{{"join": [
                {{"pfs": {{"repo": "two", "glob": "/(*)", "join_on": "$1", "outer_join": {outer2}}}}},
                {{"pfs": {{"repo": "three", "glob": "/(*)", "join_on": "$1", "outer_join": {outer3}}}}}
            ]}}"#
        ),
        &r,
    );
    datums(&p)
        .iter()
        .map(|d| d.inputs[0].join_key.clone())
        .collect()
}

#[test]
fn list_deleted_datums_join_variants() {
    let set = |v: &[u32]| v.iter().map(u32::to_string).collect::<BTreeSet<_>>();
    assert_eq!(join_keys(false, false), set(&[0, 6]));
    assert_eq!(join_keys(true, false), set(&[0, 2, 4, 6, 8, 10]));
    assert_eq!(join_keys(false, true), set(&[0, 3, 6, 9]));
    assert_eq!(join_keys(true, true), set(&[0, 2, 3, 4, 6, 8, 9, 10]));
}

#[test]
fn readings_parameters_join() {
    let readings = MemTree::from_paths((1..=5).map(|i| format!("/day{i}/file{i}.txt"))).unwrap();
    let parameters = MemTree::from_paths((1..=8).map(|i| format!("/file{i}.txt"))).unwrap();
    let r = repos(vec![("readings", readings), ("parameters", parameters)]);
    let spec = |outer: bool| {
        format!(
            r#"{{"join": [
                {{"pfs": {{"repo": "readings", "glob": "/*/(*).txt", "join_on": "$1"}}}},
                {{"pfs": {{"repo": "parameters", "glob": "/(*).txt", "join_on": "$1", "outer_join": {outer}}}}}
            ]}}"#
        )
    };
    let inner = datums(&plan(&spec(false), &r));
    assert_eq!(inner.len(), 5);
    assert_eq!(
        show(&inner)[0],
        "readings:/day1/file1.txt parameters:/file1.txt"
    );
    let outer = datums(&plan(&spec(true), &r));
    assert_eq!(outer.len(), 8);
    assert_eq!(
        outer
            .iter()
            .filter(|d| d.inputs.len() == 1 && d.inputs[0].leaf.name == "parameters")
            .count(),
        3
    );
}

#[test]
fn join_without_key_is_a_cross_and_trailing_slash_does_not_matter() {
    let r = repos(vec![
        ("foos", foos()),
        ("images", MemTree::from_paths(["/x/1", "/y/2"]).unwrap()),
    ]);
    let p = plan(
        r#"{"join": [
            {"pfs": {"repo": "foos", "glob": "/foo1?"}},
            {"pfs": {"repo": "images", "glob": "/*"}}
        ]}"#,
        &r,
    );
    assert_eq!(datums(&p).len(), 20);
    // Captures are taken on the path without the directory's trailing '/'.
    let a = plan(
        r#"{"pfs": {"repo": "images", "glob": "/(*)", "join_on": "$1"}}"#,
        &r,
    );
    let b = plan(
        r#"{"pfs": {"repo": "images", "glob": "/(*)/", "join_on": "$1"}}"#,
        &r,
    );
    let keys = |p: &DatumPlan| {
        datums(p)
            .iter()
            .map(|d| d.inputs[0].join_key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&a), ["x", "y"]);
    assert_eq!(keys(&a), keys(&b));
}

// ---- 2.7 group -------------------------------------------------------------------------------

#[test]
fn group_single_gives_4() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(
        r#"{"group": [{"pfs": {"repo": "foos", "glob": "/foo(?)(?)", "group_by": "$1"}}]}"#,
        &r,
    );
    let ds = datums(&p);
    assert_eq!(ds.len(), 4);
    for (k, d) in ds.iter().enumerate() {
        assert_eq!(d.inputs.len(), 10);
        let want: Vec<String> = (0..10).map(|j| format!("/foo{}{j}", k + 1)).collect();
        assert_eq!(
            d.inputs.iter().map(|i| i.path.clone()).collect::<Vec<_>>(),
            want
        );
        assert_eq!(d.inputs[0].group_key, (k + 1).to_string());
    }
}

#[test]
fn group_doubles_gives_10() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(
        r#"{"group": [
            {"pfs": {"name": "a", "repo": "foos", "glob": "/foo(?)(?)", "group_by": "$1"}},
            {"pfs": {"name": "b", "repo": "foos", "glob": "/foo(?)(?)", "group_by": "$2"}}
        ]}"#,
        &r,
    );
    let ds = datums(&p);
    assert_eq!(ds.len(), 10);
    let by_key: HashMap<String, Vec<String>> = ds
        .iter()
        .map(|d| {
            let items = d
                .inputs
                .iter()
                .map(|i| format!("{}:{}", i.leaf.name, i.path))
                .collect();
            (d.inputs[0].group_key.clone(), items)
        })
        .collect();
    assert_eq!(
        by_key["0"],
        ["b:/foo10", "b:/foo20", "b:/foo30", "b:/foo40"]
    );
    let mut one: Vec<String> = (10..20).map(|i| format!("a:/foo{i}")).collect();
    one.extend(["b:/foo11", "b:/foo21", "b:/foo31", "b:/foo41"].map(String::from));
    assert_eq!(by_key["1"], one);
    for k in 5..10 {
        assert!(by_key[&k.to_string()].iter().all(|s| s.starts_with("b:")));
    }
}

#[test]
fn union_group_gives_50() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(
        r#"{"union": [
            {"pfs": {"repo": "foos", "glob": "/foo(?)(?)"}},
            {"group": [{"pfs": {"repo": "foos", "glob": "/foo(?)(?)", "group_by": "$2"}}]}
        ]}"#,
        &r,
    );
    let ds = datums(&p);
    assert_eq!(ds.len(), 50);
    assert_eq!(ds.iter().filter(|d| d.inputs.len() == 1).count(), 40);
    assert_eq!(ds.iter().filter(|d| d.inputs.len() == 4).count(), 10);
}

#[test]
fn group_labresults_doc_example() {
    let lab = MemTree::from_paths([
        "/T1-patient1-lab1.txt",
        "/T2-patient1-lab2.txt",
        "/T3-patient1-lab3.txt",
        "/T4-patient2-lab1.txt",
        "/T5-patient2-lab2.txt",
        "/T6-patient3-lab1.txt",
    ])
    .unwrap();
    let r = repos(vec![("labresults", lab)]);
    let p = plan(
        r#"{"group": [{"pfs": {"repo": "labresults", "glob": "/*-(*)-lab*.txt", "group_by": "$1"}}]}"#,
        &r,
    );
    let sizes: Vec<(String, usize)> = datums(&p)
        .iter()
        .map(|d| (d.inputs[0].group_key.clone(), d.inputs.len()))
        .collect();
    assert_eq!(
        sizes,
        [
            ("patient1".to_string(), 3),
            ("patient2".to_string(), 2),
            ("patient3".to_string(), 1)
        ]
    );
}

#[test]
fn group_without_group_by_is_one_datum() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(
        r#"{"group": [{"pfs": {"repo": "foos", "glob": "/foo4?"}}]}"#,
        &r,
    );
    let ds = datums(&p);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].inputs.len(), 10);
}

// ---- 2.8 cron --------------------------------------------------------------------------------

#[test]
fn cron_is_a_pfs_input_over_the_tick_repo() {
    let spec = input(r#"{"cron": {"name": "tick", "spec": "@every 1m"}}"#);
    let opts = PlanOptions {
        pipeline_name: Some("p".into()),
    };
    let err = DatumPlan::new(&spec, &Repos::new(), &opts).unwrap_err();
    assert!(
        matches!(err, PlanError::CronWithoutTicks { ref repo, .. } if repo == "p_tick"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("no datums until the pipeline is created"),
        "{err}"
    );

    let ticks = MemTree::from_files([("/2024-05-01T10:00:00Z", ""), ("/2024-05-01T10:01:00Z", "")])
        .unwrap();
    let r = repos(vec![("p_tick", ticks)]);
    let p = DatumPlan::new(&spec, &r, &opts).unwrap();
    let ds = datums(&p);
    assert_eq!(
        show(&ds),
        ["tick:/2024-05-01T10:00:00Z", "tick:/2024-05-01T10:01:00Z"]
    );
    assert_eq!(
        ds[0].id().to_hex(),
        expected_id(&[("tick", "p_tick", "master", "/2024-05-01T10:00:00Z")])
    );
}

// ---- 2.9 empty inputs --------------------------------------------------------------------------

#[test]
fn empty_input_rules_of_2_9() {
    let r = repos(vec![("foos", foos()), ("empty", MemTree::empty())]);
    let e = r#"{"pfs": {"repo": "empty", "glob": "/*", "join_on": "$0", "group_by": "$0"}}"#;
    let f = r#"{"pfs": {"repo": "foos", "glob": "/foo1(?)", "join_on": "$1", "group_by": "$1"}}"#;
    let fo =
        r#"{"pfs": {"repo": "foos", "glob": "/foo1(?)", "join_on": "$1", "outer_join": true}}"#;
    let count = |json: String| datums(&plan(&json, &r)).len();
    assert_eq!(count(format!(r#"{{"cross": [{f}, {e}]}}"#)), 0);
    assert_eq!(count(format!(r#"{{"cross": [{e}, {f}]}}"#)), 0);
    assert_eq!(count(format!(r#"{{"union": [{e}, {f}]}}"#)), 10);
    assert_eq!(count(format!(r#"{{"union": [{e}]}}"#)), 0);
    assert_eq!(count(format!(r#"{{"join": [{f}, {e}]}}"#)), 0);
    assert_eq!(count(format!(r#"{{"join": [{fo}, {e}]}}"#)), 10);
    assert_eq!(count(format!(r#"{{"group": [{e}, {f}]}}"#)), 10);
}

#[test]
fn nested_empty_cross() {
    let r = repos(vec![("foos", foos()), ("empty", MemTree::empty())]);
    let p = plan(
        r#"{"cross": [
            {"pfs": {"name": "x", "repo": "foos", "glob": "/foo1?"}},
            {"cross": [{"pfs": {"name": "y", "repo": "foos", "glob": "/foo2?"}}, {"pfs": {"repo": "empty", "glob": "/*"}}]}
        ]}"#,
        &r,
    );
    assert_eq!(datums(&p).len(), 0);
}

// ---- 2.11 order, 2.12 ID and hash ------------------------------------------------------------

#[test]
fn datum_order_is_the_child_order_and_decides_the_id() {
    let r = repos(vec![
        ("a", MemTree::from_paths(["/x"]).unwrap()),
        ("b", MemTree::from_paths(["/y"]).unwrap()),
    ]);
    let ab = datums(&plan(
        r#"{"cross": [{"pfs": {"repo": "a", "glob": "/*"}}, {"pfs": {"repo": "b", "glob": "/*"}}]}"#,
        &r,
    ));
    let ba = datums(&plan(
        r#"{"cross": [{"pfs": {"repo": "b", "glob": "/*"}}, {"pfs": {"repo": "a", "glob": "/*"}}]}"#,
        &r,
    ));
    assert_eq!(
        ab[0].id().to_hex(),
        expected_id(&[("a", "a", "master", "/x"), ("b", "b", "master", "/y")])
    );
    assert_eq!(
        ba[0].id().to_hex(),
        expected_id(&[("b", "b", "master", "/y"), ("a", "a", "master", "/x")])
    );
    assert_ne!(ab[0].id(), ba[0].id());
}

#[test]
fn datum_ids_match_the_formula() {
    let r = images();
    let p = plan(
        r#"{"pfs": {"name": "pics", "repo": "images", "branch": "dev", "glob": "/*"}}"#,
        &r,
    );
    for d in datums(&p) {
        assert_eq!(
            d.id().to_hex(),
            expected_id(&[("pics", "images", "dev", &d.inputs[0].path)])
        );
    }
    let root = datums(&plan(r#"{"pfs": {"repo": "images", "glob": "/"}}"#, &r));
    assert_eq!(
        root[0].id().to_hex(),
        expected_id(&[("images", "images", "master", "/")])
    );
    // A known value, so the formula itself cannot drift: name/repo/branch/path = a/b/c/d.
    let mut h = Blake2b::<U32>::new();
    h.update(b"a\0\0\0\0\0\0\0\x01b\0\0\0\0\0\0\0\x01c\0\0\0\0\0\0\0\x01d\0\0\0\0\0\0\0\x01");
    assert_eq!(
        expected_id(&[("a", "b", "c", "d")]),
        hex::encode(h.finalize())
    );
}

#[test]
fn datum_hash_is_id_hex_plus_non_reference_hashes_plus_salt() {
    let r = repos(vec![
        ("a", MemTree::from_files([("/x", "X")]).unwrap()),
        ("b", MemTree::from_files([("/y", "Y")]).unwrap()),
    ]);
    let p = plan(
        r#"{"cross": [{"pfs": {"repo": "a", "glob": "/*"}}, {"pfs": {"repo": "b", "glob": "/*", "reference": true}}]}"#,
        &r,
    );
    let d = &datums(&p)[0];
    let mut h = Blake2b::<U32>::new();
    h.update(d.id().to_hex().as_bytes());
    h.update(blake3::hash(b"X").as_bytes());
    h.update(b"salt1");
    assert_eq!(d.hash("salt1").to_hex(), hex::encode(h.finalize()));
    assert_ne!(d.hash("salt1"), d.hash("salt2"));
}

#[test]
fn renaming_inside_a_directory_datum_changes_its_hash_not_its_id() {
    let before = repos(vec![(
        "r",
        MemTree::from_files([("/d/a", "same")]).unwrap(),
    )]);
    let after = repos(vec![(
        "r",
        MemTree::from_files([("/d/b", "same")]).unwrap(),
    )]);
    let spec = r#"{"pfs": {"repo": "r", "glob": "/*"}}"#;
    let (x, y) = (
        &datums(&plan(spec, &before))[0],
        &datums(&plan(spec, &after))[0],
    );
    assert_eq!(x.id(), y.id());
    assert_ne!(x.hash(""), y.hash(""));
}

// ---- environment (reference §3.4) --------------------------------------------------------------

#[test]
fn environment_variables() {
    let r = repos(vec![
        ("foos", foos()),
        ("images", MemTree::from_paths(["/dir/c.png"]).unwrap()),
    ]);
    let p = plan(
        r#"{"cross": [
            {"pfs": {"repo": "images", "glob": "/*"}},
            {"pfs": {"repo": "foos", "glob": "/foo1(?)", "join_on": "$1"}},
            {"pfs": {"name": "whole", "repo": "images", "glob": "/"}}
        ]}"#,
        &r,
    );
    let d = &datums(&p)[0];
    let mut job = JobEnv::new("job1");
    job.input_commits.insert("foos".into(), "c-foos".into());
    job.pipeline_name = Some("edges".into());
    let env: HashMap<String, String> = d.env(&job).into_iter().collect();
    assert_eq!(env["images"], "/pfs/images/dir");
    assert_eq!(env["images_COMMIT"], "job1");
    assert_eq!(env["foos"], "/pfs/foos/foo10");
    assert_eq!(env["foos_COMMIT"], "c-foos");
    assert_eq!(env["PACH_DATUM_foos_JOIN_ON"], "0");
    assert!(!env.contains_key("PACH_DATUM_images_JOIN_ON"));
    assert!(!env.contains_key("PACH_DATUM_foos_GROUP_BY"));
    assert_eq!(env["whole"], "/pfs/whole");
    assert_eq!(env["PACH_DATUM_ID"], d.id().to_hex());
    assert_eq!(env["PACH_JOB_ID"], "job1");
    assert_eq!(env["PACH_OUTPUT_COMMIT_ID"], "job1");
    assert_eq!(env["PPS_PIPELINE_NAME"], "edges");
}

#[test]
fn group_datum_env_keeps_the_last_file() {
    let r = repos(vec![("foos", foos())]);
    let p = plan(
        r#"{"group": [{"pfs": {"repo": "foos", "glob": "/foo4(?)", "group_by": "x"}}]}"#,
        &r,
    );
    let d = &datums(&p)[0];
    let env = d.env(&JobEnv::new("j"));
    assert_eq!(env.iter().filter(|(k, _)| k == "foos").count(), 1);
    assert_eq!(
        env.iter().find(|(k, _)| k == "foos").unwrap().1,
        "/pfs/foos/foo49"
    );
    assert!(env.contains(&("PACH_DATUM_foos_GROUP_BY".into(), "x".into())));
}

// ---- errors ------------------------------------------------------------------------------------

#[test]
fn plan_errors_name_the_field() {
    let r = images();
    let err = |json: &str| {
        let e = DatumPlan::new(&input(json), &r, &PlanOptions::default()).unwrap_err();
        ErrorChain(&e).to_string()
    };
    assert!(
        err(r#"{"cross": [{"pfs": {"repo": "images", "glob": "/[a"}}]}"#)
            .starts_with("input.cross[0].pfs.glob:")
    );
    assert!(
        err(r#"{"pfs": {"repo": "images", "glob": "/*", "join_on": "$01"}}"#)
            .starts_with("input.pfs.join_on:")
    );
    assert!(err(r#"{"pfs": {"glob": "/*"}}"#).contains("input.pfs.repo"));
    assert!(err(r#"{"pfs": {"repo": "images"}}"#).contains("input.pfs.glob"));
    assert!(err(r#"{"union": [{}]}"#).starts_with("input.union[0]:"));
    let e = err(r#"{"pfs": {"repo": "nope", "glob": "/*"}}"#);
    assert!(e.contains("\"nope\""), "{e}");
}

// ---- scale -------------------------------------------------------------------------------------

#[test]
fn million_path_plan_streams() {
    let r: Repos = [(
        "big".to_string(),
        Arc::new(SyntheticTree::flat(1_000_000).without_hashes()) as Arc<dyn TreeSource>,
    )]
    .into();
    let p = plan(r#"{"pfs": {"repo": "big", "glob": "/*"}}"#, &r);
    let started = std::time::Instant::now();
    let mut it = p.datums();
    let first = it.next().unwrap().unwrap();
    assert_eq!(first.inputs[0].path, "/f000000");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "first datum took {:?}",
        started.elapsed()
    );
    assert_eq!(1 + it.count(), 1_000_000);
}

#[test]
fn cross_of_large_children_streams() {
    let r: Repos = [
        (
            "a".to_string(),
            Arc::new(SyntheticTree::flat(300).without_hashes()) as Arc<dyn TreeSource>,
        ),
        (
            "b".to_string(),
            Arc::new(SyntheticTree::flat(300).without_hashes()) as Arc<dyn TreeSource>,
        ),
    ]
    .into();
    let p = plan(
        r#"{"cross": [{"pfs": {"repo": "a", "glob": "/*"}}, {"pfs": {"repo": "b", "glob": "/*"}}]}"#,
        &r,
    );
    assert_eq!(p.datums().count(), 90_000);
}

#[test]
fn a_glob_that_exhausts_backtracking_is_a_plan_error() {
    let long = format!("/{}", "b".repeat(400));
    let r = repos(vec![(
        "r",
        MemTree::from_paths([long.as_str(), "/aay"]).unwrap(),
    )]);
    let p = plan(
        r#"{"pfs": {"repo": "r", "glob": "/!(x)!(x)!(x)!(x)!(x)y"}}"#,
        &r,
    );
    let results: Vec<_> = p.datums().collect();
    assert_eq!(results.len(), 2, "the error ends the stream");
    assert!(results[0].is_ok());
    match &results[1] {
        Err(PlanError::Match { field, .. }) => assert_eq!(field, "input.pfs.glob"),
        other => panic!("expected a match error, got {other:?}"),
    }
}

#[test]
fn plans_and_datums_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<DatumPlan>();
    send_sync::<Datum>();
    send_sync::<pipeline_core::glob::Glob>();
    send::<pipeline_core::datum::Datums<'static>>();
    send_sync::<PlanError>();
}
