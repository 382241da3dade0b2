//! The IAM policy an operator needs to run `wsadmin` against one
//! deployment: what `wsstack policy` prints, ready for `aws iam
//! create-policy --policy-document`.
//!
//! Owns the list of calls `wsadmin` makes and the resources they touch:
//! - DynamoDB on the registry table: `Scan` (list, broadcast, prune),
//!   `GetItem` (inspect, a probe of a record the scan did not read),
//!   `DeleteItem` (the stale rule, disconnect), `UpdateItem` (the stale
//!   rule marks a gone record without `connectedAt` before deleting it),
//!   `DescribeTable` and `DescribeTimeToLive` (status);
//! - `execute-api:ManageConnections` on the stage's `@connections` for GET
//!   (inspect, probe), POST (send, broadcast) and DELETE (disconnect);
//! - `apigateway:GET` (how IAM names API Gateway v2 reads) on the API and
//!   its routes, integrations and stages: GetApi resolves `--api-id`,
//!   `status` reads the rest;
//! - `cloudwatch:GetMetricData` (`status`, the dashboard's header: the
//!   API's ConnectCount, MessageCount, errors, latency), on `*`: CloudWatch
//!   has no resource-level permission for it;
//! - `logs:FilterLogEvents` (`inspect --history`, `logs`) on the account's
//!   log groups in the region: the stage's access log group is named by
//!   CloudFormation at deploy time (GetStage, under `apigateway:GET` on
//!   `/stages/*`, says which); narrow it to that group's ARN if you know it.
//!
//! It must not call AWS: values not given stay placeholders (`<REGION>`,
//! `<ACCOUNT_ID>`, `<API_ID>`), listed by [`OperatorPolicy::placeholders`]
//! so the caller can say what to replace.

use serde_json::{Value, json};

pub const REGION_PLACEHOLDER: &str = "<REGION>";
pub const ACCOUNT_PLACEHOLDER: &str = "<ACCOUNT_ID>";
pub const API_ID_PLACEHOLDER: &str = "<API_ID>";

/// What is known of the deployment; `None` becomes a placeholder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub table: String,
    /// The table's ARN, when known whole (it wins over region and account).
    pub table_arn: Option<String>,
    pub stage: String,
    pub api_id: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "table ARN \"{0}\" is not a DynamoDB table ARN (expected arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)"
    )]
    TableArn(String),
    #[error("account \"{0}\" is not an AWS account id (12 digits)")]
    Account(String),
    #[error("region \"{0}\" is not a region name (e.g. us-east-1)")]
    Region(String),
    #[error(
        "API id \"{0}\" is not an API Gateway id (lowercase letters and digits, e.g. a1b2c3d4e5)"
    )]
    ApiId(String),
}

/// The policy document and the placeholders left in it.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorPolicy {
    pub document: Value,
    pub placeholders: Vec<&'static str>,
}

impl OperatorPolicy {
    pub fn placeholders(&self) -> &[&'static str] {
        &self.placeholders
    }
}

/// The DynamoDB actions `wsadmin` calls on the registry table.
pub const TABLE_ACTIONS: &[&str] = &[
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
];

/// The DynamoDB Streams actions `wsadmin events` reads the registry's
/// stream with (without them it falls back to scanning, and says so).
pub const STREAM_ACTIONS: &[&str] = &[
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
];

/// The Management API methods `wsadmin` uses on `@connections/{id}`.
pub const CONNECTION_METHODS: &[&str] = &["GET", "POST", "DELETE"];

/// The API Gateway v2 resources `wsadmin` reads (`apigateway:GET`), under
/// `/apis/{id}`.
pub const API_READ_PATHS: &[&str] = &["", "/routes", "/integrations", "/stages", "/stages/*"];

pub fn operator_policy(d: &Deployment) -> Result<OperatorPolicy, PolicyError> {
    if let Some(account) = &d.account
        && !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(PolicyError::Account(account.clone()));
    }
    if let Some(region) = &d.region
        && wsadmin_core::sdk::check_region(region).is_err()
    {
        return Err(PolicyError::Region(region.clone()));
    }
    if let Some(id) = &d.api_id
        && !(!id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    {
        return Err(PolicyError::ApiId(id.clone()));
    }
    let mut placeholders = Vec::new();
    let mut known = |value: &Option<String>, placeholder: &'static str| match value {
        Some(v) => v.clone(),
        None => {
            if !placeholders.contains(&placeholder) {
                placeholders.push(placeholder);
            }
            placeholder.to_owned()
        }
    };

    let table_arn = match &d.table_arn {
        Some(arn) => {
            if !is_table_arn(arn) {
                return Err(PolicyError::TableArn(arn.clone()));
            }
            arn.clone()
        }
        None => {
            let region = known(&d.region, REGION_PLACEHOLDER);
            let account = known(&d.account, ACCOUNT_PLACEHOLDER);
            format!(
                "arn:{}:dynamodb:{region}:{account}:table/{}",
                partition(d.region.as_deref()),
                d.table
            )
        }
    };
    let region = known(&d.region, REGION_PLACEHOLDER);
    let account = known(&d.account, ACCOUNT_PLACEHOLDER);
    let api = known(&d.api_id, API_ID_PLACEHOLDER);
    let partition = partition(d.region.as_deref());

    let connections: Vec<String> = CONNECTION_METHODS
        .iter()
        .map(|method| {
            format!(
                "arn:{partition}:execute-api:{region}:{account}:{api}/{}/{method}/@connections/*",
                d.stage
            )
        })
        .collect();
    let api_reads: Vec<String> = API_READ_PATHS
        .iter()
        .map(|path| format!("arn:{partition}:apigateway:{region}::/apis/{api}{path}"))
        .collect();

    let document = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectionRegistry",
                "Effect": "Allow",
                "Action": TABLE_ACTIONS,
                "Resource": table_arn,
            },
            {
                "Sid": "ManageConnections",
                "Effect": "Allow",
                "Action": ["execute-api:ManageConnections"],
                "Resource": connections,
            },
            {
                "Sid": "ReadRegistryStream",
                "Effect": "Allow",
                "Action": STREAM_ACTIONS,
                "Resource": format!("{table_arn}/stream/*"),
            },
            {
                "Sid": "ReadApiForStatus",
                "Effect": "Allow",
                "Action": ["apigateway:GET"],
                "Resource": api_reads,
            },
            {
                "Sid": "ReadApiMetrics",
                "Effect": "Allow",
                "Action": ["cloudwatch:GetMetricData"],
                "Resource": "*",
            },
            {
                "Sid": "ReadAccessLog",
                "Effect": "Allow",
                "Action": ["logs:FilterLogEvents"],
                "Resource": format!("arn:{partition}:logs:{region}:{account}:log-group:*"),
            },
        ],
    });
    Ok(OperatorPolicy {
        document,
        placeholders,
    })
}

/// The partition of a region (`aws` when unknown).
fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

fn is_table_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(),
        ["arn", partition, "dynamodb", region, account, resource]
            if !partition.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("table/").is_some_and(|t| !t.is_empty() && !t.contains('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        Deployment {
            table: "WS_CONNECTIONS".to_owned(),
            stage: "dev".to_owned(),
            ..Deployment::default()
        }
    }

    #[test]
    fn everything_known_leaves_no_placeholder() {
        let p = operator_policy(&Deployment {
            api_id: Some("a1b2c3d4e5".to_owned()),
            region: Some("eu-west-1".to_owned()),
            account: Some("123456789012".to_owned()),
            ..deployment()
        })
        .unwrap();
        assert!(p.placeholders().is_empty());
        let statements = p.document["Statement"].as_array().unwrap();
        assert_eq!(
            statements[0]["Resource"],
            "arn:aws:dynamodb:eu-west-1:123456789012:table/WS_CONNECTIONS"
        );
        assert_eq!(
            statements[1]["Resource"],
            json!([
                "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/dev/GET/@connections/*",
                "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/dev/POST/@connections/*",
                "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/dev/DELETE/@connections/*",
            ])
        );
        assert_eq!(
            statements[3]["Resource"][0],
            "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5"
        );
        assert!(!p.document.to_string().contains('<'));
        assert_eq!(
            statements[4]["Action"],
            json!(["cloudwatch:GetMetricData"]),
            "status and the dashboard read the API's metrics"
        );
        assert_eq!(
            statements[5]["Action"],
            json!(["logs:FilterLogEvents"]),
            "inspect --history and logs read the stage's access log"
        );
        assert_eq!(
            statements[5]["Resource"],
            "arn:aws:logs:eu-west-1:123456789012:log-group:*"
        );
        assert!(
            statements[3]["Resource"]
                .as_array()
                .unwrap()
                .contains(&json!(
                    "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5/stages/*"
                )),
            "GetStage finds the access log group"
        );
    }

    #[test]
    fn unknown_values_are_placeholders() {
        let p = operator_policy(&deployment()).unwrap();
        assert_eq!(
            p.placeholders(),
            [REGION_PLACEHOLDER, ACCOUNT_PLACEHOLDER, API_ID_PLACEHOLDER]
        );
        assert_eq!(
            p.document["Statement"][0]["Resource"],
            "arn:aws:dynamodb:<REGION>:<ACCOUNT_ID>:table/WS_CONNECTIONS"
        );
    }

    #[test]
    fn a_table_arn_wins_and_the_partition_follows_the_region() {
        let p = operator_policy(&Deployment {
            table_arn: Some("arn:aws-cn:dynamodb:cn-north-1:123456789012:table/T".to_owned()),
            region: Some("cn-north-1".to_owned()),
            ..deployment()
        })
        .unwrap();
        assert_eq!(
            p.document["Statement"][0]["Resource"],
            "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/T"
        );
        assert!(
            p.document["Statement"][1]["Resource"][0]
                .as_str()
                .unwrap()
                .starts_with("arn:aws-cn:execute-api:cn-north-1:<ACCOUNT_ID>:<API_ID>/dev/GET/")
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let bad = |d: Deployment| operator_policy(&d).unwrap_err().to_string();
        assert!(
            bad(Deployment {
                table_arn: Some("arn:aws:s3:::bucket".to_owned()),
                ..deployment()
            })
            .starts_with("table ARN \"arn:aws:s3:::bucket\"")
        );
        assert!(
            bad(Deployment {
                account: Some("12345".to_owned()),
                ..deployment()
            })
            .starts_with("account \"12345\"")
        );
        assert!(
            bad(Deployment {
                region: Some("Mars".to_owned()),
                ..deployment()
            })
            .starts_with("region \"Mars\"")
        );
        assert!(
            bad(Deployment {
                api_id: Some("x/y".to_owned()),
                ..deployment()
            })
            .starts_with("API id \"x/y\"")
        );
    }
}
