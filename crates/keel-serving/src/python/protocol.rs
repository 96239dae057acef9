//! The pipe protocol between keel and a Python worker: length-prefixed
//! frames whose first byte is a tag, and the JSON the worker sends.

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The worker's first frame: the model loaded (with its signature) or why not.
pub const TAG_HELLO: u8 = b'H';
/// An Arrow IPC stream: a request from keel or the outputs of one.
pub const TAG_ARROW: u8 = b'A';
/// A request failed; the payload is a [`WireFailure`].
pub const TAG_ERROR: u8 = b'E';

/// Writes one frame: u32 little-endian length of tag + payload, tag, payload.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    tag: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let length = u32::try_from(payload.len() + 1).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a frame is limited to 4 GiB",
        )
    })?;
    let mut header = [0u8; 5];
    header[..4].copy_from_slice(&length.to_le_bytes());
    header[4] = tag;
    writer.write_all(&header).await?;
    writer.write_all(payload).await?;
    writer.flush().await
}

/// Reads one frame as (tag, payload); `UnexpectedEof` when the worker is gone.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    reader.read_exact(&mut header).await?;
    let length = u32::from_le_bytes(header) as usize;
    if length == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "empty frame without a tag",
        ));
    }
    let mut tag = [0u8; 1];
    reader.read_exact(&mut tag).await?;
    let mut payload = vec![0u8; length - 1];
    reader.read_exact(&mut payload).await?;
    Ok((tag[0], payload))
}

/// The hello frame.
#[derive(Debug, Deserialize)]
pub struct WireHello {
    pub ok: bool,
    /// `import` or `load` when `ok` is false.
    #[serde(default)]
    pub stage: Option<String>,
    /// The module that failed to import.
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub python: Option<String>,
    #[serde(default)]
    pub mlflow: Option<String>,
    #[serde(default)]
    pub signature: Option<WireSignature>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireSignature {
    #[serde(default)]
    pub inputs: Option<WireSchema>,
    #[serde(default)]
    pub outputs: Option<WireSchema>,
}

/// An MLflow schema: named (or unnamed) columns, or tensors.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum WireSchema {
    Columns { specs: Vec<WireColumn> },
    Tensors { specs: Vec<WireTensor> },
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireColumn {
    #[serde(default)]
    pub name: Option<String>,
    /// MLflow's `DataType` name: `double`, `float`, `long`, `integer`, `boolean`, `string`, ...
    #[serde(rename = "type")]
    pub type_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireTensor {
    #[serde(default)]
    pub name: Option<String>,
    /// A numpy dtype name: `float64`, `int32`, `object`, ...
    pub dtype: String,
    pub shape: Vec<i64>,
}

/// Why one request failed inside the worker.
#[derive(Debug, Deserialize)]
pub struct WireFailure {
    /// `decode`, `predict`, `encode` or `protocol`.
    pub stage: String,
    /// The Python exception class.
    #[serde(rename = "type")]
    pub type_name: String,
    pub message: String,
}
