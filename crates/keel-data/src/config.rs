//! `.dvc/config` and `.dvc/config.local`: the INI dialect of Python's
//! `configobj` as DVC reads and writes it. Read leniently (quoted or bare
//! section names and values, any indentation, `#` comments), written as DVC
//! writes it: `[core]`, `['remote "name"']`, options indented by four spaces,
//! values quoted only when they must be. Comments are dropped on write, as
//! DVC drops them.

use std::path::Path;

use crate::cache::write_atomic;
use crate::{DataError, Result};

/// One `[section]` and its options, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    name: String,
    options: Vec<(String, String)>,
}

/// A parsed config file; sections and options keep their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    sections: Vec<Section>,
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty config.
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(err) => return Err(DataError::io(path, err)),
        };
        Self::parse(&text).map_err(|reason| {
            DataError::Usage(format!(
                "{}: not a valid config file: {reason}",
                path.display()
            ))
        })
    }

    /// Writes the config atomically, in DVC's formatting.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_text().as_bytes(), None)
    }

    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let mut config = ConfigFile::default();
        for (line_idx, raw_line) in text.lines().enumerate() {
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line_number = line_idx + 1;
            if line.starts_with('[') {
                let inner = strip_comment(line)
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .trim();
                let name = unquote(inner)
                    .ok_or_else(|| format!("line {line_number}: bad section name {inner:?}"))?;
                config.section_mut(&name);
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {line_number}: expected `key = value`"));
            };
            let key = unquote(key.trim())
                .ok_or_else(|| format!("line {line_number}: bad key {:?}", key.trim()))?;
            let value = value.trim();
            let value = if value.starts_with('"') || value.starts_with('\'') {
                unquote(strip_comment_after_quote(value))
            } else {
                Some(strip_comment(value).trim_end().to_owned())
            }
            .ok_or_else(|| format!("line {line_number}: bad value {value:?}"))?;
            let Some(section) = config.sections.last_mut() else {
                return Err(format!("line {line_number}: option outside any section"));
            };
            section.set(key, value);
        }
        Ok(config)
    }

    pub fn to_text(&self) -> String {
        let mut text = String::new();
        // DVC writes its other sections first, then the remotes, each
        // group in the order it read or created them.
        let (remotes, others): (Vec<&Section>, Vec<&Section>) = self
            .sections
            .iter()
            .partition(|section| section.name.starts_with("remote \""));
        for section in others.into_iter().chain(remotes) {
            text.push('[');
            text.push_str(&quote(&section.name));
            text.push_str("]\n");
            for (key, value) in &section.options {
                text.push_str("    ");
                text.push_str(&quote(key));
                text.push_str(" = ");
                text.push_str(&quote(value));
                text.push('\n');
            }
        }
        text
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.section(section)?
            .options
            .iter()
            .find(|(option, _)| option == key)
            .map(|(_, value)| value.as_str())
    }

    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        self.section_mut(section)
            .set(key.to_owned(), value.to_owned());
    }

    /// Removes one option; a section left empty goes too, as DVC drops it.
    pub fn unset(&mut self, section: &str, key: &str) {
        if let Some(found) = self.sections.iter_mut().find(|found| found.name == section) {
            found.options.retain(|(option, _)| option != key);
        }
        self.sections
            .retain(|found| found.name != section || !found.options.is_empty());
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.section(name).is_some()
    }

    /// Empties a section, keeping its place (as DVC replaces a remote).
    pub fn clear_section(&mut self, name: &str) {
        self.section_mut(name).options.clear();
    }

    pub fn remove_section(&mut self, name: &str) {
        self.sections.retain(|section| section.name != name);
    }

    /// Section names in file order.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|section| section.name.as_str())
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|section| section.name == name)
    }

    fn section_mut(&mut self, name: &str) -> &mut Section {
        let position = match self
            .sections
            .iter()
            .position(|section| section.name == name)
        {
            Some(position) => position,
            None => {
                self.sections.push(Section {
                    name: name.to_owned(),
                    options: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        &mut self.sections[position]
    }
}

impl Section {
    fn set(&mut self, key: String, value: String) {
        match self.options.iter_mut().find(|(option, _)| *option == key) {
            Some(existing) => existing.1 = value,
            None => self.options.push((key, value)),
        }
    }
}

/// The text before an unquoted `#`.
fn strip_comment(text: &str) -> &str {
    text.split_once('#').map_or(text, |(before, _)| before)
}

/// `"quoted" # comment` → `"quoted"`.
fn strip_comment_after_quote(text: &str) -> &str {
    let Some(quote_char) = text.chars().next() else {
        return text;
    };
    match text[1..].find(quote_char) {
        Some(end) => &text[..end + 2],
        None => text,
    }
}

/// Drops one pair of matching `'` or `"` around `text`; bare text is kept.
fn unquote(text: &str) -> Option<String> {
    for quote_char in ['\'', '"'] {
        if let Some(rest) = text.strip_prefix(quote_char) {
            let inner = rest.strip_suffix(quote_char)?;
            return (!inner.contains(quote_char)).then(|| inner.to_owned());
        }
    }
    Some(text.to_owned())
}

/// Quotes as configobj does: only empty text, text holding `#` or `,`, or
/// text that starts or ends with whitespace or a quote; with `'` when the
/// text holds `"`, otherwise with `"`.
fn quote(text: &str) -> String {
    const EDGE_CHARS: [char; 7] = [' ', '\r', '\n', '\u{b}', '\t', '\'', '"'];
    let needs_quotes = text.is_empty()
        || text.contains(['#', ','])
        || text.starts_with(EDGE_CHARS)
        || text.ends_with(EDGE_CHARS);
    if !needs_quotes {
        return text.to_owned();
    }
    if text.contains('"') {
        format!("'{text}'")
    } else {
        format!("\"{text}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes written by `dvc remote add -d myremote /tmp/dvcscratch-remote`
    /// then `dvc remote add b '/p#q'` (DVC 3.67.1).
    const DVC_WRITTEN: &str = "[core]\n    remote = myremote\n['remote \"myremote\"']\n    url = /tmp/dvcscratch-remote\n['remote \"b\"']\n    url = \"/p#q\"\n";

    #[test]
    fn what_dvc_writes_round_trips_byte_for_byte() {
        let config = ConfigFile::parse(DVC_WRITTEN).expect("parse");
        assert_eq!(config.get("core", "remote"), Some("myremote"));
        assert_eq!(
            config.get("remote \"myremote\"", "url"),
            Some("/tmp/dvcscratch-remote")
        );
        assert_eq!(config.get("remote \"b\"", "url"), Some("/p#q"));
        assert_eq!(config.to_text(), DVC_WRITTEN);
    }

    #[test]
    fn building_a_config_writes_what_dvc_writes() {
        let mut config = ConfigFile::default();
        config.set("core", "remote", "myremote");
        config.set("remote \"myremote\"", "url", "/tmp/dvcscratch-remote");
        config.set("remote \"b\"", "url", "/p#q");
        assert_eq!(config.to_text(), DVC_WRITTEN);
    }

    #[test]
    fn hand_written_variants_are_read_and_normalized_as_dvc_does() {
        // DVC reads this and rewrites it as below (checked with dvc 3.67.1).
        let text =
            "[core]\n  remote = a # the default\n# comment\n[remote \"a\"]\n\turl = \"/x y\"\n";
        let config = ConfigFile::parse(text).expect("parse");
        assert_eq!(config.get("core", "remote"), Some("a"));
        assert_eq!(config.get("remote \"a\"", "url"), Some("/x y"));
        assert_eq!(
            config.to_text(),
            "[core]\n    remote = a\n['remote \"a\"']\n    url = /x y\n"
        );
    }

    #[test]
    fn remotes_are_written_after_the_other_sections() {
        // `dvc remote add -d b /b` on this file gives exactly `expected`.
        let text = "['remote \"a\"']\n    url = /a\n[cache]\n    type = copy\n";
        let mut config = ConfigFile::parse(text).expect("parse");
        config.set("remote \"b\"", "url", "/b");
        config.set("core", "remote", "b");
        let expected = "[cache]\n    type = copy\n[core]\n    remote = b\n['remote \"a\"']\n    url = /a\n['remote \"b\"']\n    url = /b\n";
        assert_eq!(config.to_text(), expected);
    }

    #[test]
    fn unsetting_the_last_option_drops_the_section() {
        let mut config = ConfigFile::parse("[core]\n    remote = a\n").expect("parse");
        config.unset("core", "remote");
        assert_eq!(config.to_text(), "");
        let mut no_scm =
            ConfigFile::parse("[core]\n    no_scm = True\n    remote = r\n").expect("parse");
        no_scm.unset("core", "remote");
        assert_eq!(no_scm.to_text(), "[core]\n    no_scm = True\n");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ConfigFile::parse("url = /x\n").is_err());
        assert!(ConfigFile::parse("[core]\nno equals sign\n").is_err());
        assert!(ConfigFile::parse("['unterminated]\n").is_err());
    }
}
