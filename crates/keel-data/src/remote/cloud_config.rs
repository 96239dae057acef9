//! From a DVC remote section to an object store: the URL's scheme picks the
//! service (`s3://`, `gs://`, `azure://` or `az://`), the options are read
//! under the names DVC gives them (`endpointurl`, `access_key_id`, ...), and
//! what the section leaves out comes from the service's usual environment
//! variables. Settings are plain data, built without touching the network, so
//! a mistake in them is a sentence at `resolve` time, not a failed request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::config::ConfigFile;

/// The options of a remote section, merged over `.dvc/config` and
/// `.dvc/config.local` (the local file wins key by key, as in DVC).
pub(crate) type RemoteOptions = BTreeMap<String, String>;

/// The options read from a remote section, by DVC's names; others are left
/// alone (DVC's own validation is not repeated here).
pub(crate) const OPTION_NAMES: &[&str] = &[
    "url",
    // S3
    "endpointurl",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "region",
    "profile",
    "credentialpath",
    "allow_anonymous_login",
    // Google Cloud Storage (`credentialpath` too)
    "projectname",
    // Azure
    "account_name",
    "account_key",
    "sas_token",
    "tenant_id",
    "client_id",
    "client_secret",
];

/// The cloud services a URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    S3,
    Gcs,
    Azure,
}

/// A parsed cloud remote URL: `SCHEME://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloudUrl {
    pub service: Service,
    /// As written (`s3`, `gs`, `azure` or `az`), for messages.
    pub scheme: String,
    /// The bucket (S3, GCS) or container (Azure).
    pub bucket: String,
    /// The path below the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl CloudUrl {
    /// `None` when the scheme is not a cloud one; an error (a sentence) when
    /// it is but the rest of the URL is unusable.
    pub fn parse(url: &str) -> Option<Result<CloudUrl, String>> {
        let (scheme, rest) = url.split_once("://")?;
        let service = match scheme.to_ascii_lowercase().as_str() {
            "s3" => Service::S3,
            "gs" => Service::Gcs,
            "azure" | "az" => Service::Azure,
            _ => return None,
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(format!(
                "{url} names no bucket: write it as {scheme}://BUCKET/PATH"
            )));
        }
        if bucket.contains(['@', ':', '?', '#']) {
            return Some(Err(format!(
                "{url}: {bucket:?} is not a bucket name; write the URL as {scheme}://BUCKET/PATH"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if let Err(error) = ObjectPath::parse(prefix) {
            return Some(Err(format!("{url}: the path is not usable: {error}")));
        }
        Some(Ok(CloudUrl {
            service,
            scheme: scheme.to_owned(),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }

    /// The URL of `key` (a path below the prefix), for messages.
    pub fn display(&self, key: &str) -> String {
        let mut url = format!("{}://{}", self.scheme, self.bucket);
        for part in [self.prefix.as_str(), key] {
            if !part.is_empty() {
                url.push('/');
                url.push_str(part);
            }
        }
        url
    }
}

/// How an S3 remote authenticates.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum S3Credentials {
    /// A key pair (and a session token) from the section, the environment or
    /// the shared credentials file.
    Static {
        key_id: String,
        secret_key: String,
        token: Option<String>,
    },
    /// `allow_anonymous_login = true`: unsigned requests, for public buckets.
    Anonymous,
    /// Web identity or container credentials named by the environment
    /// (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`,
    /// `AWS_CONTAINER_CREDENTIALS_*`), which object_store exchanges itself.
    Delegated(Vec<(AmazonS3ConfigKey, String)>),
}

impl std::fmt::Debug for S3Credentials {
    // Never print a secret.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            S3Credentials::Static { key_id, .. } => {
                write!(formatter, "Static {{ key_id: {key_id:?}, .. }}")
            }
            S3Credentials::Anonymous => write!(formatter, "Anonymous"),
            S3Credentials::Delegated(_) => write!(formatter, "Delegated"),
        }
    }
}

/// Everything an S3 client needs beyond the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Settings {
    /// `endpointurl`, or `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// `region`, or `AWS_REGION` / `AWS_DEFAULT_REGION`; object_store's
    /// default (`us-east-1`) otherwise.
    pub region: Option<String>,
    pub credentials: S3Credentials,
}

impl S3Settings {
    /// The settings of remote `name` from its `options`, with `env` standing
    /// for the process environment and `home` for the user's home directory.
    pub fn new(
        name: &str,
        options: &RemoteOptions,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<PathBuf>,
    ) -> Result<S3Settings, String> {
        let option = |key: &str| options.get(key).filter(|value| !value.is_empty()).cloned();
        let endpoint = option("endpointurl")
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .filter(|endpoint| !endpoint.is_empty());
        if let Some(endpoint) = &endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(format!(
                    "remote '{name}': endpointurl {endpoint:?} must start with http:// or https://"
                ));
            }
        }
        let region = option("region")
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .filter(|region| !region.is_empty());
        let credentials = s3_credentials(name, &option, env, home)?;
        Ok(S3Settings {
            endpoint,
            region,
            credentials,
        })
    }

    /// Plain HTTP is allowed exactly when the endpoint asks for it.
    pub fn allows_http(&self) -> bool {
        self.endpoint
            .as_deref()
            .is_some_and(|endpoint| endpoint.starts_with("http://"))
    }
}

fn is_true(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}

fn s3_credentials(
    name: &str,
    option: &dyn Fn(&str) -> Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<PathBuf>,
) -> Result<S3Credentials, String> {
    if option("allow_anonymous_login").is_some_and(|value| is_true(&value)) {
        return Ok(S3Credentials::Anonymous);
    }
    let pair = |key_id: Option<String>,
                secret_key: Option<String>,
                token: Option<String>,
                source: &str| {
        match (key_id, secret_key) {
            (Some(key_id), Some(secret_key)) => Ok(Some(S3Credentials::Static {
                key_id,
                secret_key,
                token,
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(format!(
                "remote '{name}': {source} sets an access key id but no secret access key"
            )),
            (None, Some(_)) => Err(format!(
                "remote '{name}': {source} sets a secret access key but no access key id"
            )),
        }
    };
    if let Some(credentials) = pair(
        option("access_key_id"),
        option("secret_access_key"),
        option("session_token"),
        "the remote's config",
    )? {
        return Ok(credentials);
    }
    if let Some(credentials) = pair(
        env("AWS_ACCESS_KEY_ID").filter(|value| !value.is_empty()),
        env("AWS_SECRET_ACCESS_KEY").filter(|value| !value.is_empty()),
        env("AWS_SESSION_TOKEN").filter(|value| !value.is_empty()),
        "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
    )? {
        return Ok(credentials);
    }
    let credentials_file = option("credentialpath")
        .or_else(|| env("AWS_SHARED_CREDENTIALS_FILE"))
        .map(PathBuf::from)
        .or_else(|| home.map(|home| home.join(".aws").join("credentials")));
    if let Some(path) = credentials_file.filter(|path| path.is_file()) {
        let profile = option("profile")
            .or_else(|| env("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_owned());
        let file = ConfigFile::read(&path).map_err(|error| error.to_string())?;
        let get = |key: &str| file.get(&profile, key).map(str::to_owned);
        let source = format!("profile '{profile}' of {}", path.display());
        if let Some(credentials) = pair(
            get("aws_access_key_id"),
            get("aws_secret_access_key"),
            get("aws_session_token"),
            &source,
        )? {
            return Ok(credentials);
        }
    }
    let delegated: Vec<(AmazonS3ConfigKey, String)> = [
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            AmazonS3ConfigKey::WebIdentityTokenFile,
        ),
        ("AWS_ROLE_ARN", AmazonS3ConfigKey::RoleArn),
        ("AWS_ROLE_SESSION_NAME", AmazonS3ConfigKey::RoleSessionName),
        ("AWS_ENDPOINT_URL_STS", AmazonS3ConfigKey::StsEndpoint),
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
        ),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            AmazonS3ConfigKey::ContainerCredentialsFullUri,
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
        ),
    ]
    .into_iter()
    .filter_map(|(variable, key)| env(variable).map(|value| (key, value)))
    .collect();
    let has_web_identity = delegated
        .iter()
        .any(|(key, _)| *key == AmazonS3ConfigKey::RoleArn)
        && delegated
            .iter()
            .any(|(key, _)| *key == AmazonS3ConfigKey::WebIdentityTokenFile);
    let has_container = delegated.iter().any(|(key, _)| {
        matches!(
            key,
            AmazonS3ConfigKey::ContainerCredentialsRelativeUri
                | AmazonS3ConfigKey::ContainerCredentialsFullUri
        )
    });
    if has_web_identity || has_container {
        return Ok(S3Credentials::Delegated(delegated));
    }
    // Instance metadata is deliberately not probed: on a machine that is not
    // in AWS it only turns a missing setting into minutes of retries.
    Err(format!(
        "remote '{name}' has no S3 credentials: set them with \
         `dvc remote modify --local {name} access_key_id ID` and \
         `dvc remote modify --local {name} secret_access_key SECRET`, \
         or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
         (or set `allow_anonymous_login true` for a public bucket)"
    ))
}

/// Requests are retried by object_store (5xx, timeouts, dropped
/// connections) with exponential backoff, for up to two minutes.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 5,
        retry_timeout: Duration::from_secs(120),
    }
}

/// No whole-request timeout (a multi-gigabyte body takes what it takes),
/// but a stalled connection is given up after a minute.
fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_timeout_disabled()
        .with_connect_timeout(Duration::from_secs(10))
        .with_read_timeout(Duration::from_secs(60))
        .with_allow_http(allow_http)
}

/// Builds the object store of a cloud remote. Nothing is sent yet.
pub(crate) fn build_store(
    name: &str,
    url: &CloudUrl,
    options: &RemoteOptions,
) -> Result<Arc<dyn ObjectStore>, String> {
    let option = |key: &str| options.get(key).filter(|value| !value.is_empty()).cloned();
    let describe = |error: object_store::Error| {
        format!(
            "remote '{name}' ({}): cannot be configured: {error}",
            url.display("")
        )
    };
    match url.service {
        Service::S3 => {
            let env = |variable: &str| std::env::var(variable).ok();
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let settings = S3Settings::new(name, options, &env, home)?;
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&url.bucket)
                .with_retry(retry_config())
                .with_client_options(client_options(settings.allows_http()));
            if let Some(endpoint) = &settings.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &settings.region {
                builder = builder.with_region(region);
            }
            builder = match settings.credentials {
                S3Credentials::Static {
                    key_id,
                    secret_key,
                    token,
                } => {
                    let builder = builder
                        .with_access_key_id(key_id)
                        .with_secret_access_key(secret_key);
                    match token {
                        Some(token) => builder.with_token(token),
                        None => builder,
                    }
                }
                S3Credentials::Anonymous => builder.with_skip_signature(true),
                S3Credentials::Delegated(settings) => {
                    settings.into_iter().fold(builder, |builder, (key, value)| {
                        builder.with_config(key, value)
                    })
                }
            };
            Ok(Arc::new(builder.build().map_err(describe)?))
        }
        Service::Gcs => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&url.bucket)
                .with_retry(retry_config())
                .with_client_options(client_options(false));
            if let Some(path) = option("credentialpath") {
                builder = builder.with_service_account_path(path);
            }
            if option("allow_anonymous_login").is_some_and(|value| is_true(&value)) {
                builder = builder.with_skip_signature(true);
            }
            Ok(Arc::new(builder.build().map_err(describe)?))
        }
        Service::Azure => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_container_name(&url.bucket)
                .with_retry(retry_config())
                .with_client_options(client_options(false));
            // DVC's names first, then the environment variables DVC's Azure
            // filesystem reads.
            let settings = [
                (
                    "account_name",
                    "AZURE_STORAGE_ACCOUNT",
                    AzureConfigKey::AccountName,
                ),
                (
                    "account_key",
                    "AZURE_STORAGE_KEY",
                    AzureConfigKey::AccessKey,
                ),
                (
                    "sas_token",
                    "AZURE_STORAGE_SAS_TOKEN",
                    AzureConfigKey::SasKey,
                ),
                ("tenant_id", "AZURE_TENANT_ID", AzureConfigKey::AuthorityId),
                ("client_id", "AZURE_CLIENT_ID", AzureConfigKey::ClientId),
                (
                    "client_secret",
                    "AZURE_CLIENT_SECRET",
                    AzureConfigKey::ClientSecret,
                ),
            ];
            for (option_name, variable, key) in settings {
                let value = option(option_name).or_else(|| std::env::var(variable).ok());
                if let Some(value) = value.filter(|value| !value.is_empty()) {
                    builder = builder.with_config(key, value);
                }
            }
            if option("allow_anonymous_login").is_some_and(|value| is_true(&value)) {
                builder = builder.with_skip_signature(true);
            }
            Ok(Arc::new(builder.build().map_err(describe)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> RemoteOptions {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |variable| {
            pairs
                .iter()
                .find(|(name, _)| *name == variable)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn urls_name_service_bucket_and_prefix() {
        let parsed = CloudUrl::parse("s3://bucket/some/prefix/")
            .expect("cloud")
            .expect("valid");
        assert_eq!(
            (
                parsed.service,
                parsed.bucket.as_str(),
                parsed.prefix.as_str()
            ),
            (Service::S3, "bucket", "some/prefix")
        );
        assert_eq!(
            parsed.display("files/md5/ac/bd"),
            "s3://bucket/some/prefix/files/md5/ac/bd"
        );
        let bare = CloudUrl::parse("gs://bucket")
            .expect("cloud")
            .expect("valid");
        assert_eq!((bare.service, bare.prefix.as_str()), (Service::Gcs, ""));
        for azure in ["azure://container/p", "az://container/p"] {
            let parsed = CloudUrl::parse(azure).expect("cloud").expect("valid");
            assert_eq!(
                (parsed.service, parsed.bucket.as_str()),
                (Service::Azure, "container")
            );
        }
        assert_eq!(CloudUrl::parse("ssh://host/path"), None);
        assert_eq!(CloudUrl::parse("/local/path"), None);
    }

    #[test]
    fn unusable_urls_are_sentences() {
        let error = CloudUrl::parse("s3:///path")
            .expect("cloud")
            .expect_err("no bucket");
        assert_eq!(
            error,
            "s3:///path names no bucket: write it as s3://BUCKET/PATH"
        );
        let error = CloudUrl::parse("s3://bucket/a//b")
            .expect("cloud")
            .expect_err("empty part");
        assert!(
            error.starts_with("s3://bucket/a//b: the path is not usable"),
            "{error}"
        );
    }

    #[test]
    fn section_options_win_over_the_environment() {
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "env-key"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_ENDPOINT_URL", "https://env.example"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]);
        let from_env = S3Settings::new("r", &options(&[]), &env, None).expect("settings");
        assert_eq!(from_env.endpoint.as_deref(), Some("https://env.example"));
        assert_eq!(from_env.region.as_deref(), Some("eu-west-1"));
        assert!(!from_env.allows_http());
        assert_eq!(
            from_env.credentials,
            S3Credentials::Static {
                key_id: "env-key".into(),
                secret_key: "env-secret".into(),
                token: None
            }
        );
        let configured = options(&[
            ("endpointurl", "http://127.0.0.1:9000"),
            ("access_key_id", "key"),
            ("secret_access_key", "secret"),
            ("region", "us-west-2"),
            ("profile", "ignored-when-keys-are-set"),
        ]);
        let settings = S3Settings::new("r", &configured, &env, None).expect("settings");
        assert_eq!(settings.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(settings.region.as_deref(), Some("us-west-2"));
        assert!(settings.allows_http());
        assert_eq!(
            settings.credentials,
            S3Credentials::Static {
                key_id: "key".into(),
                secret_key: "secret".into(),
                token: None
            }
        );
        assert!(
            !format!("{settings:?}").contains("secret\""),
            "no secret in Debug"
        );
    }

    #[test]
    fn missing_or_half_credentials_are_sentences() {
        let no_env = env_of(&[]);
        let error = S3Settings::new("storage", &options(&[]), &no_env, None).expect_err("none");
        assert!(
            error.starts_with("remote 'storage' has no S3 credentials"),
            "{error}"
        );
        let half = options(&[("access_key_id", "key")]);
        let error = S3Settings::new("storage", &half, &no_env, None).expect_err("half");
        assert_eq!(
            error,
            "remote 'storage': the remote's config sets an access key id but no secret access key"
        );
        let anonymous = options(&[("allow_anonymous_login", "true")]);
        let settings = S3Settings::new("storage", &anonymous, &no_env, None).expect("anonymous");
        assert_eq!(settings.credentials, S3Credentials::Anonymous);
        let bad_endpoint = options(&[
            ("endpointurl", "127.0.0.1:9000"),
            ("allow_anonymous_login", "true"),
        ]);
        let error = S3Settings::new("storage", &bad_endpoint, &no_env, None).expect_err("scheme");
        assert!(
            error.contains("must start with http:// or https://"),
            "{error}"
        );
    }

    #[test]
    fn the_shared_credentials_file_is_read_for_the_profile() {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(home.path().join(".aws")).expect("mkdir");
        std::fs::write(
            home.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = d-key\naws_secret_access_key = d-secret\n\
             [work]\naws_access_key_id = w-key\naws_secret_access_key = w-secret\n",
        )
        .expect("write");
        let no_env = env_of(&[]);
        let default = S3Settings::new("r", &options(&[]), &no_env, Some(home.path().into()))
            .expect("default profile");
        assert!(
            matches!(&default.credentials, S3Credentials::Static { key_id, .. } if key_id == "d-key")
        );
        let work = S3Settings::new(
            "r",
            &options(&[("profile", "work")]),
            &no_env,
            Some(home.path().into()),
        )
        .expect("work profile");
        assert!(
            matches!(&work.credentials, S3Credentials::Static { key_id, .. } if key_id == "w-key")
        );
    }
}
