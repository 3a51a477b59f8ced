//! The shipped `config.toml` and the README's table of settings, both made
//! from the declarations in `settings.rs`, so neither can drift from what
//! the server accepts (`tests/config.rs` compares them with the files).

use super::{lookup, Config, SCHEMA};

const HEADER: &str = "\
# sfs configuration. Every value below is the default: a missing key or table
# takes it, and an unknown key is refused. Start with: sfs serve --config PATH
# (default ./config.toml, or the SFS_CONFIG environment variable).
# Relative paths are relative to the working directory sfs is started in.
";

/// Each key with its default, as TOML, in the order of [`SCHEMA`].
fn defaults() -> Vec<(&'static super::Table, &'static super::Key, String)> {
    let defaults = toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Boolean(false));
    let empty = toml::Table::new();
    let defaults = defaults.as_table().unwrap_or(&empty);
    SCHEMA
        .iter()
        .flat_map(|table| table.keys.iter().map(move |key| (table, key)))
        .map(|(table, key)| {
            let path = format!("{}.{}", table.name, key.name);
            let value = lookup(defaults, &path).map_or_else(String::new, ToString::to_string);
            (table, key, value)
        })
        .collect()
}

/// The shipped `config.toml`: every key at its default, under its comment.
pub fn template() -> String {
    let mut out = HEADER.to_string();
    let mut current = "";
    for (table, key, value) in defaults() {
        if table.name != current {
            out.push_str(&format!("\n[{}]\n", table.name));
            current = table.name;
        }
        for line in key.about {
            out.push_str(&format!("#{}\n", line.trim_end()));
        }
        out.push_str(&format!("{} = {value}\n", key.name));
    }
    out
}

/// The README's table: every key, its default and what it does.
pub fn reference_table() -> String {
    let mut out = String::from("| key | default | what it does |\n|---|---|---|\n");
    for (table, key, value) in defaults() {
        let about: Vec<&str> = key.about.iter().map(|line| line.trim()).collect();
        out.push_str(&format!(
            "| `{}.{}` | `{}` | {} |\n",
            table.name,
            key.name,
            value,
            about.join(" ").replace('|', "\\|")
        ));
    }
    out
}
