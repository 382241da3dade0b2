//! Resolving the target flags, the environment and the contexts file into a
//! [`Deployment`]: the validated selection first (no I/O beyond reading the
//! files), then the SDK clients, checked once so that a missing credential
//! or profile is one sentence before any command starts.

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_types::error::display::DisplayErrorContext;
use wsadmin_core::clock::Clock;
use wsadmin_core::control_plane::ControlPlane;
use wsadmin_core::local::LocalStackInfo;
use wsadmin_core::sdk::static_config;
use wsadmin_core::{ConnectionStore, Gateway, ManagementEndpoint, TableConfig, Target};

use crate::config::{ConfigFile, ContextSpec, LOCAL};
use crate::exit::usage;
use crate::flags::TargetArgs;

const NOTHING_SELECTED: &str = "no deployment selected: pass --endpoint URL --table NAME (or --api-id ID --stage NAME), \
save them with `wsadmin context add NAME --endpoint URL --table NAME`, \
or run `wsstack local` and pass --context local";

/// Which deployment, before any request: the merged values and, for the
/// local stack, its credentials.
#[derive(Debug, Clone)]
pub struct Selection {
    pub context: Option<String>,
    pub spec: ContextSpec,
    pub local: Option<LocalStackInfo>,
}

/// A resolved deployment: the core [`Target`] every command operates (its
/// gateway carries the run's one clock, see [`ENV_NOW`]), plus what
/// `status` needs beyond it.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub target: Target,
    pub sdk: SdkConfig,
    /// The API id, when known (given, or read from an execute-api host).
    pub api_id: Option<String>,
    pub local: bool,
}

/// Flags override the context; an explicit --endpoint/--api-id without
/// --context ignores the current context.
pub fn select(flags: &TargetArgs) -> Result<Selection> {
    let explicit = flags.endpoint.is_some() || flags.api_id.is_some();
    let name = match &flags.context {
        Some(n) => Some(n.clone()),
        None if explicit => None,
        None => {
            let path = ConfigFile::path()?;
            ConfigFile::load(&path)?.current
        }
    };
    let (mut spec, local) = match name.as_deref() {
        Some(LOCAL) => {
            let info = LocalStackInfo::read(&LocalStackInfo::default_path())?;
            let spec = ContextSpec {
                endpoint: Some(info.management_endpoint.clone()),
                table: Some(info.table.clone()),
                region: Some(info.region.clone()),
                dynamodb_endpoint: Some(info.dynamodb_endpoint.clone()),
                ..ContextSpec::default()
            };
            (spec, Some(info))
        }
        Some(n) => {
            let path = ConfigFile::path()?;
            let file = ConfigFile::load(&path)?;
            let spec = file.get(n).cloned().ok_or_else(|| file.unknown(n))?;
            (spec, None)
        }
        None => (ContextSpec::default(), None),
    };
    let over = ContextSpec::from_flags(flags);
    // A flag's target replaces the context's; both flags together mean a
    // custom domain (--endpoint) in front of an API (--api-id, for status).
    if over.endpoint.is_some() && over.api_id.is_none() {
        spec.api_id = None;
    }
    if over.api_id.is_some() && over.endpoint.is_none() {
        spec.endpoint = None;
    }
    let pick = |a: Option<String>, b: &mut Option<String>| {
        if a.is_some() {
            *b = a;
        }
    };
    pick(over.endpoint, &mut spec.endpoint);
    pick(over.api_id, &mut spec.api_id);
    pick(over.stage, &mut spec.stage);
    pick(over.table, &mut spec.table);
    pick(over.table_key, &mut spec.table_key);
    pick(over.region, &mut spec.region);
    pick(over.profile, &mut spec.profile);
    pick(over.dynamodb_endpoint, &mut spec.dynamodb_endpoint);
    if spec.endpoint.is_none() && spec.api_id.is_none() {
        bail!(NOTHING_SELECTED);
    }
    if spec.api_id.is_some() && spec.endpoint.is_none() && spec.stage.is_none() {
        return Err(usage("--api-id needs --stage NAME"));
    }
    Ok(Selection {
        context: name,
        spec,
        local,
    })
}

impl Selection {
    /// Builds the clients and checks the credentials.
    pub async fn connect(self) -> Result<Deployment> {
        let spec = &self.spec;
        let endpoint = match &spec.endpoint {
            Some(url) => Some(ManagementEndpoint::parse(url).map_err(usage)?),
            None => None,
        };
        let chosen = choose_region(
            spec.region.as_deref(),
            endpoint.as_ref().and_then(ManagementEndpoint::region),
        )?;
        let sdk = match &self.local {
            Some(info) => static_config(
                info.region.clone(),
                info.access_key_id.clone(),
                info.secret_access_key.clone(),
            ),
            None => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(p) = &spec.profile {
                    loader = loader.profile_name(p);
                }
                if let Some((region, _)) = &chosen {
                    loader = loader.region(Region::new(region.clone()));
                }
                loader.load().await
            }
        };
        let why = match (&self.local, &chosen) {
            (Some(_), _) => "the local stack's",
            (None, Some((_, why))) => why,
            (None, None) => "from AWS_REGION or the profile",
        };
        match sdk.region() {
            Some(r) => tracing::info!("region {r} ({why})"),
            None => bail!("no AWS region: set --region or AWS_REGION"),
        }
        if self.local.is_none() {
            check_credentials(&sdk, spec.profile.as_deref()).await?;
        }
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let (endpoint, api_id) = match (endpoint, &spec.api_id, &spec.stage) {
            // A custom domain in front of a known API.
            (Some(e), Some(api_id), _) => {
                ManagementEndpoint::for_api(api_id, &region, "stage").map_err(usage)?;
                (e, Some(api_id.clone()))
            }
            (Some(e), None, _) => {
                let api_id = e.region().and_then(|_| {
                    let host = e.url().split("://").nth(1)?;
                    host.split('.').next().map(str::to_owned)
                });
                (e, api_id)
            }
            (None, Some(api_id), Some(stage)) => (
                resolve_api(&sdk, api_id, stage, &region).await?,
                Some(api_id.clone()),
            ),
            _ => bail!(NOTHING_SELECTED),
        };
        let mut table = TableConfig::new(
            spec.table
                .clone()
                .unwrap_or_else(|| TableConfig::DEFAULT_NAME.to_owned()),
        );
        if let Some(key) = &spec.table_key {
            table = table.with_key(key.clone());
        }
        let store = ConnectionStore::at(&sdk, spec.dynamodb_endpoint.as_deref(), table);
        let gateway = Gateway::with_clock(&sdk, endpoint, clock())?;
        Ok(Deployment {
            target: Target {
                context: self.context,
                region,
                store,
                gateway,
            },
            sdk,
            api_id,
            local: self.local.is_some(),
        })
    }
}

/// The region the run uses, and why, before the SDK's own choice
/// (`AWS_REGION`, the profile): an endpoint that names its region decides,
/// since the table and the Management API must be the same deployment's; a
/// `--region` (or the context's) that disagrees with it is a usage error.
/// `None`: neither names one, the SDK's chain decides.
fn choose_region(
    given: Option<&str>,
    of_endpoint: Option<&str>,
) -> Result<Option<(String, &'static str)>> {
    match (given, of_endpoint) {
        (Some(g), Some(e)) if g != e => Err(usage(format!(
            "--region {g} disagrees with the endpoint's region {e}: the registry and the \
             Management API must be one deployment's (drop --region, or fix the endpoint)"
        ))),
        (_, Some(e)) => Ok(Some((e.to_owned(), "named by the endpoint"))),
        (Some(g), None) => Ok(Some((g.to_owned(), "from --region or the context"))),
        (None, None) => Ok(None),
    }
}

/// Fixes the clock (epoch milliseconds), so ages are reproducible.
pub const ENV_NOW: &str = "WSADMIN_NOW";

/// The one clock of a run: the gateway's (AWS's time as its answers tell
/// it), or the fixed instant `$WSADMIN_NOW` names. An unreadable value is
/// ignored, as it always was.
fn clock() -> Clock {
    match std::env::var(ENV_NOW).ok().map(|v| v.trim().parse::<i64>()) {
        Some(Ok(now_ms)) => Clock::fixed(now_ms),
        Some(Err(e)) => {
            tracing::debug!("{ENV_NOW} ignored: {e}");
            Clock::system()
        }
        None => Clock::system(),
    }
}

/// Resolves credentials now, so that their absence is one clear sentence.
async fn check_credentials(sdk: &SdkConfig, profile: Option<&str>) -> Result<()> {
    let env_profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let profile = profile.map(str::to_owned).or(env_profile);
    let Some(provider) = sdk.credentials_provider() else {
        bail!(
            "no AWS credentials: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        );
    };
    let result = tokio::time::timeout(Duration::from_secs(20), provider.provide_credentials())
        .await
        .map_err(|_| {
            anyhow!("timed out loading AWS credentials (is the SSO or credential process stuck?)")
        })?;
    let err = match result {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let text = DisplayErrorContext(&err).to_string();
    tracing::debug!("credentials: {text}");
    let settings = profile_settings(profile.as_deref().unwrap_or("default"));
    if let Some(p) = &profile
        && settings.is_none()
    {
        bail!(
            "AWS profile {p:?} is not defined in the AWS config files (~/.aws/config, ~/.aws/credentials): create it with `aws configure --profile {p}` or pass another --profile"
        );
    }
    // The deepest cause, without the SDK's wrappers: "Connection refused
    // (os error 111)", "AccessDenied: … not authorized to perform
    // sts:AssumeRole", "the SSO token has expired and cannot be refreshed".
    let cause = wsadmin_core::sdk_error::credentials_cause(&err);
    let name = profile.as_deref().unwrap_or("default");
    let login = match &profile {
        Some(p) => format!("aws sso login --profile {p}"),
        None => "aws sso login".to_owned(),
    };
    let settings = settings.unwrap_or_default();
    if settings.contains_key("sso_start_url") || settings.contains_key("sso_session") {
        let cause = if text.contains("No such file") {
            "none is cached".to_owned()
        } else {
            cause
        };
        bail!("AWS profile {name:?} uses SSO and has no valid token ({cause}): run `{login}`");
    }
    if let Some(role) = settings.get("role_arn") {
        let via = if text.contains("dispatch failure") {
            " (STS could not be reached: AWS_ENDPOINT_URL_STS or the network?)"
        } else {
            ""
        };
        bail!("cannot assume role {role} for AWS profile {name:?}: {cause}{via}");
    }
    bail!(
        "no AWS credentials found: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or use --context local with `wsstack local`)"
    )
}

/// The settings of `profile` in the AWS config and credentials files, or
/// `None` when neither has a section for it (the SDK's own error does not
/// say so, nor which kind of profile failed: SSO, a role to assume).
fn profile_settings(profile: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let home = dirs::home_dir().unwrap_or_default();
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| home.join(".aws").join(default))
    };
    // The keys of the section `wanted` says is ours, if there is one.
    let section = |path: std::path::PathBuf,
                   wanted: &dyn Fn(&str) -> bool|
     -> Option<std::collections::BTreeMap<String, String>> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut found = None;
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if found.is_some() {
                    break;
                }
                if wanted(name.trim()) {
                    found = Some(std::collections::BTreeMap::new());
                }
            } else if let Some(keys) = found.as_mut()
                && let Some((k, v)) = line.split_once('=')
            {
                keys.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        found
    };
    let config = section(file("AWS_CONFIG_FILE", "config"), &|s| {
        s.strip_prefix("profile")
            .is_some_and(|rest| rest.trim() == profile)
            || (profile == "default" && s == "default")
    });
    let credentials = section(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), &|s| {
        s == profile
    });
    match (config, credentials) {
        (None, None) => None,
        (a, b) => {
            let mut all = b.unwrap_or_default();
            all.extend(a.unwrap_or_default());
            Some(all)
        }
    }
}

/// GetApi: the API's own endpoint, with the stage appended.
async fn resolve_api(
    sdk: &SdkConfig,
    api_id: &str,
    stage: &str,
    region: &str,
) -> Result<ManagementEndpoint> {
    // Validates the parts before they go into a request.
    ManagementEndpoint::for_api(api_id, region, stage).map_err(usage)?;
    // Its errors are one sentence naming the API, the region and the cause.
    let api = ControlPlane::new(sdk).api(api_id).await?;
    if !api.is_websocket() {
        bail!("API {api_id:?} in {region} is not a WebSocket API");
    }
    let base = api
        .endpoint
        .as_deref()
        .with_context(|| format!("API {api_id:?} has no endpoint"))?;
    ManagementEndpoint::parse(&format!("{}/{stage}", base.trim_end_matches('/'))).map_err(usage)
}
