//! `draw pipeline`: the DAG of repos and pipelines as text.
//!
//! The drawing is a forest, like `tree(1)`: each root is a repo no pipeline writes (an
//! input repo, a cron repo) or a pipeline without inputs; below a node come the pipelines
//! that read it, sorted by name. A pipeline with several inputs is drawn in full under the
//! first of them in drawing order and named again, marked `(↑ above)`, under the others, so
//! every edge shows and nothing is drawn twice. Nodes are sorted by name, so the same DAG
//! always gives the same text; repos of the default project are drawn without it. Each level indents by 4 columns: a DAG 8 levels deep with
//! 40-character names still fits in 80 columns. `-o json` prints one object per node
//! instead (`name`, `kind`, `inputs`, `outputs`).

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use pipeline_core::pfs::DEFAULT_PROJECT;
use pipeline_core::pps::PipelineInfo;
use serde::Serialize;

use crate::conn::{Access, Global, connect};
use crate::error::Res;
use crate::output::{Format, outln, print_json};

/// `draw pipeline`.
#[derive(Debug, Args)]
pub struct DrawArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// One node of the DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The repo (for a pipeline: its output repo, named like the pipeline).
    pub name: String,
    /// `repo` or `pipeline`.
    pub kind: &'static str,
    /// The repos a pipeline reads, sorted (none for a repo).
    pub inputs: Vec<String>,
    /// The pipelines that read this node, sorted.
    pub outputs: Vec<String>,
    /// Whether the pipeline is stopped.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

/// The nodes of the DAG of `pipelines`, sorted by name.
pub fn nodes(pipelines: &[PipelineInfo]) -> Vec<Node> {
    let mut all: BTreeMap<String, Node> = BTreeMap::new();
    let blank = |name: &str, kind| Node {
        name: name.to_string(),
        kind,
        inputs: Vec::new(),
        outputs: Vec::new(),
        stopped: false,
    };
    for p in pipelines {
        let name = p.output_branch.repo.to_string();
        let inputs: BTreeSet<String> = p.inputs.iter().map(|b| b.repo.to_string()).collect();
        let node = all
            .entry(name.clone())
            .or_insert_with(|| blank(&name, "pipeline"));
        node.kind = "pipeline";
        node.stopped = p.stopped;
        node.inputs = inputs.iter().cloned().collect();
        for i in inputs {
            all.entry(i.clone())
                .or_insert_with(|| blank(&i, "repo"))
                .outputs
                .push(name.clone());
        }
    }
    let mut out: Vec<Node> = all.into_values().collect();
    for n in &mut out {
        n.outputs.sort();
        n.outputs.dedup();
    }
    out
}

/// The drawing of `nodes` (see the module docs), one line per entry.
pub fn render(nodes: &[Node]) -> Vec<String> {
    let by_name: BTreeMap<&str, &Node> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut lines = Vec::new();
    let mut drawn = BTreeSet::new();
    for root in nodes.iter().filter(|n| n.inputs.is_empty()) {
        draw(root, &by_name, "", None, &mut drawn, &mut lines);
    }
    // A cycle has no root; the store refuses them, but draw what is left all the same.
    for n in nodes {
        if !drawn.contains(n.name.as_str()) {
            draw(n, &by_name, "", None, &mut drawn, &mut lines);
        }
    }
    lines
}

/// Draws `node` and, the first time, what reads it. `branch` is `Some(last)` below a
/// parent: the connector to draw, and whether it is the parent's last child.
fn draw<'a>(
    node: &'a Node,
    by_name: &BTreeMap<&str, &'a Node>,
    prefix: &str,
    branch: Option<bool>,
    drawn: &mut BTreeSet<&'a str>,
    lines: &mut Vec<String>,
) {
    let connector = match branch {
        None => "",
        Some(true) => "└── ",
        Some(false) => "├── ",
    };
    let first = drawn.insert(node.name.as_str());
    let mut label = short_name(&node.name).to_string();
    if node.stopped {
        label.push_str(" [stopped]");
    }
    if !first {
        label.push_str(" (↑ above)");
    }
    lines.push(format!("{prefix}{connector}{label}"));
    if !first {
        return;
    }
    let child_prefix = match branch {
        None => prefix.to_string(),
        Some(true) => format!("{prefix}    "),
        Some(false) => format!("{prefix}│   "),
    };
    let children: Vec<&Node> = node
        .outputs
        .iter()
        .filter_map(|o| by_name.get(o.as_str()).copied())
        .collect();
    for (i, c) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        draw(c, by_name, &child_prefix, Some(last), drawn, lines);
    }
}

/// A repo's name as drawn: without the project when it is the default one.
fn short_name(full: &str) -> &str {
    full.strip_prefix(DEFAULT_PROJECT)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(full)
}

/// Runs `draw pipeline`.
pub fn run(g: &Global, args: DrawArgs) -> Res {
    let conn = connect(g, Access::Read, None)?;
    let pipelines = conn.call(conn.client.list_pipelines())?;
    let nodes = nodes(&pipelines);
    match args.output {
        Format::Json => nodes.iter().for_each(print_json),
        Format::Text | Format::Yaml => render(&nodes).iter().for_each(|l| outln!("{l}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, inputs: &[&str], outputs: &[&str]) -> Node {
        Node {
            name: name.into(),
            kind: if inputs.is_empty() {
                "repo"
            } else {
                "pipeline"
            },
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            stopped: false,
        }
    }

    #[test]
    fn a_diamond_draws_each_node_once_and_names_the_second_edge() {
        let nodes = [
            node("data", &[], &["left", "right"]),
            node("join", &["left", "right"], &[]),
            node("left", &["data"], &["join"]),
            node("right", &["data"], &["join"]),
            node("solo", &[], &[]),
        ];
        assert_eq!(
            render(&nodes),
            [
                "data",
                "├── left",
                "│   └── join",
                "└── right",
                "    └── join (↑ above)",
                "solo",
            ]
        );
    }

    #[test]
    fn only_the_default_project_is_left_out() {
        assert_eq!(short_name("default/a"), "a");
        assert_eq!(short_name("other/a"), "other/a");
        assert_eq!(short_name("defaults/a"), "defaults/a");
    }

    #[test]
    fn a_cycle_without_roots_is_still_drawn() {
        let nodes = [node("a", &["b"], &["b"]), node("b", &["a"], &["a"])];
        assert_eq!(render(&nodes), ["a", "└── b", "    └── a (↑ above)"]);
    }
}
