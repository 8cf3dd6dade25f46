//! The overview's picture: repos and pipelines as boxes placed by [`super::dag_layout`],
//! edges as curves with arrowheads, drawn as inline SVG. Every box is a link; colours come
//! from CSS classes (the CSP forbids `style=`).

use maud::{Markup, html};
use pipeline_core::pps::JobState;

use super::dag_layout::{Layout, LayoutConfig, Point, layout};
use super::pipeline_status::{PipelineStatus, datum_counts, job_duration};
use super::view::{bytes, job_state_class, url};

/// A box of the picture.
pub enum DagNode<'a> {
    /// A repo no pipeline writes (an input of the DAG).
    Repo {
        /// Its name as in URLs.
        name: String,
        /// Size of its head commit, when known.
        size: Option<u64>,
    },
    /// A pipeline with its output repo (one box: they share a name and a life).
    Pipeline(&'a PipelineStatus),
}

impl DagNode<'_> {
    /// The repo's or pipeline's name.
    pub fn name(&self) -> &str {
        match self {
            DagNode::Repo { name, .. } => name,
            DagNode::Pipeline(status) => &status.id,
        }
    }
}

/// Longest name shown whole in a box; longer ones are cut (the tooltip has the whole name).
const NAME_CHARS: usize = 26;
/// Longest staleness line shown whole in a box.
const STALE_CHARS: usize = 33;

/// The SVG of `nodes` joined by `edges` (`(from, to)` indices into `nodes`).
pub fn dag_svg(nodes: &[DagNode], edges: &[(usize, usize)], now_ms: u64) -> Markup {
    let cfg = LayoutConfig::default();
    let placed = layout(nodes.len(), edges, &cfg);
    let Layout { width, height, .. } = placed;
    html! {
        svg.dag xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } role="group"
            aria-label="Pipelines and repos, inputs to the left" {
            defs {
                marker #dag-arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"
                    markerHeight="7" orient="auto" {
                    path.arrowhead d="M0,0 L10,5 L0,10 z" {}
                }
            }
            @for (&(from, to), points) in edges.iter().zip(&placed.edges) {
                @if points.len() >= 2 {
                    path.edge d=(edge_path(points)) marker-end="url(#dag-arrow)"
                        data-from=[nodes.get(from).map(DagNode::name)]
                        data-to=[nodes.get(to).map(DagNode::name)] {}
                }
            }
            @for (node, b) in nodes.iter().zip(&placed.nodes) {
                (node_box(node, b.at, &cfg, now_ms))
            }
        }
    }
}

/// An SVG path through `points`: a curve between columns, straight through a column.
fn edge_path(points: &[Point]) -> String {
    let mut d = String::new();
    for (i, w) in points.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        if i == 0 {
            d.push_str(&format!("M{},{}", a.x, a.y));
        }
        let mid = (a.x + b.x) / 2;
        d.push_str(&format!(" C{mid},{} {mid},{} {},{}", a.y, b.y, b.x, b.y));
    }
    d
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let kept: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// One box: a link to the repo's or pipeline's page.
fn node_box(node: &DagNode, at: Point, cfg: &LayoutConfig, now_ms: u64) -> Markup {
    let (x, y, w, h) = (at.x, at.y, cfg.node_width, cfg.node_height);
    match node {
        DagNode::Repo { name, size } => html! {
            a.node.repo href=(url::repo(name)) data-repo=(name) {
                title { "repo " (name) }
                rect.box x=(x) y=(y) width=(w) height=(h) rx="6" {}
                text.name x=(x + 12) y=(y + 24) { (cut(name, NAME_CHARS)) }
                text.sub x=(x + 12) y=(y + 46) {
                    "repo" @if let Some(n) = size { " · " (bytes(*n)) }
                }
            }
        },
        DagNode::Pipeline(status) => pipeline_box(status, at, cfg, now_ms),
    }
}

/// A pipeline's box: name, last job's state and duration, datum counts, staleness.
fn pipeline_box(status: &PipelineStatus, at: Point, cfg: &LayoutConfig, now_ms: u64) -> Markup {
    let (x, y, w, h) = (at.x, at.y, cfg.node_width, cfg.node_height);
    let name = &status.id;
    let stale: Vec<&str> = status.stale.iter().map(|s| s.label()).collect();
    let stale_line = stale.join(" · ");
    html! {
        a.node.pipeline href=(url::pipeline(name)) data-pipeline=(name) {
            title {
                "pipeline " (name)
                @if !stale.is_empty() { " (" (stale_line) ")" }
            }
            rect.box x=(x) y=(y) width=(w) height=(h) rx="6" {}
            text.name x=(x + 12) y=(y + 20) { (cut(name, NAME_CHARS)) }
            @match &status.last_job {
                Some(job) => {
                    (state_badge(job.state, x + 12, y + 29))
                    text.sub x=(x + 110) y=(y + 41) { (job_duration(job, now_ms)) }
                    text.sub x=(x + 12) y=(y + 60) { (datum_counts(&job.stats)) " datums" }
                }
                None => text.sub x=(x + 12) y=(y + 41) { "no job yet" },
            }
            @if !stale.is_empty() {
                text.stale x=(x + 12) y=(y + 77) { (cut(&stale_line, STALE_CHARS)) }
            }
        }
    }
}

/// A job state as a coloured pill (`job_state_class` picks the colour).
fn state_badge(state: JobState, x: u32, y: u32) -> Markup {
    let label = state
        .as_str()
        .trim_start_matches("JOB_")
        .to_ascii_lowercase();
    let width = 12 + 7 * u32::try_from(label.len()).unwrap_or(12);
    html! {
        rect class={ "state " (job_state_class(state)) } x=(x) y=(y) width=(width) height="16"
            rx="8" {}
        text.state-label x=(x + width / 2) y=(y + 12) text-anchor="middle" { (label) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_with_an_ellipsis() {
        assert_eq!(cut("short", 24), "short");
        assert_eq!(cut("abcdef", 4), "abc…");
    }

    #[test]
    fn edges_are_curves_through_every_point() {
        let d = edge_path(&[Point { x: 0, y: 10 }, Point { x: 100, y: 50 }]);
        assert_eq!(d, "M0,10 C50,10 50,50 100,50");
    }

    #[test]
    fn repo_boxes_link_to_their_page_and_escape_names() {
        let nodes = [DagNode::Repo {
            name: "<b>".into(),
            size: Some(2048),
        }];
        let svg = dag_svg(&nodes, &[], 0).into_string();
        assert!(svg.contains(r#"href="/repos/%3Cb%3E""#), "{svg}");
        assert!(svg.contains("repo &lt;b&gt;"), "{svg}");
        assert!(svg.contains("2.0 KiB"), "{svg}");
    }
}
