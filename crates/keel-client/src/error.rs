//! `ClientError`: what can go wrong talking to a server, phrased for the person
//! at the terminal.

use std::path::PathBuf;

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with MLflow's error JSON.
    #[error("{error_code}: {message}")]
    Api {
        status: u16,
        error_code: String,
        message: String,
    },
    /// The server answered an error status without MLflow's error JSON.
    #[error("HTTP {status} from {url}: {body}")]
    Http {
        status: u16,
        url: String,
        body: String,
    },
    /// No answer at all: the server is down, the address is wrong, TLS failed.
    #[error(
        "cannot reach the tracking server at {base_uri} ({detail}); is it running? \
         pass --tracking-uri or set KEEL_TRACKING_URI"
    )]
    Connect { base_uri: String, detail: String },
    /// A success status with a body this client does not understand.
    #[error("unexpected response from {url}: {detail}")]
    Decode { url: String, detail: String },
    #[error("{action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// A request the client refuses to make or a response it refuses to act on.
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// Whether the server said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { error_code, .. } if error_code == "RESOURCE_DOES_NOT_EXIST")
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        error: std::io::Error,
    ) -> Self {
        ClientError::Io {
            action,
            path: path.into(),
            error,
        }
    }
}
