//! `remote modify`: sets or unsets one option of a configured remote in
//! `.dvc/config` or `.dvc/config.local`, checked against the options DVC's
//! config schema allows for the remote's kind of URL.

use std::path::{Component, Path, PathBuf};

use crate::config::ConfigFile;
use crate::remote::ConfigLevel;
use crate::{DataError, Result};

/// How an option's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Text,
    /// `true` or `false`, any case.
    Bool,
    /// A bool, or any text (a CA bundle path).
    BoolOrText,
    /// An integer of at least 1.
    Positive,
    Integer,
    /// A number of at least 0.
    NonNegative,
    /// Link types: `reflink`, `hardlink`, `symlink`, `copy`, comma-separated.
    CacheTypes,
    Choice(&'static [&'static str]),
}

use ValueKind::{Bool, BoolOrText, CacheTypes, Choice, Integer, NonNegative, Positive, Text};

const REMOTE_COMMON: &[(&str, ValueKind)] = &[
    ("url", Text),
    ("checksum_jobs", Positive),
    ("jobs", Positive),
    ("worktree", Bool),
    ("no_traverse", Bool),
    ("version_aware", Bool),
];

const LOCAL: &[(&str, ValueKind)] = &[
    ("type", CacheTypes),
    ("protected", Bool),
    ("shared", Choice(&["group"])),
    ("slow_link_warning", Bool),
    ("verify", Bool),
];

const S3: &[(&str, ValueKind)] = &[
    ("region", Text),
    ("profile", Text),
    ("credentialpath", Text),
    ("configpath", Text),
    ("endpointurl", Text),
    ("access_key_id", Text),
    ("secret_access_key", Text),
    ("session_token", Text),
    ("listobjects", Bool),
    ("use_ssl", Bool),
    ("allow_anonymous_login", Bool),
    ("ssl_verify", BoolOrText),
    ("sse", Text),
    ("sse_kms_key_id", Text),
    ("sse_customer_algorithm", Text),
    ("sse_customer_key", Text),
    ("acl", Text),
    ("grant_read", Text),
    ("grant_read_acp", Text),
    ("grant_write_acp", Text),
    ("grant_full_control", Text),
    ("cache_regions", Bool),
    ("read_timeout", Integer),
    ("connect_timeout", Integer),
    ("verify", Bool),
];

const GS: &[(&str, ValueKind)] = &[
    ("projectname", Text),
    ("credentialpath", Text),
    ("endpointurl", Text),
    ("verify", Bool),
    ("allow_anonymous_login", Bool),
];

const AZURE: &[(&str, ValueKind)] = &[
    ("connection_string", Text),
    ("sas_token", Text),
    ("account_name", Text),
    ("account_key", Text),
    ("tenant_id", Text),
    ("client_id", Text),
    ("client_secret", Text),
    ("allow_anonymous_login", Bool),
    ("exclude_environment_credential", Bool),
    ("exclude_visual_studio_code_credential", Bool),
    ("exclude_shared_token_cache_credential", Bool),
    ("exclude_managed_identity_credential", Bool),
    ("verify", Bool),
    ("timeout", Integer),
    ("read_timeout", Integer),
    ("connection_timeout", Integer),
];

const SSH: &[(&str, ValueKind)] = &[
    ("type", CacheTypes),
    ("port", Integer),
    ("user", Text),
    ("password", Text),
    ("ask_password", Bool),
    ("passphrase", Text),
    ("ask_passphrase", Bool),
    ("keyfile", Text),
    ("timeout", Integer),
    ("gss_auth", Bool),
    ("allow_agent", Bool),
    ("max_sessions", Integer),
    ("verify", Bool),
];

const HTTP: &[(&str, ValueKind)] = &[
    ("auth", Choice(&["basic", "digest", "custom"])),
    ("custom_auth_header", Text),
    ("user", Text),
    ("password", Text),
    ("ask_password", Bool),
    ("ssl_verify", BoolOrText),
    ("method", Text),
    ("connect_timeout", NonNegative),
    ("read_timeout", NonNegative),
    ("verify", Bool),
];

const WEBDAV: &[(&str, ValueKind)] = &[
    ("user", Text),
    ("password", Text),
    ("ask_password", Bool),
    ("token", Text),
    ("bearer_token_command", Text),
    ("custom_auth_header", Text),
    ("cert_path", Text),
    ("key_path", Text),
    ("timeout", Integer),
    ("ssl_verify", BoolOrText),
    ("verify", Bool),
];

const HDFS: &[(&str, ValueKind)] = &[
    ("user", Text),
    ("kerb_ticket", Text),
    ("replication", Integer),
];

const WEBHDFS: &[(&str, ValueKind)] = &[
    ("kerberos", Bool),
    ("kerberos_principal", Text),
    ("proxy_to", Text),
    ("ssl_verify", BoolOrText),
    ("token", Text),
    ("use_https", Bool),
    ("user", Text),
    ("password", Text),
    ("data_proxy_target", Text),
    ("verify", Bool),
];

const OSS: &[(&str, ValueKind)] = &[
    ("oss_key_id", Text),
    ("oss_key_secret", Text),
    ("oss_endpoint", Text),
    ("verify", Bool),
];

const GDRIVE: &[(&str, ValueKind)] = &[
    ("profile", Text),
    ("gdrive_use_service_account", Bool),
    ("gdrive_client_id", Text),
    ("gdrive_client_secret", Text),
    ("gdrive_user_credentials_file", Text),
    ("gdrive_service_account_user_email", Text),
    ("gdrive_service_account_json_file_path", Text),
    ("gdrive_trash_only", Bool),
    ("gdrive_acknowledge_abuse", Bool),
    ("verify", Bool),
];

/// The options of a remote whose URL has `scheme` (`""` for a local path),
/// or `None` for a scheme DVC does not support.
fn schema(scheme: &str) -> Option<&'static [(&'static str, ValueKind)]> {
    Some(match scheme {
        "" => LOCAL,
        "s3" => S3,
        "gs" => GS,
        "azure" => AZURE,
        "ssh" => SSH,
        "http" | "https" => HTTP,
        "webdav" | "webdavs" => WEBDAV,
        "hdfs" => HDFS,
        "webhdfs" => WEBHDFS,
        "oss" => OSS,
        "gdrive" => GDRIVE,
        _ => return None,
    })
}

/// The URL's scheme as DVC picks its schema: a URL without a host (a path,
/// `file:///...`) is local.
fn url_scheme(url: &str) -> &str {
    match url.split_once("://") {
        Some((scheme, rest)) if !rest.starts_with('/') && !rest.is_empty() => scheme,
        _ => "",
    }
}

fn check_value(kind: ValueKind, value: &str) -> std::result::Result<(), String> {
    let is_bool = matches!(value.to_lowercase().as_str(), "true" | "false");
    match kind {
        Text | BoolOrText => Ok(()),
        Bool if is_bool => Ok(()),
        Bool => Err("expected true or false".to_owned()),
        Positive => match value.trim().parse::<i64>() {
            Ok(number) if number >= 1 => Ok(()),
            Ok(_) => Err("value must be at least 1".to_owned()),
            Err(_) => Err("expected int".to_owned()),
        },
        Integer => value
            .trim()
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| "expected int".to_owned()),
        NonNegative => match value.trim().parse::<f64>() {
            Ok(number) if number >= 0.0 => Ok(()),
            Ok(_) => Err("value must be at least 0".to_owned()),
            Err(_) => Err("expected float".to_owned()),
        },
        CacheTypes => {
            let unsupported: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|link| !["reflink", "hardlink", "symlink", "copy"].contains(link))
                .collect();
            if unsupported.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "Unsupported cache type(s): {}",
                    unsupported.join(", ")
                ))
            }
        }
        Choice(choices) if choices.contains(&value.to_lowercase().as_str()) => Ok(()),
        Choice(choices) => Err(format!("expected one of {}", choices.join(", "))),
    }
}

fn config_path(repo_root: &Path, level: ConfigLevel) -> PathBuf {
    match level {
        ConfigLevel::Project => repo_root.join(".dvc").join("config"),
        ConfigLevel::Local => repo_root.join(".dvc").join("config.local"),
    }
}

/// `remote modify NAME OPTION VALUE` (`value: None` unsets the option), in
/// the config file of `level`. The remote must exist at that level or below
/// it (a local option may refine a project remote). `cwd` resolves a
/// relative `url`, which is stored relative to `.dvc/` as DVC stores it.
pub fn modify(
    repo_root: &Path,
    cwd: &Path,
    name: &str,
    option: &str,
    value: Option<&str>,
    level: ConfigLevel,
) -> Result<()> {
    let section = format!("remote \"{name}\"");
    let project = ConfigFile::read(&config_path(repo_root, ConfigLevel::Project))?;
    let path = config_path(repo_root, level);
    let mut config = ConfigFile::read(&path)?;
    let visible = match level {
        ConfigLevel::Project => vec![&project],
        ConfigLevel::Local => vec![&project, &config],
    };
    if !visible.iter().any(|config| config.has_section(&section)) {
        return Err(DataError::Usage(format!("remote '{name}' doesn't exist")));
    }
    let Some(value) = value else {
        config.unset(&section, option);
        // DVC keeps the remote's section, even emptied.
        if !config.has_section(&section) {
            config.clear_section(&section);
        }
        return config.write(&path);
    };
    let stored = if option == "url" {
        stored_url(repo_root, cwd, value)
    } else {
        let url = visible
            .iter()
            .rev()
            .find_map(|config| config.get(&section, "url"))
            .unwrap_or_default();
        let scheme = url_scheme(url);
        let options = schema(scheme).ok_or_else(|| {
            DataError::Usage(format!("remote '{name}': unsupported URL type {scheme}://"))
        })?;
        let kind = REMOTE_COMMON
            .iter()
            .chain(options)
            .find(|(known, _)| *known == option)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| {
                let kind = if scheme.is_empty() { "local" } else { scheme };
                DataError::Usage(format!(
                    "remote '{name}': '{option}' is not an option of {kind} remotes"
                ))
            })?;
        check_value(kind, value).map_err(|reason| {
            DataError::Usage(format!("remote '{name}': {option} = {value:?}: {reason}"))
        })?;
        value.to_owned()
    };
    if option == "url" && schema(url_scheme(&stored)).is_none() {
        return Err(DataError::Usage(format!(
            "remote '{name}': unsupported URL type {}://",
            url_scheme(&stored)
        )));
    }
    config.set(&section, option, &stored);
    config.write(&path)
}

/// A relative path typed in `cwd`, made relative to `.dvc/`; URLs and
/// absolute paths as given.
fn stored_url(repo_root: &Path, cwd: &Path, url: &str) -> String {
    let has_scheme = url.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character))
    });
    if has_scheme || Path::new(url).is_absolute() {
        return url.to_owned();
    }
    let target = normalize(&cwd.join(url));
    let base = normalize(&repo_root.join(".dvc"));
    let base_parts: Vec<Component> = base.components().collect();
    let target_parts: Vec<Component> = target.components().collect();
    let n_common = base_parts
        .iter()
        .zip(&target_parts)
        .take_while(|(left, right)| left == right)
        .count();
    let mut relative = PathBuf::new();
    for _ in n_common..base_parts.len() {
        relative.push("..");
    }
    for part in &target_parts[n_common..] {
        relative.push(part.as_os_str());
    }
    if relative.as_os_str().is_empty() {
        relative.push(".");
    }
    relative.to_string_lossy().into_owned()
}

fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() {
                    normalized.push("..");
                }
            }
            other => normalized.push(other.as_os_str()),
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with_remote() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".dvc")).expect("mkdir");
        std::fs::write(
            dir.path().join(".dvc/config"),
            "['remote \"r\"']\n    url = /tmp/h2/rem\n",
        )
        .expect("write");
        dir
    }

    fn read(dir: &tempfile::TempDir, name: &str) -> String {
        std::fs::read_to_string(dir.path().join(".dvc").join(name)).expect("read")
    }

    #[test]
    fn set_and_unset_write_what_dvc_writes() {
        // The bytes of `dvc remote modify r verify True`, `... jobs 4`,
        // `--local r jobs 8`, then `--unset jobs` and `--local --unset jobs`
        // (DVC 3.67.1).
        let dir = repo_with_remote();
        let root = dir.path();
        let project = ConfigLevel::Project;
        modify(root, root, "r", "verify", Some("True"), project).expect("verify");
        modify(root, root, "r", "jobs", Some("4"), project).expect("jobs");
        modify(root, root, "r", "jobs", Some("8"), ConfigLevel::Local).expect("local");
        assert_eq!(
            read(&dir, "config"),
            "['remote \"r\"']\n    url = /tmp/h2/rem\n    verify = True\n    jobs = 4\n"
        );
        assert_eq!(
            read(&dir, "config.local"),
            "['remote \"r\"']\n    jobs = 8\n"
        );
        modify(root, root, "r", "jobs", None, project).expect("unset");
        modify(root, root, "r", "jobs", None, ConfigLevel::Local).expect("unset local");
        assert_eq!(
            read(&dir, "config"),
            "['remote \"r\"']\n    url = /tmp/h2/rem\n    verify = True\n"
        );
        assert_eq!(read(&dir, "config.local"), "['remote \"r\"']\n");
    }

    #[test]
    fn unknown_options_bad_values_and_missing_remotes_are_refused() {
        let dir = repo_with_remote();
        let root = dir.path();
        let project = ConfigLevel::Project;
        for (name, option, value) in [
            ("r", "foo", "bar"),
            ("r", "verify", "maybe"),
            ("r", "jobs", "0"),
            ("r", "region", "us-east-1"),
            ("nope", "jobs", "1"),
            ("r", "url", "ftp://host/path"),
        ] {
            let error = modify(root, root, name, option, Some(value), project).expect_err(option);
            assert!(matches!(error, DataError::Usage(_)), "{error}");
        }
        assert_eq!(
            read(&dir, "config"),
            "['remote \"r\"']\n    url = /tmp/h2/rem\n"
        );
        modify(root, root, "r", "url", Some("s3://bucket/path"), project).expect("url");
        modify(root, root, "r", "region", Some("us-east-1"), project).expect("s3 option");
    }

    #[test]
    fn a_relative_url_is_stored_relative_to_the_dvc_directory() {
        let dir = repo_with_remote();
        let root = dir.path();
        modify(root, root, "r", "url", Some("../rel"), ConfigLevel::Project).expect("root");
        assert!(read(&dir, "config").contains("url = ../../rel\n"));
        let sub = root.join("sub");
        modify(
            root,
            &sub,
            "r",
            "url",
            Some("../rel2"),
            ConfigLevel::Project,
        )
        .expect("sub");
        assert!(read(&dir, "config").contains("url = ../rel2\n"));
    }
}
