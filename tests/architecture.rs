//! The module graph of the library stays one-way.
//!
//! The allowed imports are written down once, in the table under "## Module graph" in
//! `docs/architecture.md`. This test reads that table, reads every `src/**/*.rs` except
//! `src/main.rs` (the binary) and `src/lib.rs` (the root), and fails for every path into another
//! top-level module that the table does not allow, naming the file and line. It also fails when
//! the table allows a cycle, lists a module that `src/lib.rs` does not declare (or misses one),
//! or allows an import that no file makes any more (so the table stays exact).
//!
//! What counts as an import of module `B` from a file of module `A`: `crate::B` anywhere outside
//! a plain `//` comment (in `use` lines, inline paths and doc links alike), each item of a
//! grouped `crate::{B::x, C}`, and `super::B` (which from a module's root file means the crate
//! root; no submodule shares a name with a top-level module).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const GRAPH_DOC: &str = "docs/architecture.md";
const GRAPH_HEADING: &str = "## Module graph";

/// Module -> modules it may import, from the table in `docs/architecture.md`.
fn allowed_graph(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut lines = doc.lines().skip_while(|l| l.trim() != GRAPH_HEADING);
    assert!(
        lines.next().is_some(),
        "{GRAPH_DOC} has no `{GRAPH_HEADING}` section"
    );
    let mut graph = BTreeMap::new();
    let mut in_table = false;
    for line in lines {
        let line = line.trim();
        if line.starts_with("## ") {
            break;
        }
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        in_table = true;
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(module) = cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue; // the header and separator rows
        };
        let imports: BTreeSet<String> = cells
            .last()
            .unwrap()
            .split(',')
            .filter_map(|c| {
                let c = c.trim();
                c.strip_prefix('`')
                    .and_then(|c| c.strip_suffix('`'))
                    .map(str::to_string)
            })
            .collect();
        assert!(
            graph.insert(module.to_string(), imports).is_none(),
            "{GRAPH_DOC}: module `{module}` has two rows"
        );
    }
    assert!(
        !graph.is_empty(),
        "{GRAPH_DOC}: no table under `{GRAPH_HEADING}`"
    );
    graph
}

/// The top-level modules `src/lib.rs` declares.
fn declared_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

/// The text with plain `//` comments blanked (doc comments `///` and `//!` are kept, so doc
/// links count). String literals are not parsed: a `//` inside one blanks the rest of its line,
/// which can only hide an import, never invent one.
fn without_plain_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match line.find("//") {
            Some(at)
                if !line[at..].starts_with("///")
                    && !line[at..].starts_with("//!")
                    && !line[..at].ends_with(':') =>
            {
                out.push_str(&line[..at]);
                out.extend(
                    line[at..]
                        .chars()
                        .map(|c| if c == '\n' { '\n' } else { ' ' }),
                );
            }
            _ => out.push_str(line),
        }
    }
    out
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ident_at(text: &str) -> &str {
    let end = text.find(|c: char| !is_ident_char(c)).unwrap_or(text.len());
    &text[..end]
}

/// Every (line, module) that `text` names through `crate::` or `super::` paths.
fn imported_modules(text: &str) -> Vec<(usize, String)> {
    let text = without_plain_comments(text);
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for prefix in ["crate::", "super::"] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| is_ident_char(c) || c == '$' || c == ':') {
                continue; // `$crate::`, `my_crate::`, the second `super::` of `super::super::`
            }
            let mut rest = &text[at + prefix.len()..];
            while prefix == "super::" && rest.starts_with("super::") {
                rest = &rest["super::".len()..];
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::X, b}`: the first identifier of each top-level item.
                let mut depth = 0usize;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && is_ident_char(c) => {
                            item_start = false;
                            let name = ident_at(&group[i..]);
                            let line = line_of(at + prefix.len() + 1 + i);
                            found.push((line, name.to_string()));
                        }
                        _ => {}
                    }
                }
            } else {
                let name = ident_at(rest);
                if !name.is_empty() {
                    found.push((line_of(at), name.to_string()));
                }
            }
        }
    }
    found.sort();
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A path that leaves the graph allowed to loop back on itself, if any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_import_only_what_the_graph_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join(GRAPH_DOC)).unwrap();
    let graph = allowed_graph(&doc);
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let modules = declared_modules(&lib);
    let mut problems = String::new();

    let listed: BTreeSet<String> = graph.keys().cloned().collect();
    for m in modules.difference(&listed) {
        writeln!(problems, "module {m} has no row in {GRAPH_DOC}").unwrap();
    }
    for m in listed.difference(&modules) {
        writeln!(
            problems,
            "{GRAPH_DOC} lists module {m}, which src/lib.rs does not declare"
        )
        .unwrap();
    }
    for (m, imports) in &graph {
        for i in imports.difference(&modules) {
            writeln!(
                problems,
                "{GRAPH_DOC} lets {m} import {i}, which is not a module"
            )
            .unwrap();
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        writeln!(
            problems,
            "the allowed graph in {GRAPH_DOC} has a cycle: {}",
            cycle.join(" -> ")
        )
        .unwrap();
    }

    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(root).unwrap();
        if rel == Path::new("src/main.rs") || rel == Path::new("src/lib.rs") {
            continue;
        }
        let first = rel
            .components()
            .nth(1)
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        let text = std::fs::read_to_string(file).unwrap();
        for (line, target) in imported_modules(&text) {
            if target == module || !modules.contains(&target) {
                continue; // its own module, or `super::` into its own submodules
            }
            used.insert((module.clone(), target.clone()));
            if !graph.get(&module).is_some_and(|a| a.contains(&target)) {
                writeln!(
                    problems,
                    "module {module} may not import {target} ({}:{line})",
                    rel.display()
                )
                .unwrap();
            }
        }
    }
    for (m, imports) in &graph {
        for i in imports {
            if !used.contains(&(m.clone(), i.clone())) {
                writeln!(
                    problems,
                    "{GRAPH_DOC} lets {m} import {i} but nothing does: remove it from the table"
                )
                .unwrap();
            }
        }
    }
    assert!(problems.is_empty(), "\n{problems}");
}

#[test]
fn the_scanner_finds_every_form_of_import() {
    let text = "use crate::config::Config;\n\
                use crate::{sink::{Sink, EventRow}, telemetry,\n    row::EventRow};\n\
                // crate::pipeline in a plain comment\n\
                /// See [`crate::dlq::DeadLetters`].\n\
                fn f() { let x = crate::source::client_config(k); super::super::audit::run(); }\n\
                macro_rules! m { () => { $crate::event::Stream }; }\n\
                let u = \"https://x\"; other_crate::enrich::f();\n";
    let found: Vec<(usize, String)> = imported_modules(text);
    let expect: Vec<(usize, String)> = [
        (1, "config"),
        (2, "sink"),
        (2, "telemetry"),
        (3, "row"),
        (5, "dlq"),
        (6, "audit"),
        (6, "source"),
    ]
    .into_iter()
    .map(|(l, m)| (l, m.to_string()))
    .collect();
    assert_eq!(found, expect);
}

#[test]
fn a_cycle_in_the_table_is_found() {
    let doc = "## Module graph\n\n| module | owns | may import |\n|---|---|---|\n\
               | `a` | x | `b` |\n| `b` | y | `c` |\n| `c` | z | `a`, `b` |\n| `d` | w | — |\n";
    let graph = allowed_graph(doc);
    assert_eq!(graph["d"], BTreeSet::new());
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
