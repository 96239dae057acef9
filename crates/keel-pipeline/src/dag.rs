//! The stage graph as DVC builds it: an edge from a stage to each stage
//! whose output is one of its dependencies, or contains one, or lies inside
//! one (directory prefixes); cycles are errors. `plan` orders stages as
//! DVC's `repro` does (a post-order depth-first walk in `dvc.yaml` order),
//! which also decides where new entries land in `dvc.lock`.

use crate::stage::{is_same_or_inside, Stage};
use crate::{PipelineError, Result};

/// Edges of the pipeline, by stage index into the project's stage list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    /// For each stage, the stages producing its dependencies, in DVC's order.
    pub upstream: Vec<Vec<usize>>,
}

impl Dag {
    /// Builds the graph; a cycle is an error naming the stages on it.
    pub fn build(stages: &[Stage]) -> Result<Dag> {
        let outputs: Vec<Vec<String>> = stages
            .iter()
            .map(|stage| {
                stage
                    .outs
                    .iter()
                    .map(|output| stage.repo_path(&output.def_path))
                    .collect()
            })
            .collect();
        let mut upstream = Vec::with_capacity(stages.len());
        for stage in stages {
            let mut producers: Vec<usize> = Vec::new();
            for dep in stage.all_dep_paths() {
                // Outputs containing the dependency first (trie prefixes),
                // then outputs inside it.
                let mut containing: Vec<(usize, usize)> = Vec::new();
                let mut inside: Vec<(&str, usize)> = Vec::new();
                for (producer_idx, paths) in outputs.iter().enumerate() {
                    for path in paths {
                        if is_same_or_inside(&dep, path) {
                            containing.push((path.len(), producer_idx));
                        } else if is_same_or_inside(path, &dep) {
                            inside.push((path, producer_idx));
                        }
                    }
                }
                containing.sort();
                inside.sort();
                for producer_idx in containing
                    .into_iter()
                    .map(|(_, idx)| idx)
                    .chain(inside.into_iter().map(|(_, idx)| idx))
                {
                    if !producers.contains(&producer_idx) {
                        producers.push(producer_idx);
                    }
                }
            }
            upstream.push(producers);
        }
        let dag = Dag { upstream };
        if let Some(cycle) = dag.find_cycle() {
            let names: Vec<String> = cycle
                .iter()
                .map(|&idx| format!("'{}'", stages[idx].name))
                .collect();
            return Err(PipelineError::invalid(
                crate::project::PROJECT_FILE,
                format!(
                    "the pipeline has a cycle involving stages {}; a stage may not depend on its own outputs, directly or through others",
                    names.join(", ")
                ),
            ));
        }
        Ok(dag)
    }

    fn find_cycle(&self) -> Option<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let mut marks = vec![Mark::New; self.upstream.len()];
        for start in 0..self.upstream.len() {
            if marks[start] != Mark::New {
                continue;
            }
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::Active;
            while let Some(&mut (node, ref mut next_edge)) = path.last_mut() {
                if let Some(&next) = self.upstream[node].get(*next_edge) {
                    *next_edge += 1;
                    match marks[next] {
                        Mark::New => {
                            marks[next] = Mark::Active;
                            path.push((next, 0));
                        }
                        Mark::Active => {
                            let from = path.iter().position(|(idx, _)| *idx == next).unwrap_or(0);
                            return Some(path[from..].iter().map(|(idx, _)| *idx).collect());
                        }
                        Mark::Done => {}
                    }
                } else {
                    marks[node] = Mark::Done;
                    path.pop();
                }
            }
        }
        None
    }

    /// The graph DVC plans on: a frozen stage is cut from its upstream.
    pub fn active(&self, stages: &[Stage]) -> Dag {
        Dag {
            upstream: self
                .upstream
                .iter()
                .zip(stages)
                .map(|(producers, stage)| {
                    if stage.frozen {
                        Vec::new()
                    } else {
                        producers.clone()
                    }
                })
                .collect(),
        }
    }

    /// The stages that depend on each stage.
    pub fn downstream(&self) -> Vec<Vec<usize>> {
        let mut downstream = vec![Vec::new(); self.upstream.len()];
        for (consumer, producers) in self.upstream.iter().enumerate() {
            for &producer in producers {
                downstream[producer].push(consumer);
            }
        }
        downstream
    }

    /// networkx's `dfs_postorder_nodes` from `sources` over `edges`.
    fn postorder(edges: &[Vec<usize>], sources: &[usize], keep: &[bool]) -> Vec<usize> {
        let mut visited = vec![false; edges.len()];
        let mut order = Vec::new();
        for &source in sources {
            if visited[source] || !keep[source] {
                continue;
            }
            visited[source] = true;
            let mut stack: Vec<(usize, usize)> = vec![(source, 0)];
            while let Some(&mut (node, ref mut next_edge)) = stack.last_mut() {
                let next = edges[node].get(*next_edge).copied();
                match next {
                    Some(next) => {
                        *next_edge += 1;
                        if keep[next] && !visited[next] {
                            visited[next] = true;
                            stack.push((next, 0));
                        }
                    }
                    None => {
                        order.push(node);
                        stack.pop();
                    }
                }
            }
        }
        order
    }

    /// The stages to evaluate, in DVC's order: everything (no targets), the
    /// targets with their upstream, or with `downstream` the targets and
    /// what depends on them.
    pub fn plan(&self, targets: &[usize], downstream: bool) -> Vec<usize> {
        let n_stages = self.upstream.len();
        let all: Vec<usize> = (0..n_stages).collect();
        let everything = vec![true; n_stages];
        if targets.is_empty() {
            return Self::postorder(&self.upstream, &all, &everything);
        }
        let reachable = if downstream {
            Self::postorder(&self.downstream(), targets, &everything)
        } else {
            Self::postorder(&self.upstream, targets, &everything)
        };
        let mut keep = vec![false; n_stages];
        for idx in reachable {
            keep[idx] = true;
        }
        Self::postorder(&self.upstream, &all, &keep)
    }

    /// Groups of connected stages (DVC's "pipelines"), in stage order.
    fn pipelines(&self) -> Vec<Vec<usize>> {
        let downstream = self.downstream();
        let mut component = vec![usize::MAX; self.upstream.len()];
        let mut pipelines: Vec<Vec<usize>> = Vec::new();
        for start in 0..self.upstream.len() {
            if component[start] != usize::MAX {
                continue;
            }
            let pipeline_idx = pipelines.len();
            let mut members = Vec::new();
            let mut pending = vec![start];
            component[start] = pipeline_idx;
            while let Some(node) = pending.pop() {
                members.push(node);
                for &next in self.upstream[node].iter().chain(&downstream[node]) {
                    if component[next] == usize::MAX {
                        component[next] = pipeline_idx;
                        pending.push(next);
                    }
                }
            }
            members.sort_unstable();
            pipelines.push(members);
        }
        pipelines
    }

    /// `dvc dag --mermaid`: per pipeline, nodes and edges sorted by name.
    pub fn to_mermaid(&self, stages: &[Stage]) -> String {
        let mut text = String::from("flowchart TD");
        let mut n_nodes = 0;
        for pipeline in self.pipelines() {
            let mut names: Vec<&str> = pipeline
                .iter()
                .map(|&idx| stages[idx].name.as_str())
                .collect();
            names.sort_unstable();
            let mut node_ids = std::collections::HashMap::new();
            for name in names {
                n_nodes += 1;
                text.push_str(&format!("\n\tnode{n_nodes}[\"{name}\"]"));
                node_ids.insert(name, n_nodes);
            }
            let mut edges: Vec<(&str, &str)> = pipeline
                .iter()
                .flat_map(|&consumer| {
                    self.upstream[consumer].iter().map(move |&producer| {
                        (
                            stages[producer].name.as_str(),
                            stages[consumer].name.as_str(),
                        )
                    })
                })
                .collect();
            edges.sort_unstable();
            for (from, to) in edges {
                text.push_str(&format!(
                    "\n\tnode{}-->node{}",
                    node_ids[from], node_ids[to]
                ));
            }
        }
        text
    }

    /// `dvc dag --dot`: edges point from a producer to its consumers.
    pub fn to_dot(&self, stages: &[Stage]) -> String {
        let mut text = String::from("strict digraph {\n");
        for stage in stages {
            text.push_str(&format!("\"{}\";\n", stage.name));
        }
        for (producer, consumers) in self.downstream().iter().enumerate() {
            for &consumer in consumers {
                text.push_str(&format!(
                    "\"{}\" -> \"{}\";\n",
                    stages[producer].name, stages[consumer].name
                ));
            }
        }
        text.push_str("}\n");
        text
    }

    /// A plain text view: each pipeline in run order, each stage with the
    /// stages it depends on.
    pub fn to_text(&self, stages: &[Stage]) -> String {
        let order = self.plan(&[], false);
        let mut blocks = Vec::new();
        for pipeline in self.pipelines() {
            let mut lines = Vec::new();
            for &idx in order.iter().filter(|idx| pipeline.contains(idx)) {
                let producers: Vec<&str> = self.upstream[idx]
                    .iter()
                    .map(|&producer| stages[producer].name.as_str())
                    .collect();
                if producers.is_empty() {
                    lines.push(stages[idx].name.clone());
                } else {
                    lines.push(format!("{} <- {}", stages[idx].name, producers.join(", ")));
                }
            }
            blocks.push(lines.join("\n"));
        }
        let mut text = blocks.join("\n\n");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{Output, OutputKind};

    fn stage(name: &str, deps: &[&str], outs: &[&str]) -> Stage {
        Stage {
            name: name.to_owned(),
            cmd: serde_yaml_ng::Value::from("true"),
            commands: vec!["true".to_owned()],
            wdir: String::new(),
            deps: deps.iter().map(|dep| dep.to_string()).collect(),
            params: Vec::new(),
            outs: outs
                .iter()
                .map(|out| Output {
                    def_path: out.to_string(),
                    cache: true,
                    persist: false,
                    kind: OutputKind::Out,
                })
                .collect(),
            frozen: false,
            always_changed: false,
        }
    }

    #[test]
    fn edges_follow_outputs_and_directory_prefixes() {
        let stages = vec![
            stage("train", &["data/clean/part1", "features"], &["model"]),
            stage("clean", &["raw"], &["data/clean"]),
            stage("featurize", &["data"], &["features/x", "features/y"]),
        ];
        let dag = Dag::build(&stages).expect("acyclic");
        assert_eq!(dag.upstream, vec![vec![1, 2], vec![], vec![1]]);
        // Post-order from the first stage: its upstream first.
        assert_eq!(dag.plan(&[], false), vec![1, 2, 0]);
        assert_eq!(dag.plan(&[2], false), vec![1, 2]);
        assert_eq!(dag.plan(&[1], true), vec![1, 2, 0]);
    }

    #[test]
    fn cycles_are_errors_naming_their_stages() {
        let stages = vec![
            stage("a", &["b.out"], &["a.out"]),
            stage("b", &["a.out"], &["b.out"]),
        ];
        let error = Dag::build(&stages).expect_err("cycle").to_string();
        assert!(error.contains("cycle involving stages 'a', 'b'"), "{error}");
        let self_loop = vec![stage("s", &["o"], &["o"])];
        assert!(Dag::build(&self_loop).is_err());
    }

    #[test]
    fn frozen_stages_are_cut_from_their_upstream() {
        let mut stages = vec![
            stage("a", &[], &["a.out"]),
            stage("b", &["a.out"], &["b.out"]),
        ];
        stages[1].frozen = true;
        let dag = Dag::build(&stages).expect("acyclic").active(&stages);
        assert_eq!(dag.plan(&[1], false), vec![1]);
    }

    #[test]
    fn mermaid_lists_nodes_and_edges_sorted() {
        let stages = vec![
            stage("train", &["p.out"], &["m"]),
            stage("prep", &[], &["p.out"]),
            stage("lone", &[], &[]),
        ];
        let dag = Dag::build(&stages).expect("acyclic");
        assert_eq!(
            dag.to_mermaid(&stages),
            "flowchart TD\n\tnode1[\"prep\"]\n\tnode2[\"train\"]\n\tnode1-->node2\n\tnode3[\"lone\"]"
        );
    }
}
