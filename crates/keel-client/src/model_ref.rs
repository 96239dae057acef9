//! `ModelRef`: a registered model version named on the command line, as
//! `NAME/VERSION` or `NAME@ALIAS` (the forms of `models:/` URIs).

use std::fmt;
use std::str::FromStr;

use crate::ClientError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    Version { name: String, version: i64 },
    Alias { name: String, alias: String },
}

impl ModelRef {
    pub fn name(&self) -> &str {
        match self {
            ModelRef::Version { name, .. } | ModelRef::Alias { name, .. } => name,
        }
    }

    /// The version segment of Keel's lineage route: `3` or `@champion`.
    pub fn selector(&self) -> String {
        match self {
            ModelRef::Version { version, .. } => version.to_string(),
            ModelRef::Alias { alias, .. } => format!("@{alias}"),
        }
    }
}

impl FromStr for ModelRef {
    type Err = ClientError;

    /// Model names cannot contain `/`, so `NAME/VERSION` splits at the slash;
    /// they may contain `@`, so `NAME@ALIAS` splits at the last `@`.
    fn from_str(text: &str) -> Result<Self, ClientError> {
        let invalid = || {
            ClientError::Invalid(format!(
                "invalid model reference '{text}': expected NAME/VERSION (e.g. clf/3) or NAME@ALIAS (e.g. clf@champion)"
            ))
        };
        if let Some((name, version)) = text.split_once('/') {
            let version = version.parse::<i64>().map_err(|_| invalid())?;
            if name.is_empty() || version < 1 {
                return Err(invalid());
            }
            return Ok(ModelRef::Version {
                name: name.to_string(),
                version,
            });
        }
        match text.rsplit_once('@') {
            Some((name, alias)) if !name.is_empty() && !alias.is_empty() => Ok(ModelRef::Alias {
                name: name.to_string(),
                alias: alias.to_string(),
            }),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Version { name, version } => write!(f, "{name}/{version}"),
            ModelRef::Alias { name, alias } => write!(f, "{name}@{alias}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_aliases_parse() {
        assert_eq!(
            "clf/3".parse::<ModelRef>().unwrap(),
            ModelRef::Version {
                name: "clf".into(),
                version: 3
            }
        );
        assert_eq!(
            "team@x@champion".parse::<ModelRef>().unwrap(),
            ModelRef::Alias {
                name: "team@x".into(),
                alias: "champion".into()
            }
        );
        assert_eq!(
            "clf@champion".parse::<ModelRef>().unwrap().selector(),
            "@champion"
        );
        assert_eq!("clf/7".parse::<ModelRef>().unwrap().to_string(), "clf/7");
    }

    #[test]
    fn malformed_references_say_what_is_expected() {
        for bad in [
            "clf",
            "clf/",
            "/3",
            "clf/three",
            "clf/0",
            "clf@",
            "@champion",
            "a/b/3",
        ] {
            let err = bad.parse::<ModelRef>().unwrap_err();
            assert!(err.to_string().contains("NAME/VERSION"), "{bad}: {err}");
        }
    }
}
