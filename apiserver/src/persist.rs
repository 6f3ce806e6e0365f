//! `--state-file` persistence: periodic snapshots written atomically (temporary file, fsync,
//! rename, directory fsync), so a crash mid-write leaves the previous snapshot intact.
//!
//! Next to the snapshot `F`, `F.revision` holds the highest resourceVersion the server may
//! have handed out. It is written (durably) before a block of revisions is used, so after a
//! crash, which loses the writes since the last snapshot, revisions still continue above
//! every one a client has seen (upstream: etcd never reuses a revision). Temporary files have
//! one fixed name per target, so a crash leaves at most one behind, and it is removed at the
//! next start.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::resources::ResourceKey;
use crate::state::AppState;
use crate::store::RevisionReserver;
use crate::Error;

/// Format version of snapshot files.
const FORMAT: u64 = 1;

/// Serializes snapshot writes: the periodic snapshot (on a blocking thread) and the final one
/// at shutdown must not write the same temporary file at once.
static SAVE_LOCK: Mutex<()> = Mutex::new(());

/// The file holding the revision high-water mark of the state file `path`.
pub fn revision_file(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".revision");
    path.with_file_name(name)
}

/// Writes a snapshot of every object to `path` atomically.
pub fn save(state: &AppState, path: &Path) -> Result<(), Error> {
    let (rv, objects) = state.store.dump();
    let mut body = String::with_capacity(objects.iter().map(|(_, o)| o.json.len() + 64).sum());
    body.push_str(&format!(
        "{{\"format\":{FORMAT},\"resourceVersion\":{rv},\"objects\":["
    ));
    for (i, (key, obj)) in objects.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"group\":{},\"resource\":{},\"object\":{}}}",
            json!(key.group),
            json!(key.plural),
            obj.json
        ));
    }
    body.push_str("]}");
    let _serialized = SAVE_LOCK.lock();
    write_atomically(path, body.as_bytes())
        .map_err(|e| Error::StateFile(path.display().to_string(), e.to_string()))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The one temporary file used to replace `target`: `.NAME.tmp` in the same directory.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("state");
    parent_dir(target).join(format!(".{name}.tmp"))
}

/// Replaces `target` with `contents` so that a crash at any point leaves either the old or
/// the new file: temporary file, fsync, rename, directory fsync. A failed write removes its
/// temporary file.
fn write_atomically(target: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = parent_dir(target);
    std::fs::create_dir_all(dir)?;
    let tmp = temp_path(target);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes temporary files a crashed run left next to `target`: the current `.NAME.tmp` and
/// the per-process `.NAME.tmp-PID` of earlier versions.
fn remove_stale_temp_files(target: &Path) {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let exact = format!(".{name}.tmp");
    let legacy = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(parent_dir(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(f) = file_name.to_str() else {
            continue;
        };
        let pid_suffixed = f
            .strip_prefix(&legacy)
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if f == exact || pid_suffixed {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %entry.path().display(), "removed a stale temporary file")
                }
                Err(err) => {
                    tracing::warn!(file = %entry.path().display(), %err, "cannot remove a stale temporary file")
                }
            }
        }
    }
}

/// Durable revision reservations in `F.revision` (see the module documentation).
struct RevisionFile {
    path: PathBuf,
}

impl RevisionReserver for RevisionFile {
    fn reserve(&self, upto: u64) -> Result<(), String> {
        write_atomically(&self.path, format!("{upto}\n").as_bytes())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Reads the high-water mark of a previous run (0 when there was none).
fn read_revision_file(path: &Path) -> Result<u64, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            Error::StateFile(
                path.display().to_string(),
                format!("not a resourceVersion: {:?}", text.trim()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::StateFile(path.display().to_string(), e.to_string())),
    }
}

/// Loads a snapshot into an empty store, if the file exists, and continues revisions after
/// both the snapshot and the previous run's reservations in `F.revision`. A corrupt file is
/// an error naming the file (never silently discarded). Temporary files a crash left behind
/// are removed first.
pub fn load(state: &AppState, path: &Path) -> Result<(), Error> {
    remove_stale_temp_files(path);
    let revisions = revision_file(path);
    remove_stale_temp_files(&revisions);
    let reserved = read_revision_file(&revisions)?;
    load_snapshot(state, path)?;
    state
        .store
        .reserve_revisions_with(Box::new(RevisionFile { path: revisions }), reserved);
    Ok(())
}

fn load_snapshot(state: &AppState, path: &Path) -> Result<(), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::StateFile(path.display().to_string(), e.to_string())),
    };
    let bad = |msg: String| Error::StateFile(path.display().to_string(), msg);
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    if doc["format"].as_u64() != Some(FORMAT) {
        return Err(bad(format!("unsupported format {}", doc["format"])));
    }
    let rv = doc["resourceVersion"]
        .as_u64()
        .ok_or_else(|| bad("resourceVersion missing".into()))?;
    let mut objects = Vec::new();
    for (i, entry) in doc["objects"].as_array().into_iter().flatten().enumerate() {
        let (Some(group), Some(resource)) = (entry["group"].as_str(), entry["resource"].as_str())
        else {
            return Err(bad(format!(
                "objects[{i}]: group and resource are required"
            )));
        };
        if !entry["object"].is_object() {
            return Err(bad(format!("objects[{i}].object: must be an object")));
        }
        objects.push((
            ResourceKey {
                group: group.to_string(),
                plural: resource.to_string(),
            },
            entry["object"].clone(),
        ));
    }
    // CRDs first, so their resources are served again.
    for (key, obj) in &objects {
        if key.group == "apiextensions.k8s.io" && key.plural == "customresourcedefinitions" {
            state.registry.register_crd(obj);
        }
    }
    state
        .store
        .restore(rv, objects)
        .map_err(|e| bad(e.to_string()))?;
    state.services.rebuild(&state.store);
    tracing::info!(path = %path.display(), rv, "loaded state file");
    Ok(())
}

/// Background task: snapshot at most every 500 ms after writes.
pub async fn run(state: Arc<AppState>, path: std::path::PathBuf) {
    loop {
        state.persist_wakeup.notified().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = state.clone();
        let p = path.clone();
        let result = tokio::task::spawn_blocking(move || save(&s, &p)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "state snapshot failed"),
            Err(err) => tracing::error!(%err, "state snapshot task failed"),
        }
    }
}
