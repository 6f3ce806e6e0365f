//! `--state-file` persistence: periodic snapshots written atomically (temporary file, fsync,
//! rename, directory fsync), so a crash mid-write leaves the previous snapshot intact.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::resources::ResourceKey;
use crate::state::AppState;
use crate::Error;

/// Format version of snapshot files.
const FORMAT: u64 = 1;

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
    let io = |e: std::io::Error| Error::StateFile(path.display().to_string(), e.to_string());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile_in(dir, path).map_err(io)?;
    tmp.1.write_all(body.as_bytes()).map_err(io)?;
    tmp.1.sync_all().map_err(io)?;
    drop(tmp.1);
    std::fs::rename(&tmp.0, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    let name = format!(
        ".{}.tmp-{}",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("state"),
        std::process::id()
    );
    let p = dir.join(name);
    let f = std::fs::File::create(&p)?;
    Ok((p, f))
}

/// Loads a snapshot into an empty store, if the file exists. A corrupt file is an error naming
/// the file (never silently discarded).
pub fn load(state: &AppState, path: &Path) -> Result<(), Error> {
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
    state.services.rebuild(state);
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
