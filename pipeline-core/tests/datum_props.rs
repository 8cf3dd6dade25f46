//! Property tests: cross count = product, union count = sum, join/group counts by key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use pipeline_core::datum::{DatumPlan, MemTree, PlanOptions, TreeSource};
use pipeline_core::spec::Input;
use proptest::prelude::*;

type Repos = HashMap<String, Arc<dyn TreeSource>>;

const GLOBS: &[&str] = &["/", "/*", "/*/*", "/**", "/a*", "/(*)", "/*/(*)", "/(?)*"];

fn tree() -> impl Strategy<Value = BTreeSet<String>> {
    prop::collection::btree_set("/[ab]{1,2}(/[abc]{1,2}){0,2}", 0..8).prop_filter(
        "a file cannot also be a directory",
        |paths| {
            paths
                .iter()
                .all(|p| !paths.iter().any(|q| q.starts_with(&format!("{p}/"))))
        },
    )
}

fn leaf(name: &str, repo: &str, glob: &str, extra: &str) -> String {
    format!(r#"{{"pfs": {{"name": "{name}", "repo": "{repo}", "glob": "{glob}"{extra}}}}}"#)
}

fn count(json: &str, repos: &Repos) -> usize {
    let input: Input = serde_json::from_str(json).unwrap();
    let plan = DatumPlan::new(&input, repos, &PlanOptions::default()).unwrap();
    plan.datums().collect::<Result<Vec<_>, _>>().unwrap().len()
}

fn repos(trees: &[BTreeSet<String>]) -> Repos {
    trees
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                format!("r{i}"),
                Arc::new(MemTree::from_paths(t).unwrap()) as Arc<dyn TreeSource>,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn cross_count_is_the_product_and_union_count_the_sum(
        trees in prop::collection::vec(tree(), 1..4),
        globs in prop::collection::vec(prop::sample::select(GLOBS), 3),
    ) {
        let r = repos(&trees);
        let leaves: Vec<String> = (0..trees.len()).map(|i| leaf(&format!("in{i}"), &format!("r{i}"), globs[i], "")).collect();
        let counts: Vec<usize> = leaves.iter().map(|l| count(l, &r)).collect();
        let cross = count(&format!(r#"{{"cross": [{}]}}"#, leaves.join(",")), &r);
        let union = count(&format!(r#"{{"union": [{}]}}"#, leaves.join(",")), &r);
        prop_assert_eq!(cross, counts.iter().product::<usize>());
        prop_assert_eq!(union, counts.iter().sum::<usize>());
        // Nesting does not change the count: cross(a, cross(b, c)) = cross(a, b, c).
        if leaves.len() == 3 {
            let nested = count(&format!(r#"{{"cross": [{}, {{"cross": [{}, {}]}}]}}"#, leaves[0], leaves[1], leaves[2]), &r);
            prop_assert_eq!(nested, cross);
        }
    }

    #[test]
    fn join_and_group_counts_follow_the_keys(a in tree(), b in tree(), outer_a in any::<bool>()) {
        let r = repos(&[a, b]);
        // Key = the first path segment.
        let key_of = |repo: &str| -> BTreeMap<String, usize> {
            let mut m = BTreeMap::new();
            for e in r[repo].walk() {
                let e = e.unwrap();
                let trimmed = e.path.trim_end_matches('/');
                if trimmed.matches('/').count() == 1 {
                    *m.entry(trimmed[1..].to_string()).or_insert(0) += 1;
                }
            }
            m
        };
        let (ka, kb) = (key_of("r0"), key_of("r1"));
        let outer = if outer_a { r#", "outer_join": true"# } else { "" };
        let ja = leaf("a", "r0", "/(*)", &format!(r#", "join_on": "$1", "group_by": "$1"{outer}"#));
        let jb = leaf("b", "r1", "/(*)", r#", "join_on": "$1", "group_by": "$1""#);
        let mut want = 0;
        for (k, n) in &ka {
            match kb.get(k) {
                Some(m) => want += n * m,
                None if outer_a => want += n,
                None => {}
            }
        }
        prop_assert_eq!(count(&format!(r#"{{"join": [{ja}, {jb}]}}"#), &r), want);
        let keys: BTreeSet<&String> = ka.keys().chain(kb.keys()).collect();
        prop_assert_eq!(count(&format!(r#"{{"group": [{ja}, {jb}]}}"#), &r), keys.len());
    }
}
