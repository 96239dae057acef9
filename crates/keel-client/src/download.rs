//! Downloading a model version's files through the server's artifact proxy:
//! list recursively, stream each file to disk, never write outside the
//! destination directory whatever names the server answers.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::types::ModelVersion;
use crate::{Client, ClientError, ModelRef, Result};

/// The proxy scheme a tracking server with `--serve-artifacts` hands out.
const PROXY_SCHEME: &str = "mlflow-artifacts:";

/// Directories nested deeper than this are refused (a server answering a loop).
const MAX_DEPTH: usize = 64;

/// One file written by a download, relative to the destination (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedFile {
    pub path: String,
    pub bytes: u64,
}

/// The artifact-proxy path of an `mlflow-artifacts:` URI:
/// `mlflow-artifacts:/1/models/m-1/artifacts` and
/// `mlflow-artifacts://host:5000/1/models/m-1/artifacts` give `1/models/m-1/artifacts`.
pub fn artifact_root_path(uri: &str) -> Result<String> {
    let unsupported = || {
        ClientError::Invalid(format!(
            "cannot download from '{uri}': only mlflow-artifacts: locations, served by the \
             tracking server's artifact proxy, can be downloaded"
        ))
    };
    let rest = uri.strip_prefix(PROXY_SCHEME).ok_or_else(unsupported)?;
    let path = match rest.strip_prefix("//") {
        // An authority names the server; the path after it is what the proxy serves.
        Some(with_authority) => with_authority.split_once('/').map_or("", |(_, path)| path),
        None => rest,
    };
    let path = path.trim_matches('/');
    if path.is_empty() || path.split('/').any(|part| !is_safe_name(part)) {
        return Err(unsupported());
    }
    Ok(path.to_string())
}

/// A single path component the server may name: no separators, no `.`/`..`,
/// no control characters.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

impl Client {
    /// Downloads every file of a version into `dest` (created if needed).
    /// Answers the version, its download URI and the files written.
    pub fn download_version(
        &self,
        model: &ModelRef,
        dest: &Path,
    ) -> Result<(ModelVersion, String, Vec<DownloadedFile>)> {
        let version = self.resolve(model)?;
        let uri = self.get_download_uri(&version.name, &version.version)?;
        let root = artifact_root_path(&uri)?;
        let files = self.download_tree(&root, dest)?;
        if files.is_empty() {
            return Err(ClientError::Invalid(format!(
                "model version {model} has no files at {uri}"
            )));
        }
        Ok((version, uri, files))
    }

    /// Downloads every file under the proxy path `root` into `dest`, keeping the layout.
    pub fn download_tree(&self, root: &str, dest: &Path) -> Result<Vec<DownloadedFile>> {
        fs::create_dir_all(dest).map_err(|err| ClientError::io("cannot create", dest, err))?;
        let dest_real = dest
            .canonicalize()
            .map_err(|err| ClientError::io("cannot resolve", dest, err))?;
        let mut written = Vec::new();
        let mut pending: Vec<Vec<String>> = vec![Vec::new()];
        while let Some(dir) = pending.pop() {
            let remote_dir = remote_path(root, &dir);
            for entry in self.list_artifacts(&remote_dir)? {
                if !is_safe_name(&entry.path) {
                    return Err(ClientError::Invalid(format!(
                        "refusing to download '{}' listed under '{remote_dir}': the name would \
                         write outside the destination directory",
                        entry.path
                    )));
                }
                let mut parts = dir.clone();
                parts.push(entry.path);
                if entry.is_dir {
                    if parts.len() > MAX_DEPTH {
                        return Err(ClientError::Invalid(format!(
                            "refusing to download '{remote_dir}': directories nest deeper than {MAX_DEPTH} levels"
                        )));
                    }
                    pending.push(parts);
                    continue;
                }
                let bytes = self.download_file(root, &parts, &dest_real)?;
                written.push(DownloadedFile {
                    path: parts.join("/"),
                    bytes,
                });
            }
        }
        written.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(written)
    }

    /// Streams one file to a temporary name next to its destination, then renames it.
    fn download_file(&self, root: &str, parts: &[String], dest_real: &Path) -> Result<u64> {
        let local: PathBuf = parts
            .iter()
            .fold(dest_real.to_path_buf(), |path, part| path.join(part));
        let parent = local.parent().unwrap_or(dest_real);
        fs::create_dir_all(parent).map_err(|err| ClientError::io("cannot create", parent, err))?;
        // A symlink already in the destination could point anywhere; stay inside it.
        let parent_real = parent
            .canonicalize()
            .map_err(|err| ClientError::io("cannot resolve", parent, err))?;
        if !parent_real.starts_with(dest_real) {
            return Err(ClientError::Invalid(format!(
                "refusing to write {}: it resolves outside {}",
                local.display(),
                dest_real.display()
            )));
        }
        let file_name = parts.last().map_or("file", String::as_str);
        let partial = parent_real.join(format!(".{file_name}.keel-partial"));
        let target = parent_real.join(file_name);
        let mut file = fs::File::create(&partial)
            .map_err(|err| ClientError::io("cannot create", &partial, err))?;
        let copied = self
            .download_artifact(&remote_path(root, parts), &mut file)
            .and_then(|bytes| {
                file.flush()
                    .map_err(|err| ClientError::io("cannot write", &partial, err))?;
                Ok(bytes)
            });
        drop(file);
        let bytes = match copied {
            Ok(bytes) => bytes,
            Err(err) => {
                let _ = fs::remove_file(&partial);
                return Err(err);
            }
        };
        fs::rename(&partial, &target)
            .map_err(|err| ClientError::io("cannot write", &target, err))?;
        Ok(bytes)
    }
}

fn remote_path(root: &str, parts: &[String]) -> String {
    if parts.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{}", parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_uris_give_their_path() {
        assert_eq!(
            artifact_root_path("mlflow-artifacts:/1/models/m-1/artifacts").unwrap(),
            "1/models/m-1/artifacts"
        );
        assert_eq!(
            artifact_root_path("mlflow-artifacts://127.0.0.1:5000/1/r/artifacts/model").unwrap(),
            "1/r/artifacts/model"
        );
    }

    #[test]
    fn other_schemes_and_traversal_are_refused() {
        for bad in [
            "s3://bucket/model",
            "/tmp/model",
            "mlflow-artifacts:",
            "mlflow-artifacts:/1/../../etc",
            "mlflow-artifacts:/1/./x",
            "mlflow-artifacts:/a\\..\\b",
        ] {
            let err = artifact_root_path(bad).unwrap_err();
            assert!(
                err.to_string().contains("mlflow-artifacts:"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn only_plain_names_are_safe() {
        for good in ["MLmodel", "model.pkl", "..hidden", "a b", "é"] {
            assert!(is_safe_name(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a\nb", "\0"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod server_tests {
    //! `download_tree` against a scripted HTTP server that answers fixed bodies by path.

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    /// Serves `routes` (request target → JSON or file body) on a loopback port until dropped.
    fn scripted_server(routes: HashMap<String, String>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut header = String::new();
                while reader.read_line(&mut header).unwrap() > 2 {
                    header.clear();
                }
                let target = request_line.split(' ').nth(1).unwrap_or_default();
                let (status, body) = match routes.get(target) {
                    Some(body) => ("200 OK", body.clone()),
                    None => ("404 Not Found", format!("no route {target}")),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        uri
    }

    /// The listing request of `path`, as ureq encodes the query.
    fn list(path: &str) -> String {
        let encoded = path.replace('/', "%2F").replace(' ', "+");
        format!("/api/2.0/mlflow-artifacts/artifacts?path={encoded}")
    }

    #[test]
    fn trees_download_with_their_layout() {
        let routes = HashMap::from([
            (
                list("0/m/artifacts"),
                r#"{"files": [{"path": "MLmodel", "is_dir": false, "file_size": 5},
                              {"path": "sub dir", "is_dir": true}]}"#
                    .to_string(),
            ),
            (
                list("0/m/artifacts/sub dir"),
                r#"{"files": [{"path": "model.pkl", "is_dir": false}]}"#.to_string(),
            ),
            (
                "/api/2.0/mlflow-artifacts/artifacts/0/m/artifacts/MLmodel".to_string(),
                "flavors".to_string(),
            ),
            (
                "/api/2.0/mlflow-artifacts/artifacts/0/m/artifacts/sub%20dir/model.pkl".to_string(),
                "pickle".to_string(),
            ),
        ]);
        let client = Client::new(&scripted_server(routes)).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let files = client.download_tree("0/m/artifacts", dest.path()).unwrap();
        assert_eq!(
            files,
            vec![
                DownloadedFile {
                    path: "MLmodel".into(),
                    bytes: 7
                },
                DownloadedFile {
                    path: "sub dir/model.pkl".into(),
                    bytes: 6
                },
            ]
        );
        assert_eq!(
            fs::read_to_string(dest.path().join("sub dir/model.pkl")).unwrap(),
            "pickle"
        );
    }

    #[test]
    fn names_that_climb_out_of_the_destination_are_refused() {
        for hostile in ["..", "../escape.txt", "/etc/passwd", "a\\\\..\\\\b"] {
            let listing = format!(r#"{{"files": [{{"path": "{hostile}", "is_dir": false}}]}}"#);
            let routes = HashMap::from([(list("root"), listing)]);
            let client = Client::new(&scripted_server(routes)).unwrap();
            let parent = tempfile::tempdir().unwrap();
            let dest = parent.path().join("dest");
            let err = client.download_tree("root", &dest).unwrap_err();
            assert!(
                err.to_string().contains("outside the destination"),
                "{hostile}: {err}"
            );
            assert!(!parent.path().join("escape.txt").exists());
        }
    }
}
