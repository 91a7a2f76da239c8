//! Reading and writing `results.json`.
//!
//! Receives a path (or bytes) and emits a [`RunFile`], or writes one. Checks
//! `schema_version` before decoding the rest, so a newer or foreign file fails with a
//! message that says so instead of a confusing missing-field error.
//! Must not: panic on any input, or write a partial file in place of a good one (writes go
//! to a temporary file in the same directory, then rename).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::schema::{RunFile, SCHEMA_VERSION};

/// Why a run file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} is not a swarm results file: it has no numeric `schema_version`")]
    NoSchemaVersion { path: PathBuf },
    #[error(
        "{path} has schema_version {found}, newer than this swarm understands ({supported}); \
         use a newer swarm to read it"
    )]
    NewerSchema {
        path: PathBuf,
        found: u64,
        supported: u32,
    },
    #[error(
        "{path} has schema_version {found}, which does not exist (this swarm writes {supported})"
    )]
    UnknownSchema {
        path: PathBuf,
        found: u64,
        supported: u32,
    },
    #[error("{path} does not match results schema version {version}: {source}")]
    Schema {
        path: PathBuf,
        version: u32,
        source: serde_json::Error,
    },
    #[error("cannot encode the run file: {0}")]
    Encode(serde_json::Error),
}

impl RunFile {
    /// Reads and validates a run file.
    pub fn read(path: impl AsRef<Path>) -> Result<RunFile, RunFileError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| RunFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        RunFile::from_slice(&bytes, path)
    }

    /// Decodes a run file from bytes; `origin` names it in error messages.
    pub fn from_slice(bytes: &[u8], origin: impl AsRef<Path>) -> Result<RunFile, RunFileError> {
        let path = origin.as_ref().to_owned();
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|source| RunFileError::Json {
                path: path.clone(),
                source,
            })?;
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| RunFileError::NoSchemaVersion { path: path.clone() })?;
        if found > u64::from(SCHEMA_VERSION) {
            return Err(RunFileError::NewerSchema {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == 0 {
            return Err(RunFileError::UnknownSchema {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        serde_json::from_value(value).map_err(|source| RunFileError::Schema {
            path,
            version: SCHEMA_VERSION,
            source,
        })
    }

    /// The file as pretty JSON.
    pub fn to_json(&self) -> Result<String, RunFileError> {
        serde_json::to_string_pretty(self).map_err(RunFileError::Encode)
    }

    /// Writes the file atomically (temporary file + rename in the same directory).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), RunFileError> {
        let path = path.as_ref();
        let mut json = self.to_json()?;
        json.push('\n');
        write_atomic(path, json.as_bytes()).map_err(|source| RunFileError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole new one, never a
/// part: a hidden temporary file in the same directory (`.NAME.tmp`), flushed to disk, then
/// renamed over `path`. A failure removes the temporary file and leaves `path` as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{}.tmp", file_name.unwrap_or_default()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
