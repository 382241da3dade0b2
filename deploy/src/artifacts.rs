//! The functions' code on its way to CloudFormation: the four `bootstrap`
//! zips `wsstack package` builds (`<dir>/<function>/bootstrap.zip`,
//! cargo-lambda's layout), their content-addressed keys in the artifacts
//! bucket, the bucket itself (one per account and region, created on first
//! use: encrypted, public access blocked), uploads and their removal.
//!
//! A key is `wsstack/<stack>/<function>/<sha256 of the zip>.zip`: an
//! unchanged zip keeps its key, so its code parameter is unchanged and
//! CloudFormation leaves the function alone; a changed one gets a new key
//! and only that function is updated. Everything a stack uploaded lives
//! under its prefix, which `down` removes. It must not know the template
//! beyond a function's handler name.

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use sha2::{Digest, Sha256};

use crate::aws::{Aws, AwsError};
use crate::package::zip_path;
use crate::template::Function;

/// The first bytes of every zip file.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(
        "missing packaged function{} {} under {}: run `wsstack package` first (or point --artifacts at a directory holding <function>/bootstrap.zip)",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        dir.display()
    )]
    Missing { dir: PathBuf, missing: Vec<String> },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a zip file: run `wsstack package` to rebuild it", path.display())]
    NotAZip { path: PathBuf },
}

/// One packaged function: where its zip is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub function: Function,
    pub path: PathBuf,
    /// Hex SHA-256 of the zip.
    pub sha256: String,
    pub bytes: u64,
}

impl Artifact {
    /// Its key in the artifacts bucket for `stack`.
    pub fn key(&self, stack: &str) -> String {
        format!(
            "{}{}/{}.zip",
            stack_prefix(stack),
            self.function.handler(),
            self.sha256
        )
    }
}

/// Everything `stack` uploaded lives under this prefix.
pub fn stack_prefix(stack: &str) -> String {
    format!("wsstack/{stack}/")
}

/// The artifacts bucket of an account in a region: deterministic, so every
/// `up` and `down` finds it without state of its own.
pub fn bucket_name(account_id: &str, region: &str) -> String {
    format!("wsstack-artifacts-{account_id}-{region}")
}

/// The zips of `functions` under `dir`, hashed; every missing one named in
/// a single error.
pub fn locate(dir: &Path, functions: &[Function]) -> Result<Vec<Artifact>, ArtifactError> {
    let missing: Vec<String> = functions
        .iter()
        .filter(|f| !zip_path(dir, **f).is_file())
        .map(|f| f.handler().to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(ArtifactError::Missing {
            dir: dir.to_owned(),
            missing,
        });
    }
    functions
        .iter()
        .map(|&function| {
            let path = zip_path(dir, function);
            let bytes = std::fs::read(&path).map_err(|source| ArtifactError::Read {
                path: path.clone(),
                source,
            })?;
            if !bytes.starts_with(ZIP_MAGIC) {
                return Err(ArtifactError::NotAZip { path });
            }
            Ok(Artifact {
                function,
                sha256: sha256_hex(&bytes),
                bytes: bytes.len() as u64,
                path,
            })
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `bucket` exists and is ours to use.
pub async fn bucket_exists(aws: &Aws, bucket: &str) -> Result<bool, AwsError> {
    match aws
        .call("s3:HeadBucket", &format!("bucket \"{bucket}\""), || {
            aws.s3.head_bucket().bucket(bucket).send()
        })
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the artifacts bucket unless it exists: default encryption
/// (SSE-S3) and every public access blocked. Whether it was created.
pub async fn ensure_bucket(aws: &Aws, bucket: &str) -> Result<bool, AwsError> {
    if bucket_exists(aws, bucket).await? {
        return Ok(false);
    }
    let target = format!("bucket \"{bucket}\"");
    let location = (aws.region != "us-east-1").then(|| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(aws.region.as_str()))
            .build()
    });
    aws.call("s3:CreateBucket", &target, || {
        aws.s3
            .create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(location.clone())
            .send()
    })
    .await?;
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .map_err(|e| build_error("s3:PutBucketEncryption", &target, e))?,
                )
                .build(),
        )
        .build()
        .map_err(|e| build_error("s3:PutBucketEncryption", &target, e))?;
    aws.call("s3:PutBucketEncryption", &target, || {
        aws.s3
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(encryption.clone())
            .send()
    })
    .await?;
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    aws.call("s3:PutPublicAccessBlock", &target, || {
        aws.s3
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(block.clone())
            .send()
    })
    .await?;
    Ok(true)
}

fn build_error(action: &'static str, target: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::other(action, target, e.to_string())
}

/// Uploads `artifact` for `stack` unless its key is there already (same
/// content, same key). Whether it was uploaded.
pub async fn upload(
    aws: &Aws,
    bucket: &str,
    stack: &str,
    artifact: &Artifact,
) -> Result<bool, DeployUploadError> {
    let key = artifact.key(stack);
    let target = format!("s3://{bucket}/{key}");
    match aws
        .call("s3:HeadObject", &target, || {
            aws.s3.head_object().bucket(bucket).key(&key).send()
        })
        .await
    {
        Ok(_) => return Ok(false),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let body = std::fs::read(&artifact.path).map_err(|source| ArtifactError::Read {
        path: artifact.path.clone(),
        source,
    })?;
    aws.call("s3:PutObject", &target, || {
        aws.s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/zip")
            .body(ByteStream::from(body.clone()))
            .send()
    })
    .await?;
    Ok(true)
}

/// An upload fails on the file or on S3.
#[derive(Debug, thiserror::Error)]
pub enum DeployUploadError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The keys under `stack`'s prefix (none when the bucket is missing).
pub async fn list(aws: &Aws, bucket: &str, stack: &str) -> Result<Vec<String>, AwsError> {
    let prefix = stack_prefix(stack);
    let target = format!("s3://{bucket}/{prefix}");
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = match aws
            .call("s3:ListObjectsV2", &target, || {
                aws.s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&prefix)
                    .set_continuation_token(token.clone())
                    .send()
            })
            .await
        {
            Ok(page) => page,
            Err(e) if e.is_not_found() => return Ok(keys),
            Err(e) => return Err(e),
        };
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => return Ok(keys),
        }
    }
}

/// Deletes `keys` from `bucket`; how many.
pub async fn delete(aws: &Aws, bucket: &str, keys: &[String]) -> Result<usize, AwsError> {
    for key in keys {
        aws.call("s3:DeleteObject", &format!("s3://{bucket}/{key}"), || {
            aws.s3.delete_object().bucket(bucket).key(key).send()
        })
        .await?;
    }
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_content_addressed_under_the_stack() {
        let a = Artifact {
            function: Function::Message,
            path: PathBuf::from("x"),
            sha256: sha256_hex(b"abc"),
            bytes: 3,
        };
        assert_eq!(
            a.key("demo"),
            "wsstack/demo/ws-message/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.zip"
        );
        assert!(a.key("demo").starts_with(&stack_prefix("demo")));
        assert!(!a.key("demo-2").starts_with(&stack_prefix("demo")));
        assert_eq!(
            bucket_name("123456789012", "eu-west-1"),
            "wsstack-artifacts-123456789012-eu-west-1"
        );
    }

    #[test]
    fn missing_zips_are_named_together() {
        let dir = std::env::temp_dir().join(format!("wsstack-artifacts-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("ws-connect")).expect("dir");
        std::fs::write(dir.join("ws-connect/bootstrap.zip"), b"PK\x03\x04rest").expect("zip");
        let err = locate(&dir, &Function::ALL)
            .expect_err("three missing")
            .to_string();
        assert!(
            err.contains("ws-disconnect, ws-default, ws-message")
                && err.contains("wsstack package"),
            "{err}"
        );
        let found = locate(&dir, &[Function::Connect]).expect("one there");
        assert_eq!(found[0].bytes, 8);
        std::fs::write(dir.join("ws-connect/bootstrap.zip"), b"not a zip").expect("write");
        let err = locate(&dir, &[Function::Connect])
            .expect_err("not a zip")
            .to_string();
        assert!(err.contains("is not a zip file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
