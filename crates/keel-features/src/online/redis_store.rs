//! The Redis online store: one hash per (project, view, entity key) holding the
//! row's event timestamp (`ts`, decimal) and its feature values (`v`). The hash
//! key is `keel:{project}:{view}:` followed by the raw entity key bytes.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ErrorKind, Pipeline, RedisError, Script, ServerErrorKind,
};

use super::{OnlineRow, OnlineStore, StoredRow, ViewRead};
use crate::{FeatureError, Result};

/// Newer-wins as one atomic step: writes the row unless the stored one is
/// strictly more recent; returns 1 when written, 0 when skipped. Timestamps
/// are compared as decimal strings, because Lua numbers are doubles and would
/// blur i64 microseconds past 2^53.
const WRITE_IF_NEWER: &str = r"
local function compare(a, b)
    local a_negative, b_negative = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
    if a_negative ~= b_negative then
        return a_negative and -1 or 1
    end
    local sign = a_negative and -1 or 1
    if #a ~= #b then
        return (#a < #b and -1 or 1) * sign
    end
    -- Byte by byte: `a < b` on strings follows the server's locale.
    for i = 1, #a do
        local a_byte, b_byte = a:byte(i), b:byte(i)
        if a_byte ~= b_byte then
            return (a_byte < b_byte and -1 or 1) * sign
        end
    end
    return 0
end
local stored = redis.call('HGET', KEYS[1], 'ts')
if stored and compare(stored, ARGV[1]) > 0 then
    return 0
end
redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'v', ARGV[2])
return 1
";

/// Rows per write pipeline: bounds the memory of a bulk write and lets reads
/// sharing the multiplexed connection slip in between chunks.
const ROWS_PER_PIPELINE: usize = 10_000;

/// Keys asked of each SCAN step, and so deleted per UNLINK, when dropping a view.
const KEYS_PER_SCAN: usize = 1_000;

/// The online store in Redis, scoped to one project.
#[derive(Clone)]
pub struct RedisOnlineStore {
    connection: MultiplexedConnection,
    write_if_newer: Script,
    project: String,
}

impl std::fmt::Debug for RedisOnlineStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedisOnlineStore")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl RedisOnlineStore {
    /// Connects to the Redis server at `url` (`redis://host:port/db`) and serves
    /// `project`'s rows from it.
    pub async fn connect(url: &str, project: &str) -> Result<Self> {
        let unreachable = |error: RedisError| {
            FeatureError::Online(format!(
                "cannot use Redis at {}: {error}; the redis online store needs a reachable \
                 Redis server (check the connection string and that the server is running)",
                without_password(url)
            ))
        };
        let client = Client::open(url).map_err(unreachable)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            // Bulk writes are pipelines of thousands of scripts; the client's
            // default of 500 ms would fail them on a busy server.
            .set_response_timeout(Some(Duration::from_secs(30)));
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unreachable)?;
        let write_if_newer = Script::new(WRITE_IF_NEWER);
        write_if_newer
            .load_async(&mut connection)
            .await
            .map_err(unreachable)?;
        Ok(Self {
            connection,
            write_if_newer,
            project: project.to_owned(),
        })
    }

    /// `keel:{project}:{view}:`, the prefix of every hash key of `view`.
    fn view_prefix(&self, view: &str) -> Vec<u8> {
        format!("keel:{}:{view}:", self.project).into_bytes()
    }

    /// Runs one pipeline of write scripts and returns how many rows it wrote.
    async fn write_chunk(&self, prefix: &[u8], rows: &[OnlineRow]) -> Result<usize> {
        let mut connection = self.connection.clone();
        let by_hash = write_pipeline(
            "EVALSHA",
            self.write_if_newer.get_hash().as_bytes(),
            prefix,
            rows,
        );
        let written: Vec<i64> = match by_hash.query_async(&mut connection).await {
            Ok(written) => written,
            // The server lost its script cache (restart, SCRIPT FLUSH): replay
            // with the script's text, which also caches it again. Replaying is
            // safe as equal timestamps overwrite with the same values.
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                write_pipeline("EVAL", WRITE_IF_NEWER.as_bytes(), prefix, rows)
                    .query_async(&mut connection)
                    .await
                    .map_err(redis_error)?
            }
            Err(error) => return Err(redis_error(error)),
        };
        Ok(written.iter().filter(|&&flag| flag == 1).count())
    }
}

#[async_trait::async_trait]
impl OnlineStore for RedisOnlineStore {
    async fn write(&self, view: &str, rows: &[OnlineRow]) -> Result<usize> {
        let prefix = self.view_prefix(view);
        let mut n_written = 0;
        for chunk in rows.chunks(ROWS_PER_PIPELINE) {
            n_written += self.write_chunk(&prefix, chunk).await?;
        }
        Ok(n_written)
    }

    async fn read_batch(&self, reads: &[ViewRead<'_>]) -> Result<Vec<Vec<Option<StoredRow>>>> {
        let n_pairs: usize = reads.iter().map(|read| read.keys.len()).sum();
        if n_pairs == 0 {
            return Ok(reads.iter().map(|_| Vec::new()).collect());
        }
        let mut pipeline = redis::pipe();
        for read in reads {
            let prefix = self.view_prefix(read.view);
            for key in read.keys {
                pipeline
                    .cmd("HMGET")
                    .arg(hash_key(&prefix, key))
                    .arg("ts")
                    .arg("v");
            }
        }
        let mut connection = self.connection.clone();
        let hashes: Vec<(Option<i64>, Option<Vec<u8>>)> = pipeline
            .query_async(&mut connection)
            .await
            .map_err(redis_error)?;
        if hashes.len() != n_pairs {
            return Err(FeatureError::Online(format!(
                "redis answered {} of {n_pairs} lookups",
                hashes.len()
            )));
        }
        let mut hashes = hashes.into_iter();
        let mut results = Vec::with_capacity(reads.len());
        for read in reads {
            let mut rows = Vec::with_capacity(read.keys.len());
            for (event_ts, values) in hashes.by_ref().take(read.keys.len()) {
                rows.push(match (event_ts, values) {
                    (Some(event_ts), Some(values)) => Some(StoredRow { event_ts, values }),
                    (None, None) => None,
                    _ => {
                        return Err(FeatureError::Online(format!(
                            "a redis hash of view {} lacks its `ts` or `v` field; \
                             drop the view and materialize it again",
                            read.view
                        )))
                    }
                });
            }
            results.push(rows);
        }
        Ok(results)
    }

    async fn drop_view(&self, view: &str) -> Result<()> {
        let mut pattern = escape_glob(&self.view_prefix(view));
        pattern.push(b'*');
        let mut connection = self.connection.clone();
        let mut cursor: u64 = 0;
        loop {
            let (next_cursor, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern.as_slice())
                .arg("COUNT")
                .arg(KEYS_PER_SCAN)
                .query_async(&mut connection)
                .await
                .map_err(redis_error)?;
            if !keys.is_empty() {
                redis::cmd("UNLINK")
                    .arg(keys)
                    .exec_async(&mut connection)
                    .await
                    .map_err(redis_error)?;
            }
            if next_cursor == 0 {
                return Ok(());
            }
            cursor = next_cursor;
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// One `WRITE_IF_NEWER` call per row, as `EVALSHA <hash>` or `EVAL <text>`
/// (`ScriptInvocation` cannot join a pipeline).
fn write_pipeline(command: &str, script: &[u8], prefix: &[u8], rows: &[OnlineRow]) -> Pipeline {
    let mut pipeline = redis::pipe();
    for row in rows {
        pipeline
            .cmd(command)
            .arg(script)
            .arg(1)
            .arg(hash_key(prefix, &row.key))
            .arg(row.event_ts)
            .arg(row.values.as_slice());
    }
    pipeline
}

/// Translates a Redis failure. A failed pipeline reports how many of its
/// commands failed and the first failure, not thousands of copies of it.
fn redis_error(error: RedisError) -> FeatureError {
    if let Some(failures) = error.clone().into_server_errors() {
        if let (Some((command_idx, first)), true) = (failures.first(), failures.len() > 1) {
            return FeatureError::Online(format!(
                "redis: {} commands of a pipeline failed, the first (command {command_idx}) \
                 with: {first}",
                failures.len()
            ));
        }
    }
    FeatureError::from(error)
}

/// `url` with any credentials masked, for messages that end up in logs.
fn without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + "://".len();
    let authority_end = url[authority_start..]
        .find('/')
        .map_or(url.len(), |slash| authority_start + slash);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        ),
        None => url.to_owned(),
    }
}

/// The hash key of one entity: the view's prefix, then the key's raw bytes.
fn hash_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut hash_key = Vec::with_capacity(prefix.len() + key.len());
    hash_key.extend_from_slice(prefix);
    hash_key.extend_from_slice(key);
    hash_key
}

/// `bytes` as a SCAN MATCH pattern matching exactly itself.
fn escape_glob(bytes: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(bytes.len() + 8);
    for &byte in bytes {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern
}
