//! Resolving the target flags, the environment and the contexts file into a
//! [`Deployment`]: the validated selection first (no I/O beyond reading the
//! files), then the SDK clients, checked once so that a missing credential
//! or profile is one sentence before any command starts.

use anyhow::{Context as _, Result, anyhow, bail};
use aws_config::SdkConfig;
use wsadmin_core::clock::Clock;
use wsadmin_core::control_plane::ControlPlane;
use wsadmin_core::detect::DetectError;
use wsadmin_core::local::LocalStackInfo;
use wsadmin_core::registry::Mapping;
use wsadmin_core::sdk::{LoadError, load, static_config};
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
                table_key: info.table_key.clone(),
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
    // Bad registry flags are a usage error here, before any request.
    if let Some(mapping) = flags.registry.mapping().map_err(usage)? {
        spec.registry = Some(mapping);
    }
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
        let (sdk, why) = match (&self.local, &chosen) {
            (Some(info), _) => (
                static_config(
                    info.region.clone(),
                    info.access_key_id.clone(),
                    info.secret_access_key.clone(),
                ),
                "the local stack's",
            ),
            (None, chosen) => {
                let region = chosen.as_ref().map(|(r, _)| r.as_str());
                let sdk = load(spec.profile.as_deref(), region).await.map_err(|e| {
                    // Users of the local stack forget `--context local`.
                    match e {
                        LoadError::NoCredentials => {
                            anyhow!("{e} (or use --context local with `wsstack local`)")
                        }
                        e => anyhow!(e),
                    }
                })?;
                let why = chosen
                    .as_ref()
                    .map_or("from AWS_REGION or the profile", |c| c.1);
                (sdk, why)
            }
        };
        if let Some(r) = sdk.region() {
            tracing::info!("region {r} ({why})");
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
        if let Some(mapping) = &spec.registry {
            table = table.with_mapping(mapping.clone());
        }
        if let Some(key) = &spec.table_key {
            table = table.with_key(key.clone());
        }
        let mut store = ConnectionStore::at(&sdk, spec.dynamodb_endpoint.as_deref(), table);
        // The local stack of a template whose table has its own shape: its
        // state file names the key, not how the items hold connections
        // (unless the flags say how: --registry-*, another --table-key).
        let own_shape = self
            .local
            .as_ref()
            .and_then(|info| info.table_key.as_ref())
            .is_some_and(|key| spec.table_key.as_ref() == Some(key));
        if own_shape
            && spec.registry.is_none()
            && let Some(mapping) = local_mapping(&store).await?
        {
            let table = TableConfig::new(store.table().name.clone()).with_mapping(mapping);
            store = ConnectionStore::at(&sdk, spec.dynamodb_endpoint.as_deref(), table);
        }
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

/// Items `--context local` samples to detect the mapping of a table of
/// another shape (as `registry detect` does by default).
const LOCAL_DETECT_SAMPLE: u32 = 200;

/// The mapping of the local stack's table when it is not ours, detected
/// as `wsadmin registry detect` would (`None`: the table is empty, nothing
/// to detect from or act on). A table in which no attribute looks like a
/// connection id is refused rather than read with our schema, which would
/// take other values (`ROOM#7`) for connection ids.
async fn local_mapping(store: &ConnectionStore) -> Result<Option<Mapping>> {
    match crate::cmd::registry::detect_in(store, LOCAL_DETECT_SAMPLE).await {
        Ok(p) => {
            tracing::info!(
                "the local stack's table {:?} has its own shape: using the mapping detected from {} sampled items (`wsadmin --context local registry detect` shows why)",
                store.table().name,
                p.sampled
            );
            Ok(Some(p.mapping))
        }
        Err(e) if matches!(e.downcast_ref(), Some(DetectError::Empty { .. })) => Ok(None),
        Err(e) => Err(e.context(format!(
            "the local stack's table {:?} has its own shape, and no mapping of it could be detected (give one with --registry-id ATTR[=PATTERN])",
            store.table().name
        ))),
    }
}

/// The region the run uses, and why, before the SDK's own choice
/// (`AWS_REGION`, the profile): an endpoint that names its region decides,
/// since the table and the Management API must be the same deployment's; a
/// `--region` (or the context's) that disagrees with it is a usage error.
/// `None`: neither names one, the SDK's chain decides.
pub fn choose_region(
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
