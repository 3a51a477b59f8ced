//! The layout is the architecture: layers from the leaves up, and doors that
//! import only the core. This test reads `src/` and fails when a module
//! imports a layer above its own, a door reaches past the core, or two
//! modules import each other (directly or round a longer loop).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Which layers each may import (besides itself). A door may also import
/// its own sub-modules; only the SSH door hands channels to the others.
const ALLOWED: &[(&str, &[&str])] = &[
    ("text", &[]),
    ("private_fs", &[]),
    ("telemetry", &[]),
    ("vault", &["text"]),
    ("db", &["text", "private_fs"]),
    ("config", &["text", "vault"]),
    ("storage", &["text", "vault", "private_fs"]),
    ("cluster", &["text", "vault", "config", "private_fs"]),
    (
        "auth",
        &[
            "text",
            "vault",
            "db",
            "config",
            "private_fs",
            "telemetry",
            "cluster",
        ],
    ),
    (
        "core",
        &[
            "text",
            "vault",
            "db",
            "config",
            "storage",
            "cluster",
            "auth",
            "private_fs",
            "telemetry",
        ],
    ),
    ("logging", &["text", "config"]),
    (
        "doors::ssh",
        &[
            "text",
            "private_fs",
            "core",
            "doors::sftp",
            "doors::exec",
            "doors::tui",
        ],
    ),
    ("doors::sftp", &["text", "core"]),
    ("doors::exec", &["text", "core"]),
    ("doors::tui", &["text", "core"]),
    ("doors::operator", &["text", "core"]),
];

/// A module path (`core::files`) for each source file, and its text.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let join = |m: &str| {
                if prefix.is_empty() {
                    m.to_string()
                } else {
                    format!("{prefix}::{m}")
                }
            };
            if path.is_dir() {
                walk(&path, &join(&name), out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let module = match stem {
                    "mod" | "lib" => prefix.to_string(),
                    "main" => continue,
                    _ => join(stem),
                };
                out.insert(module, fs::read_to_string(&path).expect("source"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut out,
    );
    out
}

/// The paths a source names: `crate::a::b::{C, d::E}` gives `a::b::C` and
/// `a::b::d::E`; `super::x` is made absolute from `module`.
fn named_paths(module: &str, text: &str) -> Vec<String> {
    // Code only: a doc link is not an import, and a file's own tests
    // (`use super::*`) are not its dependencies.
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let text: String = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = text.as_str();
    let mut out = Vec::new();
    let parent = |m: &str| {
        m.rsplit_once("::")
            .map_or(String::new(), |(p, _)| p.to_string())
    };
    for (start, _) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        let before = text[..start].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let (base, rest) = if text[start..].starts_with("crate::") {
            (String::new(), &text[start + 7..])
        } else {
            (parent(module), &text[start + 7..])
        };
        let mut rest = rest;
        let mut base = base;
        while let Some(r) = rest.strip_prefix("super::") {
            base = parent(&base);
            rest = r;
        }
        expand(&base, rest, &mut out);
    }
    out
}

/// Expands one path with its `{…}` groups.
fn expand(base: &str, rest: &str, out: &mut Vec<String>) {
    let plain: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let plain = plain.trim_end_matches(':');
    let full = match (base.is_empty(), plain.is_empty()) {
        (_, true) => base.to_string(),
        (true, false) => plain.to_string(),
        (false, false) => format!("{base}::{plain}"),
    };
    let after = &rest[plain.len()..];
    if let Some(group) = after.strip_prefix("::{") {
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&full, item.trim(), out);
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        if !item.trim().is_empty() {
            expand(&full, item.trim(), out);
        }
    } else if !full.is_empty() {
        out.push(full);
    }
}

/// The module a path lands in: its longest prefix that is a module, then
/// through `pub use` re-exports to where the item is defined.
fn resolve(
    path: &str,
    modules: &BTreeMap<String, String>,
    reexports: &BTreeMap<String, String>,
) -> String {
    let segments: Vec<&str> = path.split("::").collect();
    for len in (0..=segments.len()).rev() {
        let candidate = segments[..len].join("::");
        if modules.contains_key(&candidate) {
            if let Some(item) = segments.get(len) {
                let key = format!("{candidate}::{item}");
                if let Some(target) = reexports.get(&key) {
                    if target != path {
                        return resolve(target, modules, reexports);
                    }
                }
            }
            return candidate;
        }
    }
    String::new()
}

/// `pub use x::Y;` in module `m`: `m::Y` is really `m::x::Y`.
fn reexports(modules: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (module, text) in modules {
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let rest = rest.trim_end_matches(';');
            let rest = rest
                .strip_prefix("crate::")
                .map(str::to_string)
                .unwrap_or_else(|| {
                    if module.is_empty() {
                        rest.to_string()
                    } else {
                        format!("{module}::{rest}")
                    }
                });
            let mut paths = Vec::new();
            expand("", &rest, &mut paths);
            for path in paths {
                let item = path.rsplit("::").next().unwrap_or_default().to_string();
                let key = if module.is_empty() {
                    item
                } else {
                    format!("{module}::{item}")
                };
                out.insert(key, path);
            }
        }
    }
    out
}

/// The layer a module belongs to: `doors::x` for a door, else its first segment.
fn layer(module: &str) -> String {
    let mut parts = module.split("::");
    match (parts.next(), parts.next()) {
        (Some("doors"), Some(door)) => format!("doors::{door}"),
        (Some(first), _) => first.to_string(),
        _ => String::new(),
    }
}

/// Every module's imports, without self-references and without the root
/// (`lib.rs` only declares): as named (`crate::core::FileKey` is an import of
/// the core, whatever the core re-exports) or resolved through re-exports to
/// the module that defines the item.
fn graph(follow_reexports: bool) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let reexports = if follow_reexports {
        reexports(&modules)
    } else {
        BTreeMap::new()
    };
    modules
        .iter()
        .filter(|(module, _)| !module.is_empty())
        .map(|(module, text)| {
            let targets = named_paths(module, text)
                .iter()
                .map(|path| resolve(path, &modules, &reexports))
                .filter(|target| !target.is_empty() && target != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

#[test]
fn every_module_sits_in_a_known_layer() {
    let known: BTreeSet<&str> = ALLOWED.iter().map(|(layer, _)| *layer).collect();
    let strays: Vec<String> = graph(false)
        .keys()
        .filter(|module| !known.contains(layer(module).as_str()) && *module != "doors")
        .cloned()
        .collect();
    assert!(
        strays.is_empty(),
        "modules outside the layers (add them to a folder): {strays:?}"
    );
}

#[test]
fn no_layer_imports_one_above_it_and_doors_import_only_the_core() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, targets) in graph(false) {
        let from = layer(&module);
        let Some(may) = allowed.get(from.as_str()) else {
            continue;
        };
        for target in targets {
            let to = layer(&target);
            if to != from && !may.contains(&to.as_str()) {
                wrong.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports across the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_two_modules_import_each_other() {
    let graph = graph(true);
    // Depth-first search for a back edge; reports the loop it closes.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        loops: &mut Vec<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            loops.push(cycle.join(" -> "));
            return;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, loops);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let mut loops = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut loops);
    }
    assert!(loops.is_empty(), "import cycles:\n{}", loops.join("\n"));
}

#[test]
fn the_checker_sees_imports_groups_and_reexports() {
    let mut paths = Vec::new();
    expand("", "core::{Core, files::{FilesError, Sealed}}", &mut paths);
    assert_eq!(
        paths,
        [
            "core::Core",
            "core::files::FilesError",
            "core::files::Sealed"
        ]
    );
    let found = named_paths(
        "doors::exec::scp",
        "use super::channel::ExecChannel;\nuse crate::text::escape::escape;",
    );
    assert!(
        found.contains(&"doors::exec::channel::ExecChannel".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"text::escape::escape".to_string()),
        "{found:?}"
    );
    // The real tree: a door's import of the core is seen at all.
    let graph = graph(false);
    assert!(
        graph["doors::sftp"].contains("core"),
        "{:?}",
        graph["doors::sftp"]
    );
}

#[test]
fn doors_call_the_cores_operations_not_its_parts() {
    let wrong: Vec<String> = modules()
        .iter()
        .filter(|(module, _)| module.starts_with("doors::"))
        .flat_map(|(module, text)| {
            [
                ".db()",
                ".events()",
                ".publish(",
                ".accounts()",
                "Accounts::",
            ]
            .iter()
            .filter(|call| text.contains(*call))
            .map(move |call| format!("{module} calls {call}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[test]
fn the_readme_layout_table_names_every_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).expect("README");
    let mut folders = Vec::new();
    for entry in fs::read_dir(root.join("src")).expect("src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "doors" {
                for door in fs::read_dir(&path).expect("doors") {
                    let door = door.expect("entry").path();
                    if door.is_dir() {
                        folders.push(format!(
                            "src/doors/{}/",
                            door.file_name().unwrap().to_string_lossy()
                        ));
                    }
                }
            } else {
                folders.push(format!("src/{name}/"));
            }
        }
    }
    let missing: Vec<&String> = folders
        .iter()
        .filter(|folder| !readme.contains(&format!("| `{folder}` |")))
        .collect();
    assert!(missing.is_empty(), "README's Layout lacks {missing:?}");
}

/// Lines a source file may hold before its size must be one concern that
/// its header says is one (with the words "one concern").
const LONGEST_FILE: usize = 700;

#[test]
fn no_source_file_is_long_unless_its_header_says_why() {
    let long: Vec<String> = modules()
        .iter()
        .filter(|(_, text)| text.lines().count() > LONGEST_FILE)
        .filter(|(_, text)| {
            let header: String = text
                .lines()
                .take_while(|line| line.starts_with("//!"))
                .collect();
            !header.contains("one concern")
        })
        .map(|(module, text)| format!("{module}: {} lines", text.lines().count()))
        .collect();
    assert!(long.is_empty(), "{long:?}");
}

#[test]
fn the_cluster_layer_sits_below_auth_and_the_core() {
    let graph = graph(false);
    let imports_of = |wanted: &str| -> BTreeSet<String> {
        graph
            .iter()
            .filter(|(module, _)| layer(module) == wanted)
            .flat_map(|(_, imports)| imports.iter().map(|i| layer(i)))
            .collect()
    };
    assert!(imports_of("auth").contains("cluster"));
    assert!(imports_of("core").contains("cluster"));
    let cluster = imports_of("cluster");
    for above in ["auth", "core", "db", "storage"] {
        assert!(!cluster.contains(above), "cluster imports {above}");
    }
    // Shared state is built before the parts that use it, not patched in
    // after they are.
    let patched: Vec<String> = modules()
        .into_iter()
        .filter(|(_, text)| text.contains("OnceLock<Arc<dyn"))
        .map(|(module, _)| module)
        .collect();
    assert!(patched.is_empty(), "{patched:?}");
}

#[test]
fn blob_storage_waits_in_async_code_not_by_driving_the_runtime() {
    // An upload waiting for the store's budget or its parts must not hold
    // a pool thread (core/upload.rs); readers wait on their own channel.
    let blocking: Vec<String> = modules()
        .into_iter()
        .filter(|(module, _)| {
            ["storage", "core"]
                .iter()
                .any(|layer| module == layer || module.starts_with(&format!("{layer}::")))
        })
        .filter(|(_, text)| text.contains("block_on("))
        .map(|(module, _)| module)
        .collect();
    assert!(blocking.is_empty(), "{blocking:?}");
}
